"""ONNX files with external data, as PyTorch 2.15's default export call writes them. Run with
PyTorch 2.15, onnx and onnxscript (not in CI):

    python tests/data/external/make_external.py

`torch.onnx.export(model, (x,), "NAME.onnx", dynamo=True)` with no other argument writes the
weights to NAME.onnx.data beside the graph. Each case also writes NAME.x.npy and NAME.y64.npy
(the model's float64 forward)."""
import os

import numpy as np
import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))


class Digits(nn.Module):
    """An 8x8-digits classifier with Flatten, BatchNorm and Dropout."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.BatchNorm1d(32), nn.ReLU(),
                                 nn.Dropout(0.2), nn.Linear(32, 10))

    def forward(self, x):
        return self.net(x)


def regression():
    return nn.Sequential(nn.Linear(5, 16), nn.LayerNorm(16), nn.GELU(), nn.Linear(16, 1)), 5


def digits():
    m = Digits()
    with torch.no_grad():
        m.net[2].running_mean.copy_(torch.linspace(-0.5, 0.5, 32))
        m.net[2].running_var.copy_(torch.linspace(0.5, 2.0, 32))
    return m, 64


for seed, (name, make) in enumerate([("regression", regression), ("digits", digits)]):
    torch.manual_seed(300 + seed)
    model, in_w = make()
    model = model.eval()
    x = torch.randn(6, in_w)
    path = os.path.join(HERE, f"{name}.onnx")
    torch.onnx.export(model, (x,), path, dynamo=True)
    np.save(os.path.join(HERE, f"{name}.x.npy"), x.numpy())
    with torch.no_grad():
        np.save(os.path.join(HERE, f"{name}.y64.npy"), model.double()(x.double()).numpy())
