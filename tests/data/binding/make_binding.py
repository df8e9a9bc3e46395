"""Fixtures for binding a bare state_dict whose LayerNorms may own no tensors
(elementwise_affine=False) next to modules with 1-D weights of the same width (PReLU(C), an
affine LayerNorm). Run with PyTorch 2.15, safetensors and torchsummary (not in CI):

    python tests/data/binding/make_binding.py

Each case writes NAME.safetensors (the state_dict as safetensors.torch.save_file writes it),
NAME.x.npy, NAME.y64.npy (the model's float64 forward) and NAME.summary.txt (torchsummary), and
its arch/names into manifest.json."""
import contextlib
import io
import json
import os

import numpy as np
import torch
import torch.nn as nn
from safetensors.torch import save_file
from torchsummary import summary

HERE = os.path.dirname(os.path.abspath(__file__))


class Block(nn.Module):
    def __init__(self, i, o):
        super().__init__()
        self.lin = nn.Linear(i, o)
        self.norm = nn.LayerNorm(o, elementwise_affine=False)
        self.act = nn.PReLU(o)

    def forward(self, x):
        return self.act(self.norm(self.lin(x)))


class Nested(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(Block(6, 7), Block(7, 33))
        self.head = nn.Sequential(nn.Linear(33, 3), nn.Softmax(dim=-1))

    def forward(self, x):
        return self.head(self.encoder(x))


def bare_ln_then_prelu():
    m = nn.Sequential(nn.Linear(4, 7), nn.LayerNorm(7, elementwise_affine=False), nn.PReLU(7),
                      nn.LayerNorm(7, bias=False), nn.Linear(7, 3))
    with torch.no_grad():
        m[2].weight.copy_(torch.linspace(-1, 2, 7))
        m[3].weight.copy_(torch.linspace(0.2, 3, 7))
    return m, 4, "linear,layernorm,prelu,layernorm,linear", ""


def bare_ln_then_ln():
    m = nn.Sequential(nn.Linear(5, 7), nn.LayerNorm(7, elementwise_affine=False), nn.LayerNorm(7),
                      nn.Linear(7, 3))
    with torch.no_grad():
        m[2].weight.copy_(torch.linspace(0.5, 2, 7))
        m[2].bias.copy_(torch.linspace(-1, 1, 7))
    return m, 5, "linear,layernorm,layernorm,linear", ""


def nested_blocks():
    return (Nested(), 6, "linear,layernorm,prelu,linear,layernorm,prelu,linear,softmax",
            "encoder.0.lin,encoder.0.act,encoder.1.lin,encoder.1.act,head.0")


CASES = [("bare_ln_then_prelu", bare_ln_then_prelu), ("bare_ln_then_ln", bare_ln_then_ln),
         ("nested_blocks", nested_blocks)]

manifest = []
for seed, (name, make) in enumerate(CASES):
    torch.manual_seed(100 + seed)
    model, in_w, arch, names = make()
    model = model.eval()
    x = torch.randn(9, in_w)
    sd = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(sd, os.path.join(HERE, f"{name}.safetensors"))
    np.save(os.path.join(HERE, f"{name}.x.npy"), x.numpy())
    with torch.no_grad():
        y64 = model.double()(x.double()).numpy()
    np.save(os.path.join(HERE, f"{name}.y64.npy"), y64)
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        summary(model.float(), (in_w,), device="cpu")
    with open(os.path.join(HERE, f"{name}.summary.txt"), "w") as f:
        f.write(buf.getvalue())
    manifest.append({"name": name, "arch": arch, "names": names, "keys": list(sd)})
with open(os.path.join(HERE, "manifest.json"), "w") as f:
    json.dump(manifest, f, indent=1)
    f.write("\n")
