"""CELU exported to ONNX by both PyTorch exporters (a `Celu` node each): nn.CELU(0.5) as a module
and F.celu(alpha=0.7) called in forward(). Run with PyTorch 2.15 and onnx (not in CI):

    python tests/data/celu/make_celu.py

Writes celu.dynamo.onnx, celu.legacy.onnx, celu.x.npy (inputs around the kink and far from
it) and celu.y64.npy (the model's float64 forward)."""
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))


class Celu(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(9, 7)
        self.act = nn.CELU(0.5)
        self.fc2 = nn.Linear(7, 3)

    def forward(self, x):
        return F.celu(self.fc2(self.act(self.fc1(x))), alpha=0.7)


torch.manual_seed(7)
model = Celu().eval()
x = torch.cat([torch.randn(6, 9) * 3, torch.randn(3, 9) * 1e-3, torch.randn(2, 9) * 30])
dummy = (torch.randn(3, 9),)
torch.onnx.export(model, dummy, os.path.join(HERE, "celu.dynamo.onnx"), dynamo=True,
                  external_data=False, dynamic_shapes=({0: torch.export.Dim("batch")},))
torch.onnx.export(model, dummy, os.path.join(HERE, "celu.legacy.onnx"), dynamo=False,
                  opset_version=17, input_names=["x"], output_names=["y"],
                  dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})
np.save(os.path.join(HERE, "celu.x.npy"), x.numpy())
with torch.no_grad():
    np.save(os.path.join(HERE, "celu.y64.npy"), model.double()(x.double()).numpy())
