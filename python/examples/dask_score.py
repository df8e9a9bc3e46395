"""Scores a data set larger than one worker's share on a Dask cluster, the model loaded once per
worker, and reports the throughput and cost per row.

    python examples/dask_score.py [MODEL] [--rows N] [--device auto|gpu|cpu] [--scheduler ADDR]

Without --scheduler it starts a local cluster of two worker processes; with one
(``tcp://host:8786``) the same code runs on a real cluster, whose workers need the wgpu-mlp wheel
installed and MODEL at the same path (a shared file system), or pass a Model object instead of a
path (its bytes travel with each task).
"""

import argparse
import os
import time

import dask.array as da
import numpy as np
from dask.distributed import Client, LocalCluster

import wgpu_mlp
import wgpu_mlp.dask

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT = os.path.join(HERE, "..", "..", "tests", "data", "models", "seq_ln.meta.safetensors")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", nargs="?", default=DEFAULT)
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--chunk", type=int, default=50_000)
    p.add_argument("--device", default="auto")
    p.add_argument("--scheduler", default=None)
    args = p.parse_args()

    model = wgpu_mlp.load(args.model)
    print(model)
    if args.scheduler:
        client = Client(args.scheduler)
    else:
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None)
        client = Client(cluster)
    rng = da.random.default_rng(0)
    x = rng.standard_normal((args.rows, model.in_features), chunks=(args.chunk, -1)).astype("f4")

    y = wgpu_mlp.dask.predict(x, args.model, device=args.device)
    start = time.perf_counter()
    total = y.sum(axis=0).compute()  # the scores stay on the workers; only the sums come back
    took = time.perf_counter() - start
    print(f"{args.rows} rows in {took:.2f} s: {args.rows / took:,.0f} rows/s, "
          f"{took / args.rows * 1e9 * len(client.scheduler_info()['workers']):,.0f} ns per row "
          f"per worker, column sums {np.round(total[:3], 3)} …")
    for worker, s in sorted(client.run(wgpu_mlp.dask.stats).items()):
        print(f"  {worker}: loaded the model {s['loads']}×, scored {s['blocks']} blocks, "
              f"{s['rows']} rows")

    # A spot check: the first block again, here, on the CPU reference.
    first = x[: args.chunk].compute()
    diff = np.abs(y[: args.chunk].compute() - model(first, device="cpu-reference")).max()
    print(f"first block against the CPU reference here: max |diff| {diff:.2e}")
    client.close()


if __name__ == "__main__":
    main()
