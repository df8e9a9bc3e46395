"""By hand (not in CI): `wgpu-mlp train` outputs load into the PyTorch models with
load_state_dict(strict=True), and give PyTorch's own trained outputs.

    /opt/torchvenv/bin/python check_load.py path/to/wgpu-mlp
"""

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from safetensors.torch import load_file, save_file

sys.path.insert(0, str(Path(__file__).parent))
from make_train import MyModel  # noqa: E402

BIN = sys.argv[1]
cases = {c["name"]: c for c in json.load(open(Path(__file__).parent / "trajectories.json"))["cases"]}


def tensor_state(c, key="init"):
    out = {}
    for t in c[key]:
        if "count" in t:
            out[t["name"]] = torch.tensor(t["count"], dtype=torch.int64)
        else:
            out[t["name"]] = torch.tensor(t["values"], dtype=torch.float32).reshape(t["shape"])
    return out


def run(name, model, flags):
    c = cases[name]
    d = Path(tempfile.mkdtemp())
    save_file(tensor_state(c), d / "init.safetensors")
    np.save(d / "x.npy", np.array(c["x"], dtype=np.float32).reshape(c["n"], c["in"]))
    if isinstance(c["y"][0], int):
        np.save(d / "y.npy", np.array(c["y"], dtype=np.int64))
    else:
        np.save(d / "y.npy", np.array(c["y"], dtype=np.float32).reshape(c["n"], c["out"]))
    subprocess.run([BIN, "train", "--weights", d / "init.safetensors", "--input", d / "x.npy",
                    "--target", d / "y.npy", "-o", d / "out.safetensors", *flags], check=True)
    sd = load_file(d / "out.safetensors")
    model.load_state_dict(sd, strict=True)
    want = tensor_state(c, "final")
    worst = max(float((sd[k].double() - want[k].double()).abs().max()) for k in want)
    print(f"{name}: load_state_dict(strict=True) ok, keys {list(sd)}, max |ours - torch| {worst:.3g}")


run("primer_mse_sgd", MyModel(4, 7, 3),
    ["--arch", "linear,F.sigmoid,linear", "--loss", "mse", "--optim", "sgd", "--lr", "0.1",
     "--epochs", "3", "--batch-size", "4"])
run("bn_relu_ce_adam_shuffle_droplast",
    nn.Sequential(nn.Linear(5, 7, bias=False), nn.BatchNorm1d(7), nn.ReLU(), nn.Linear(7, 3)),
    ["--arch", "linear,batchnorm1d,relu,linear", "--loss", "cross_entropy:0.1", "--optim", "adam",
     "--lr", "0.01", "--epochs", "3", "--batch-size", "6", "--shuffle-seed", "3", "--drop-last"])
