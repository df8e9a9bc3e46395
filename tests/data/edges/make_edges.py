#!/usr/bin/env python3
"""PyTorch's values at the edges that issue 24 found wrong, for tests/pytorch_edges.rs.

Writes, next to this file:

- `{case}.{dynamo,legacy}.onnx`: small models, `nn.Linear(1, 4)` (weights 1, -1, 2, -3, so
  that 1e-45 times each is a subnormal, not a zero whose sign would depend on rounding; bias 0,
  so every zero is +0) followed by an elementwise expression that a compiler could simplify with an algebraic
  identity that is false for IEEE values (`h - h`, `h / h`, `h * 0`, ...) or by `pow`, exported
  by both of PyTorch's exporters;
- `edges.json`: for every case its input column and PyTorch's float32 and float64 outputs; the
  pow table (torch.pow of a tensor by a Python number, of a number by a tensor, of two tensors);
  softplus at its threshold; BatchNorm1d where weight/sqrt(var + eps) is infinite and where the
  mean is large and the variance small; GELU's far tail (also from Python's math.erfc) and
  functions of subnormal inputs.

Every value comes from PyTorch (CPU) or Python's math module; nothing from wgpu-mlp. Floats are
written as their bit patterns in hex (JSON has no NaN, inf or -0.0): "0x7fc00000" for float32,
16 hex digits for float64. Run:

    /opt/torchvenv/bin/python tests/data/edges/make_edges.py [case ...]
"""

import json
import math
import os
import struct
import sys
import warnings

import numpy as np
import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
# Case names on the command line: export only their ONNX files (edges.json is always rewritten).
ONLY = set(sys.argv[1:])
torch.set_num_threads(1)
torch.set_flush_denormal(False)
warnings.filterwarnings("ignore")
INF, NAN = math.inf, math.nan


def h32(v):
    return "0x%08x" % struct.unpack("<I", struct.pack("<f", float(v)))[0]


def h64(v):
    return "0x%016x" % struct.unpack("<Q", struct.pack("<d", float(v)))[0]


def f32s(t):
    return [h32(v) for v in t.detach().to(torch.float32).reshape(-1).tolist()]


def f64s(t):
    return [h64(v) for v in t.detach().to(torch.float64).reshape(-1).tolist()]


# ---- 1 and 2: expressions after a Linear, exported by both exporters ----

X_COLUMN = [0.0, -0.0, 1.0, -1.0, 1e-45, 0.5, 1.5, -2.5, 100.0, 1e30, 3e38, -3e38, INF, -INF, NAN]


class Case(nn.Module):
    def __init__(self, f):
        super().__init__()
        self.fc = nn.Linear(1, 4)
        with torch.no_grad():
            self.fc.weight.copy_(torch.tensor([[1.0], [-1.0], [2.0], [-3.0]]))
            self.fc.bias.fill_(0.0)
        self.f = f

    def forward(self, x):
        return self.f(self.fc(x))


CASES = {
    # NaN and infinities through identities a compiler may apply (issue 24, item 1).
    "sub_self": lambda h: h - h,
    "center": lambda h: h + (h - h),
    "div_self": lambda h: h / h,
    "mul_zero": lambda h: h * 0.0,
    "add_zero": lambda h: h + 0.0,
    "add_neg": lambda h: h + (-h),
    "abs_sub_abs": lambda h: h.abs() - h.abs(),
    "twice_sub_twice": lambda h: h * 2.0 - h * 2.0,
    "plus_one_minus": lambda h: (h + 1.0) - h,
    "times_recip": lambda h: h * (1.0 / h),
    "max_zero": lambda h: torch.maximum(h, torch.tensor(0.0)),
    "min_self_sub": lambda h: torch.minimum(h, h - h),
    "where_order": lambda h: torch.where(h > 0.0, h, h * 0.5),
    # Comparisons of h with itself choosing the branch (never true, so the second).
    "where_self": lambda h: torch.where(h > h, h, h - h) + torch.where(h < h, -h, h * 0.0),
    # pow (item 2): a Python number as exponent, a number as base, a tensor exponent.
    "pow_half": lambda h: h ** 0.5,
    "pow_minus_half": lambda h: h ** -0.5,
    "pow_1p5": lambda h: h ** 1.5,
    "pow_3": lambda h: h ** 3.0,
    "pow_minus_1": lambda h: h ** -1.0,
    "pow_inf": lambda h: h ** INF,
    "pow_minus_inf": lambda h: h ** -INF,
    "one_pow": lambda h: torch.pow(1.0, h),
    "minus_one_pow": lambda h: torch.pow(-1.0, h),
    "two_pow": lambda h: torch.pow(2.0, h),
    "self_pow": lambda h: torch.pow(h, h),
}


def export(model, x, path, dynamo):
    torch.onnx.export(model, (x,), path, input_names=["x"], output_names=["y"],
                      dynamic_axes=None if dynamo else {"x": {0: "batch"}, "y": {0: "batch"}},
                      dynamic_shapes=({0: torch.export.Dim("batch")},) if dynamo else None,
                      dynamo=dynamo, opset_version=18 if dynamo else 17,
                      **({"external_data": False} if dynamo else {}))


def cases():
    x32 = torch.tensor(X_COLUMN, dtype=torch.float32).reshape(-1, 1)
    out = {}
    for name, f in CASES.items():
        m = Case(f).eval()
        with torch.no_grad():
            y32 = m(x32)
            y64 = m.double()(x32.double())
            m.float()
        for dynamo in (True, False) if not ONLY or name in ONLY else ():
            path = os.path.join(HERE, f"{name}.{'dynamo' if dynamo else 'legacy'}.onnx")
            export(m, x32[:2], path, dynamo)
        out[name] = {"rows": x32.shape[0], "cols": 4, "f32": f32s(y32), "f64": f64s(y64)}
    return {"x": f32s(x32), "cases": out}


# ---- 2: the pow table ----

BASES = [-INF, -3e38, -1e10, -2.5, -2.0, -1.5, -1.0, -0.5, -1e-45, -0.0, 0.0, 1e-45, 0.5, 1.0,
         1.5, 2.0, 2.5, 1e10, 3e38, INF, NAN]
EXPONENTS = [-INF, -3e38, -1e10, -7.0, -3.0, -2.5, -2.0, -1.5, -1.0, -0.5, -0.0, 0.0, 0.5, 1.0,
             1.5, 2.0, 2.5, 3.0, 7.0, 16777216.0, 1e10, 3e38, INF, NAN]


def pow_table():
    b = torch.tensor(BASES, dtype=torch.float32)
    e = torch.tensor(EXPONENTS, dtype=torch.float32)
    # torch.pow(tensor, number): row i holds every base raised to EXPONENTS[i].
    by_number = [torch.pow(b, float(torch.tensor(v, dtype=torch.float32))) for v in EXPONENTS]
    by_number64 = [torch.pow(b.double(), float(torch.tensor(v, dtype=torch.float32)))
                   for v in EXPONENTS]
    # torch.pow(number, tensor): row i holds BASES[i] raised to every exponent.
    of_number = [torch.pow(float(torch.tensor(v, dtype=torch.float32)), e) for v in BASES]
    of_number64 = [torch.pow(float(torch.tensor(v, dtype=torch.float32)), e.double())
                   for v in BASES]
    # torch.pow(tensor, tensor): bases down, exponents across.
    both = torch.pow(b[:, None], e[None, :])
    both64 = torch.pow(b.double()[:, None], e.double()[None, :])
    return {
        "bases": f32s(b), "exponents": f32s(e),
        "by_number": {"f32": [f32s(r) for r in by_number], "f64": [f64s(r) for r in by_number64]},
        "of_number": {"f32": [f32s(r) for r in of_number], "f64": [f64s(r) for r in of_number64]},
        "tensors": {"f32": f32s(both), "f64": f64s(both64)},
    }


# ---- 3: softplus at its threshold ----

def softplus():
    out = []
    for beta, threshold in [(0.1, 1.0), (0.3, 1.0), (3.0, 1.0), (1.0, 20.0), (2.0, 5.0),
                            (0.7, 3.0), (10.0, 15.0), (0.5, 0.3)]:
        t = np.float32(threshold) / np.float32(beta)
        xs = set()
        for v in (t, np.float32(threshold / beta)):
            v = np.float32(v)
            for k in range(-3, 4):
                xs.add(float(np.nextafter(v, np.float32(INF if k > 0 else -INF), dtype=np.float32)
                             if k else v))
                w = v
                for _ in range(abs(k)):
                    w = np.nextafter(w, np.float32(INF if k > 0 else -INF), dtype=np.float32)
                xs.add(float(w))
        xs |= {10.0, 3.3333333, 0.33333334, 0.0, -1.0}
        x = torch.tensor(sorted(xs), dtype=torch.float32)
        m = nn.Softplus(beta=beta, threshold=threshold)
        out.append({"beta": beta, "threshold": threshold, "x": f32s(x), "f32": f32s(m(x)),
                    "f64": f64s(m(x.double()))})
    return out


# ---- 4: BatchNorm1d at the edges ----

def batchnorm():
    cases = []

    def case(name, mean, var, weight, bias, eps, rows):
        c = len(mean)
        m = nn.BatchNorm1d(c, eps=eps).eval()
        with torch.no_grad():
            m.running_mean.copy_(torch.tensor(mean))
            m.running_var.copy_(torch.tensor(var))
            m.weight.copy_(torch.tensor(weight))
            m.bias.copy_(torch.tensor(bias))
        x = torch.tensor(rows, dtype=torch.float32)
        with torch.no_grad():
            y32 = m(x)
            y64 = m.double()(x.double())
        cases.append({"name": name, "mean": f32s(torch.tensor(mean)), "var": f32s(torch.tensor(var)),
                      "weight": f32s(torch.tensor(weight)), "bias": f32s(torch.tensor(bias)),
                      "eps": eps, "rows": len(rows), "cols": c, "x": f32s(x), "f32": f32s(y32),
                      "f64": f64s(y64)})

    edge_rows = [[0.0] * 6, [1.0] * 6, [-1.0] * 6, [2.0] * 6, [0.5] * 6, [INF] * 6, [-INF] * 6,
                 [NAN] * 6, [1e-3, 3.0, -2.0, 0.25, -7.0, 1e30]]
    # var + eps = 0 (var = -eps, and eps = 0 with var = 0): 1/sqrt(0) = inf.
    case("var_plus_eps_zero", [0.0, 1.0, -1.0, 0.0, 2.0, 0.0], [-1e-5, -1e-5, -1e-5, 0.0, 0.0, 1.0],
         [1.0, -1.0, 2.0, 1.0, 1.0, 0.0], [0.0, 0.5, -0.0, 1.0, -1.0, 0.0], 1e-5,
         edge_rows[:-1] + [[1e-3, 3.0, -2.0, 0.25, -7.0, 1e30]])
    case("eps_zero", [0.0, 1.0, -1.0, 0.0, 2.0, 0.5], [0.0, 0.0, 0.0, 0.0, 0.0, 1.0],
         [1.0, -1.0, 2.0, 0.5, -3.0, 1.0], [0.0, 0.5, -0.0, 1.0, -1.0, 0.0], 0.0, edge_rows)
    # weight = ±inf with ordinary statistics.
    case("weight_inf", [0.0, 1.0, -1.0, 0.0, 3.0, 0.0], [1.0, 1.0, 4.0, 0.25, 1.0, 1.0],
         [INF, -INF, INF, -INF, INF, 1.0], [0.0, 0.0, 1.0, -1.0, 0.0, 0.0], 1e-5, edge_rows)
    # A large mean and a tiny variance: the digits PyTorch's float64 forward keeps.
    big = [1e6, 1e6, 1e6, -2.5e7, 123456.0, 1e6]
    case("large_mean_small_var", big, [1e-6, 1e-6, 1e-6, 4e-6, 1e-8, 1e-6],
         [1.0, -1.0, 0.5, 2.0, 1.0, 3.0], [0.0, 0.0, 0.0, 1.0, -0.5, 0.0], 1e-10,
         [[1e6 + 1.0, 1e6 + 1.0, 1e6 + 1.0, -2.5e7 + 2.0, 123456.0 + 0.0078125, 1e6 - 0.5],
          [1e6, 1e6, 1e6, -2.5e7, 123456.0, 1e6],
          [1e6 - 3.0, 1e6 + 7.0, 1e6 - 0.0625, -2.5e7 - 4.0, 123457.0, 1e6 + 0.25]])
    return cases


# ---- 14: GELU's far tail and subnormal inputs ----

def gelu_tail():
    xs = [-5.0, -6.0, -7.0, -8.0, -9.0, -10.0, -11.0, -12.0, -13.0, -13.5, -14.0, -15.0, -20.0]
    x = torch.tensor(xs, dtype=torch.float32)
    g = nn.GELU()
    exact = [0.5 * v * math.erfc(-v / math.sqrt(2.0)) for v in x.tolist()]
    return {"x": f32s(x), "f32": f32s(g(x)), "f64": f64s(g(x.double())),
            "erfc": [h64(v) for v in exact]}


def subnormal():
    xs = torch.tensor([1e-45, -1e-45, 1e-40, -1e-40, 1.1e-38, 0.0, -0.0], dtype=torch.float32)
    ops = {
        "reciprocal": lambda t: torch.pow(t, -1.0),
        "log": torch.log,
        "sqrt": torch.sqrt,
        "exp": torch.exp,
        "times_1e30": lambda t: t * 1e30,
        "div_1e-30": lambda t: t / 1e-30,
        "identity_add": lambda t: t + 0.0,
    }
    return {"x": f32s(xs), "ops": {k: {"f32": f32s(f(xs)), "f64": f64s(f(xs.double()))}
                                   for k, f in ops.items()}}


def main():
    data = {
        "torch": torch.__version__,
        "linear": {"weight": [1.0, -1.0, 2.0, -3.0], "bias": "0.0"},
        **cases(),
        "pow": pow_table(),
        "softplus": softplus(),
        "batchnorm": batchnorm(),
        "gelu_tail": gelu_tail(),
        "subnormal": subnormal(),
    }
    with open(os.path.join(HERE, "edges.json"), "w") as f:
        json.dump(data, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
