#!/usr/bin/env python3
"""numpy side of the cpu-fast comparison (docs/CPU.md).

Times the same four workloads as `cargo run --release --example cpu_fast_bench`:
mnist 784-512-512-10 (ReLU, ReLU, softmax) at batch 1, 64, 1024 and wide 2048x3
(ReLU, ReLU, ReLU) at batch 1024, y = x @ W.T + b per layer, float32.
Prints one line per workload: `numpy <workload> median_ms min_ms max_ms runs`.

Usage: cpu_fast_numpy.py [--budget SECONDS_PER_WORKLOAD] [--config]
"""
import sys
import time

import numpy as np


def linear(rng, n_in, n_out):
    bound = 1.0 / np.sqrt(n_in)
    w = rng.uniform(-bound, bound, size=(n_out, n_in)).astype(np.float32)
    b = rng.uniform(-bound, bound, size=(n_out,)).astype(np.float32)
    return w, b


def relu(z):
    return np.maximum(z, 0, out=z)


def softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


def forward(layers, x):
    for (w, b), act in layers:
        x = act(x @ w.T + b)
    return x


def workloads():
    rng = np.random.default_rng(0)
    mnist = [(linear(rng, 784, 512), relu), (linear(rng, 512, 512), relu),
             (linear(rng, 512, 10), softmax)]
    wide = [(linear(rng, 2048, 2048), relu) for _ in range(3)]
    for name, layers, batch in [("mnist-b1", mnist, 1), ("mnist-b64", mnist, 64),
                                ("mnist-b1024", mnist, 1024), ("wide-b1024", wide, 1024)]:
        x = rng.uniform(-1, 1, size=(batch, layers[0][0][0].shape[1])).astype(np.float32)
        yield name, layers, x


def main():
    budget = 1.0
    if "--budget" in sys.argv:
        budget = float(sys.argv[sys.argv.index("--budget") + 1])
    if "--config" in sys.argv:
        np.show_config()
        try:
            import threadpoolctl
            print(threadpoolctl.threadpool_info())
        except ImportError:
            print("threadpoolctl not installed")
        return
    for name, layers, x in workloads():
        for _ in range(3):
            forward(layers, x)
        times = []
        start = time.perf_counter()
        while (time.perf_counter() - start < budget or len(times) < 5) and len(times) < 100000:
            t0 = time.perf_counter_ns()
            forward(layers, x)
            times.append((time.perf_counter_ns() - t0) / 1e6)
        times.sort()
        print(f"numpy {name} {times[len(times) // 2]:.4f} {times[0]:.4f} {times[-1]:.4f} {len(times)}",
              flush=True)


if __name__ == "__main__":
    main()
