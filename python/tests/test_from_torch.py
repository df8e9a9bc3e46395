"""from_torch on module trees recorded from real PyTorch modules (fixtures/make_fixtures.py):
each tree is rebuilt from the records (class name, attributes, tensors as PyTorch held them) and
read by from_torch; the outputs are judged against PyTorch's float64 output. CI has no torch;
torch_check.py runs the same function on the live modules."""

import json
import os

import numpy as np
import pytest

import wgpu_mlp
from wgpu_mlp import errors

from conftest import FIXTURES, assert_close

GOOD = ["seq_mixed", "nested", "custom_in_order", "activations"]
BAD = {
    "bad_conv": r"module '1' \(Conv1d\).*torch\.onnx\.export",
    "bad_bn_no_stats": r"module '1' \(BatchNorm1d: track_running_stats=False",
    "bad_softmax_dim0": r"module '1' \(Softmax: dim=0",
    "bad_layernorm_2d": r"module '1' \(Unflatten\)",
}


class Recorded:
    """A module as recorded: its class name, attributes, tensors and children."""

    def __init__(self, children):
        self._children = children

    def named_children(self):
        return iter(self._children)


def rebuild(tree, tensors, path=""):
    cls = type(tree["class"], (Recorded,), {})
    children = [(n, rebuild(c, tensors, f"{path}{n}.")) for n, c in tree["children"]]
    m = cls(children)
    for k, v in tree["attrs"].items():
        setattr(m, k, tuple(v["tuple"]) if isinstance(v, dict) else v)
    for k in tree["none"]:
        setattr(m, k, None)
    for key, value in tensors.items():
        if key.startswith(path) and "." not in key[len(path):]:
            setattr(m, key[len(path):], value)
    return m


def load(name):
    with open(os.path.join(FIXTURES, f"{name}.json")) as f:
        tree = json.load(f)
    data = dict(np.load(os.path.join(FIXTURES, f"{name}.npz")))
    io = {k: data.pop(k) for k in ("x", "y", "y64") if k in data}
    return rebuild(tree, data), io


@pytest.mark.parametrize("name", GOOD)
def test_structures_match_pytorch(name):
    module, io = load(name)
    model = wgpu_mlp.from_torch(module)
    for device in ["cpu-reference", "cpu", "gpu"]:
        assert_close(model(io["x"], device=device), io["y64"], f"{name} on {device}")
    # PyTorch's own float32 output agrees too (a sanity check of the fixture itself).
    assert_close(io["y"], io["y64"], "fixture")


def test_arch_read():
    assert wgpu_mlp.from_torch(load("seq_mixed")[0]).arch == (
        "linear,batchnorm1d:0.001,leaky_relu:0.1,dropout,linear,layernorm,gelu_tanh,linear,"
        "log_softmax"
    )
    assert wgpu_mlp.from_torch(load("nested")[0]).arch == (
        "flatten,linear,prelu,linear,elu:0.5,softplus:2:10,linear,hardtanh:-0.5:0.5"
    )


@pytest.mark.parametrize("name", sorted(BAD))
def test_refused_modules_are_named(name):
    module, _ = load(name)
    with pytest.raises(errors.UnsupportedModuleError, match=BAD[name]) as info:
        wgpu_mlp.from_torch(module)
    assert "ONNX" in str(info.value) and isinstance(info.value, wgpu_mlp.Error)


def test_empty_container():
    empty = type("Sequential", (Recorded,), {})([])
    with pytest.raises(errors.UnsupportedModuleError, match=r"module 'Sequential' \(Sequential\)"):
        wgpu_mlp.from_torch(empty)
