#!/usr/bin/env python3
"""Evaluate every PyTorch activation module at edge inputs, in float32 and float64.

Writes edge_values.json next to this file; the format is in README.md. All values come
from PyTorch itself (CPU). Run:

    /work/venv-torch/bin/python tests/data/activations/make_edge_values.py
"""

import importlib.metadata
import json
import math
import os
import platform
import struct

import numpy as np
import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
torch.set_num_threads(1)
torch.set_flush_denormal(False)  # PyTorch's default, said out loud

BRIEF = [0.0, -0.0]
for v in (1e-45, 1e-38, 1e-10, 1e-7, 1e-3, 0.5, 1.0, 2.9999, 3.0, 3.0001, 5.0, 19.999, 20.0, 20.001,
          88.0, 100.0, 1e4, 3e38, math.inf):
    BRIEF += [v, -v]
BRIEF.append(math.nan)
# Extra points: an f32 subnormal, breakpoints of relu6 / softplus(beta=2, threshold=5) /
# hardtanh(-2, 3), exp overflow in f32 (88.72) and f64 (709.78), and 1e300 (inf in f32).
EXTRA = []
for v in (1e-40, 0.1, 2.0, 2.5, 6.0, 10.0, 89.0, 710.0, 1e300):
    EXTRA += [v, -v]
INPUTS = BRIEF + EXTRA


def prelu(w):
    m = nn.PReLU()
    with torch.no_grad():
        m.weight.fill_(w)
    return m


# (id, token in the --arch grammar, module factory)
ACTIVATIONS = [
    ("relu", "relu", lambda: nn.ReLU()),
    ("sigmoid", "sigmoid", lambda: nn.Sigmoid()),
    ("tanh", "tanh", lambda: nn.Tanh()),
    ("leaky_relu", "leaky_relu", lambda: nn.LeakyReLU()),
    ("leaky_relu:0", "leaky_relu:0", lambda: nn.LeakyReLU(0.0)),
    ("leaky_relu:0.2", "leaky_relu:0.2", lambda: nn.LeakyReLU(0.2)),
    ("elu", "elu", lambda: nn.ELU()),
    ("elu:0", "elu:0", lambda: nn.ELU(alpha=0.0)),
    ("elu:0.5", "elu:0.5", lambda: nn.ELU(alpha=0.5)),
    ("selu", "selu", lambda: nn.SELU()),
    ("celu", "celu", lambda: nn.CELU()),
    ("celu:0.5", "celu:0.5", lambda: nn.CELU(alpha=0.5)),
    ("gelu", "gelu", lambda: nn.GELU()),
    ("gelu_tanh", "gelu_tanh", lambda: nn.GELU(approximate="tanh")),
    ("silu", "silu", lambda: nn.SiLU()),
    ("mish", "mish", lambda: nn.Mish()),
    ("softplus", "softplus", lambda: nn.Softplus()),
    ("softplus:2:5", "softplus:2:5", lambda: nn.Softplus(beta=2.0, threshold=5.0)),
    ("hardtanh", "hardtanh", lambda: nn.Hardtanh()),
    ("hardtanh:-2:3", "hardtanh:-2:3", lambda: nn.Hardtanh(-2.0, 3.0)),
    ("relu6", "relu6", lambda: nn.ReLU6()),
    ("hardsigmoid", "hardsigmoid", lambda: nn.Hardsigmoid()),
    ("hardswish", "hardswish", lambda: nn.Hardswish()),
    ("prelu[w=0.25]", "prelu", lambda: prelu(0.25)),
    ("prelu[w=0]", "prelu", lambda: prelu(0.0)),
]

SOFTMAX_ROWS = [
    [1.0, 2.0, 3.0],
    [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
    [-0.0, 0.0],
    [5.0],
    [-math.inf, 0.0, 1.0],
    [-math.inf, -math.inf, -math.inf],
    [math.inf, 0.0, 1.0],
    [math.inf, math.inf, 0.0],
    [math.inf, -math.inf],
    [math.nan, 0.0, 1.0],
    [1e30, 0.0, -1e30],
    [1e30, 1e30, 1e30],
    [3e38, 3e38, 3e38],
    [-3e38, 3e38, 0.0],
    [88.0, 89.0, 90.0, 100.0],
    [100.0, -100.0, 0.0],
    [1e-45, 0.0, -1e-45],
    [-1000.0, -1001.0, -1002.0],
    [round(0.37 * i - 5.1, 4) for i in range(33)],  # width 33, not a multiple of 4
]


def f32_enc(x):
    a = np.float32(x)
    return [f"0x{struct.unpack('<I', struct.pack('<f', a))[0]:08x}", str(a)]


def f64_enc(x):
    x = float(x)
    return [f"0x{struct.unpack('<Q', struct.pack('<d', x))[0]:016x}", x.hex(), repr(x)]


def enc(t: torch.Tensor):
    if t.dtype == torch.float32:
        return [f32_enc(v) for v in t.numpy().tolist()]
    return [f64_enc(v) for v in t.numpy().tolist()]


def same_bits(a: torch.Tensor, b: torch.Tensor):
    if a.dtype == torch.float32:
        return a.view(torch.int32).equal(b.view(torch.int32))
    return a.view(torch.int64).equal(b.view(torch.int64))


def main():
    out = {
        "format": "see README.md in this folder",
        "generator": {
            "script": "tests/data/activations/make_edge_values.py",
            "torch": torch.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
            "machine": platform.machine(),
            "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "threads": 1,
            "flush_denormal": False,
        },
        "inputs": {
            "f32": None,
            "f64": None,
            "note": "f64 inputs are the Python floats; f32 inputs are those rounded to float32 "
                    "(so 1e-45 becomes the smallest subnormal 0x00000001, 1e300 becomes inf). "
                    "The first %d are the brief's list, the rest extras." % len(BRIEF),
        },
        "activations": [],
        "softmax": [],
    }
    x64 = torch.tensor(INPUTS, dtype=torch.float64)
    x32 = torch.tensor(INPUTS, dtype=torch.float32)
    out["inputs"]["f32"] = enc(x32)
    out["inputs"]["f64"] = enc(x64)
    for ident, token, make in ACTIVATIONS:
        entry = {"id": ident, "token": token}
        with torch.no_grad():
            m32 = make().eval()
            m64 = make().double().eval()
            entry["module"] = repr(m32)
            if isinstance(m32, nn.PReLU):
                entry["prelu_weight"] = float(m32.weight.item())
            y32 = m32(x32.clone())
            y64 = m64(x64.clone())
            # The same inputs one at a time: PyTorch's CPU kernels use a SIMD body and a
            # scalar tail, which may round differently. Record any difference.
            mism = []
            for i in range(len(INPUTS)):
                for dt, x, y, m in (("f32", x32, y32, m32), ("f64", x64, y64, m64)):
                    s = m(x[i:i + 1].clone())
                    if not same_bits(s, y[i:i + 1]):
                        mism.append({"index": i, "dtype": dt, "alone": enc(s)[0]})
        entry["f32"] = enc(y32)
        entry["f64"] = enc(y64)
        if mism:
            entry["alone_differs"] = mism
        out["activations"].append(entry)
    for op, fn in (("softmax", lambda t: nn.Softmax(dim=1)(t)), ("log_softmax", lambda t: nn.LogSoftmax(dim=1)(t))):
        for row in SOFTMAX_ROWS:
            r64 = torch.tensor([row], dtype=torch.float64)
            r32 = torch.tensor([row], dtype=torch.float32)
            with torch.no_grad():
                out["softmax"].append({
                    "op": op,
                    "in_f32": enc(r32[0]),
                    "in_f64": enc(r64[0]),
                    "f32": enc(fn(r32)[0]),
                    "f64": enc(fn(r64)[0]),
                })
    path = os.path.join(HERE, "edge_values.json")
    with open(path, "w") as f:
        # one line per value list keeps the file diffable and small
        f.write(dumps(out))
        f.write("\n")


def dumps(obj, indent=0):
    """JSON with lists of scalars / lists of short lists on one line."""
    pad = " " * indent
    if isinstance(obj, dict):
        items = [f'{pad} {json.dumps(k)}: {dumps(v, indent + 1).lstrip()}' for k, v in obj.items()]
        return pad + "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, list) and obj and isinstance(obj[0], dict):
        return pad + "[\n" + ",\n".join(dumps(v, indent + 1) for v in obj) + "\n" + pad + "]"
    return pad + json.dumps(obj, separators=(",", ":"))


if __name__ == "__main__":
    main()
