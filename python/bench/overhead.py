"""The Python side of the binding's overhead measurement: the model overhead.rs saved, timed
through ``model(x, device=...)`` exactly as overhead.rs times ``forward_slice`` (same input, same
warm-up, median and minimum of the same number of calls). Prints
``python DEVICE BATCH MEDIAN_MS MIN_MS``."""

import sys
import time

import numpy as np

import wgpu_mlp


def time_ms(runs, f):
    for _ in range(runs // 10 + 3):
        f()
    t = []
    for _ in range(runs):
        start = time.perf_counter()
        f()
        t.append((time.perf_counter() - start) * 1e3)
    t.sort()
    return t[len(t) // 2], t[0]


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "mnist.safetensors"
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    model = wgpu_mlp.load(path)
    tiny = wgpu_mlp.load(path + ".tiny")
    x16 = np.full((1, 16), 0.5, np.float32)
    med, low = time_ms(runs * 100, lambda: tiny(x16, device="cpu"))
    print(f"python tiny-cpu 1 {med:.5f} {low:.5f}", flush=True)
    for batch in (1, 1024):
        x = np.sin(np.arange(batch * 784, dtype=np.float32)).reshape(batch, 784)
        n = runs * 10 if batch == 1 else runs
        for device in ("cpu", "gpu"):
            med, low = time_ms(n, lambda: model(x, device=device))
            print(f"python {device} {batch} {med:.5f} {low:.5f}", flush=True)


if __name__ == "__main__":
    main()
