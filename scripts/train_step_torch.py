"""PyTorch's CPU training step on the harness's `train` workload, timed as `wgpu-mlp bench` times
it, for the side-by-side comparison of docs/BENCHMARKING.md ("Training step against PyTorch").

The step: 784 -> 512 -> 512 -> 10 (ReLU), CrossEntropyLoss, SGD(lr=0.01, momentum=0.9);
`opt.zero_grad(); loss = loss_fn(model(x), y); loss.backward(); opt.step(); loss.item()`,
on one fixed batch of uniform [-1, 1) inputs and random class targets (as the harness).
Timing as the harness: 3 warm-up steps and on until 0.3 s have passed (stopping after half the
budget), then up to RUNS timed steps, stopping after 3 once BUDGET seconds have passed.

Prints one line per batch: `torch train-b64 MEDIAN_MS MIN_MS MAX_MS RUNS` (the format
scripts/train_compare.sh reads), and with --config the threads and backends used. With
--cpu-time the steps are timed in process CPU time (all threads together), which a loaded
machine disturbs much less than wall time.

Usage: /opt/torchvenv/bin/python scripts/train_step_torch.py [--batch 64,1024] [--threads 2]
           [--runs 10] [--budget 5] [--config]
Not run in CI (needs torch).
"""

import argparse
import os
import statistics
import time

import torch


def step_fn(batch, seed=0):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(
        torch.nn.Linear(784, 512),
        torch.nn.ReLU(),
        torch.nn.Linear(512, 512),
        torch.nn.ReLU(),
        torch.nn.Linear(512, 10),
    )
    x = torch.rand(batch, 784) * 2 - 1
    y = torch.randint(0, 10, (batch,))
    loss_fn = torch.nn.CrossEntropyLoss()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step():
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    return step


def time_steps(step, runs, budget, warmup=3, warmup_s=0.3, clock=time.perf_counter):
    start = time.perf_counter()
    done = 0
    while done < warmup or time.perf_counter() - start < warmup_s:
        step()
        done += 1
        if time.perf_counter() - start >= budget / 2:
            break
    samples = []
    start = time.perf_counter()
    while len(samples) < runs:
        t = clock()
        step()
        samples.append((clock() - t) * 1e3)
        if len(samples) >= 3 and time.perf_counter() - start >= budget:
            break
    return samples


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", default="64,1024")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--budget", type=float, default=5.0)
    ap.add_argument("--config", action="store_true")
    ap.add_argument(
        "--cpu-time",
        action="store_true",
        help="time each step in process CPU time (all threads) instead of wall time: "
        "steadier on a loaded machine; printed as torch-cpu",
    )
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.config:
        print(
            f"# torch {torch.__version__}, {torch.get_num_threads()} intra-op threads, "
            f"mkldnn {torch.backends.mkldnn.is_available()}, "
            f"mkl {torch.backends.mkl.is_available()}, "
            f"cpu capability {torch.backends.cpu.get_cpu_capability()}"
        )
    for b in (int(v) for v in a.batch.split(",")):
        clock = time.process_time if a.cpu_time else time.perf_counter
        s = time_steps(step_fn(b), a.runs, a.budget, clock=clock)
        name = "torch-cpu" if a.cpu_time else "torch"
        print(
            f"{name} train-b{b} {statistics.median(s):.4f} {min(s):.4f} {max(s):.4f} {len(s)}",
            flush=True,
        )


if __name__ == "__main__":
    main()
