"""torch.randperm on its 64-bit path (n >= 2**32 // 20 = 214,748,364: ATen's randperm_cpu
switches to the inside-out Fisher-Yates with random64() draws there). Writes randperm_wide.json
beside this script: n, seed, the first and last 16 values and the checksum the tests use
(sum of i * perm[i] mod 2**61 - 1). Needs about 6 GB of memory and a minute.
Run with /opt/torchvenv/bin/python."""
import json
import os

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
M = 2**61 - 1


def checksum(perm):
    # (i * v) < 2**56 fits int64; its remainder split in 32-bit halves sums without overflow.
    total_hi = total_lo = 0
    step = 1 << 24
    for start in range(0, len(perm), step):
        v = perm[start:start + step]
        i = np.arange(start, start + len(v), dtype=np.int64)
        x = (i * v) % M
        total_hi += int(np.sum(x >> 32))
        total_lo += int(np.sum(x & 0xFFFFFFFF))
    return ((total_hi << 32) + total_lo) % M


out = []
for n, seed in [(2**32 // 20, 3)]:
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).numpy()
    out.append({"n": n, "seed": seed, "head": perm[:16].tolist(), "tail": perm[-16:].tolist(),
                "check": checksum(perm), "torch": torch.__version__})
    del perm
with open(os.path.join(HERE, "randperm_wide.json"), "w") as f:
    json.dump(out, f, indent=1)
print(out)
