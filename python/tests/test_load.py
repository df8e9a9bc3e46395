"""Loading every form of the crate's real PyTorch models and running them on every device,
against PyTorch's own float64 outputs and torchsummary's tables."""

import os
import pickle

import numpy as np
import pytest

import wgpu_mlp

from conftest import MODELS, assert_close, manifest

CASES = manifest()
DEVICES = ["cpu-reference", "cpu", "gpu"]


def forms(case):
    """(file, arch, names) of each way the case loads."""
    name = case["name"]
    names = case.get("names")
    yield f"{name}.meta.safetensors", None, None
    if not name.startswith("nested_functional_"):
        yield f"{name}.safetensors", case["arch"], names
        yield f"{name}.dynamo.onnx", None, None
        yield f"{name}.legacy.onnx", None, None


PARAMS = [
    pytest.param(case, f, a, n, id=f)
    for case in CASES
    for f, a, n in forms(case)
    if os.path.exists(os.path.join(MODELS, f))
]


def data(case, suffix):
    base = case["name"]
    if base.startswith("nested_functional_"):
        base = "nested_functional"
    return os.path.join(MODELS, f"{base}.{suffix}")


def test_every_case_has_forms():
    # The manifest's 13 cases, each in at least its self-describing form: a lost folder fails.
    assert len(CASES) >= 13
    assert len(PARAMS) >= 13 * 3


@pytest.mark.parametrize("case,file,arch,names", PARAMS)
def test_outputs_match_pytorch(case, file, arch, names):
    model = wgpu_mlp.load(os.path.join(MODELS, file), arch=arch, names=names)
    x = np.load(data(case, "x.npy"))
    y64 = np.load(data(case, "y64.npy"))
    for device in DEVICES:
        y = model(x, device=device)
        assert y.dtype == np.float32 and y.flags.c_contiguous
        assert_close(y, y64, f"{file} on {device}")


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_summary_is_torchsummary(case):
    model = wgpu_mlp.load(os.path.join(MODELS, case["name"] + ".meta.safetensors"))
    with open(data(case, "summary.txt")) as f:
        assert model.summary() == f.read()


def test_arch_and_names_as_lists():
    case = next(c for c in CASES if c["name"] == "nested_functional")
    path = os.path.join(MODELS, "nested_functional.safetensors")
    as_list = wgpu_mlp.load(path, arch=case["arch"].split(","), names=case["names"].split(","))
    as_str = wgpu_mlp.load(path, arch=case["arch"], names=case["names"])
    x = np.load(data(case, "x.npy"))
    assert np.array_equal(as_list(x, device="cpu"), as_str(x, device="cpu"))
    assert_close(as_list(x), np.load(data(case, "y64.npy")))


def test_save_and_reload(tmp_path):
    model = wgpu_mlp.load(os.path.join(MODELS, "seq_bn.dynamo.onnx"))
    path = tmp_path / "m.safetensors"
    model.save(path)
    again = wgpu_mlp.load(str(path))
    x = np.load(os.path.join(MODELS, "seq_bn.x.npy"))
    assert np.array_equal(model(x, device="cpu-reference"), again(x, device="cpu-reference"))
    assert again.arch == model.arch
    assert path.read_bytes() == model.to_bytes()


def test_pickle_round_trip():
    model = wgpu_mlp.load(os.path.join(MODELS, "norm_variants.meta.safetensors"))
    again = pickle.loads(pickle.dumps(model))
    x = np.load(os.path.join(MODELS, "norm_variants.x.npy"))
    assert np.array_equal(model(x, device="cpu"), again(x, device="cpu"))
    assert repr(again) == repr(model)


def test_attributes():
    model = wgpu_mlp.load(os.path.join(MODELS, "seq_bn.meta.safetensors"))
    assert (model.in_features, model.out_features) == (13, 7)
    assert model.arch == "linear,batchnorm1d,relu,dropout:0.3,linear,softmax"
    assert model.param_count == 13 * 31 + 31 + 2 * 31 + 31 * 7 + 7
    assert "Model(in_features=13" in repr(model)


def test_adapters_lists_dicts():
    found = wgpu_mlp.adapters()
    assert found, "no adapter: install mesa-vulkan-drivers (lavapipe)"
    for a in found:
        assert set(a) == {"name", "backend", "device_type", "driver"}
