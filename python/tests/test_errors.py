"""Bad input of every kind is a wgpu_mlp exception with the crate's message, never a crash."""

import os

import numpy as np
import pytest

import wgpu_mlp
from wgpu_mlp import errors

from conftest import MODELS

SEQ_BN = os.path.join(MODELS, "seq_bn.meta.safetensors")


@pytest.fixture(scope="module")
def model():
    return wgpu_mlp.load(SEQ_BN)


@pytest.mark.parametrize("device", ["cpu-reference", "cpu", "gpu"])
def test_wrong_width(model, device):
    with pytest.raises(errors.ShapeError, match=r"input is \[2, 12\] but the model expects \[batch, 13\]"):
        model(np.zeros((2, 12), np.float32), device=device)


@pytest.mark.parametrize("shape", [(2, 3, 13), (1, 1, 1, 13), ()])
def test_dimensions_other_than_one_or_two(model, shape):
    with pytest.raises(errors.ShapeError, match="give \\[batch, 13\\]"):
        model(np.zeros(shape, np.float32))


@pytest.mark.parametrize("scalar", [None, 1.5])
def test_scalars(model, scalar):
    with pytest.raises(errors.ShapeError, match="shape \\[\\]"):
        model(scalar)


@pytest.mark.parametrize("bad", ["text", [[1, "a"]], {"a": 1}, object(), [[1, 2], [3]]])
def test_unreadable_input(model, bad):
    with pytest.raises(errors.InvalidArgumentError, match="cannot be read as a float32 array") as info:
        model(bad)
    assert isinstance(info.value, ValueError)


def test_array_interface_that_raises(model):
    class Broken:
        def __array__(self, dtype=None, copy=None):
            raise RuntimeError("device tensor")

    with pytest.raises(errors.InvalidArgumentError, match="device tensor") as info:
        model(Broken())
    assert isinstance(info.value.__cause__, RuntimeError)


def test_unknown_device(model):
    with pytest.raises(errors.InvalidArgumentError, match='device "tpu"'):
        model(np.zeros((1, 13), np.float32), device="tpu")


def test_missing_file():
    with pytest.raises(errors.FileError, match="no-such-file") as info:
        wgpu_mlp.load("/nonexistent/no-such-file.safetensors")
    assert isinstance(info.value, OSError)


def test_damaged_files(tmp_path):
    for name, content in [
        ("empty.safetensors", b""),
        ("junk.safetensors", b"\xff" * 64),
        ("lying.safetensors", (10**12).to_bytes(8, "little") + b"{}"),
        ("junk.onnx", b"\x08\x07" + b"\xff" * 40),
    ]:
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(errors.FormatError):
            wgpu_mlp.load(str(path))


def test_truncated_model(tmp_path):
    data = open(SEQ_BN, "rb").read()
    path = tmp_path / "cut.safetensors"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(errors.FormatError, match="cut.safetensors"):
        wgpu_mlp.load(str(path))


def test_state_dict_without_arch():
    with pytest.raises(errors.FormatError, match="arch"):
        wgpu_mlp.load(os.path.join(MODELS, "seq_bn.safetensors"))


def test_onnx_refuses_arch():
    with pytest.raises(errors.InvalidArgumentError, match="ONNX file"):
        wgpu_mlp.load(os.path.join(MODELS, "seq_bn.dynamo.onnx"), arch="linear,relu")


@pytest.mark.parametrize(
    "arch,match",
    [("linear,frobnicate", "unknown module"), ("relu", "no linear module"), (["linear", 3], "list of strings"), (7, "list of strings")],
)
def test_bad_arch(arch, match):
    with pytest.raises(errors.InvalidArgumentError, match=match):
        wgpu_mlp.load(os.path.join(MODELS, "seq_bn.safetensors"), arch=arch)


def test_arch_that_does_not_fit():
    with pytest.raises(errors.FormatError):
        wgpu_mlp.load(os.path.join(MODELS, "seq_bn.safetensors"), arch="linear,relu,linear")


def test_empty_name():
    with pytest.raises(errors.InvalidArgumentError, match="empty module name"):
        wgpu_mlp.load(os.path.join(MODELS, "seq_bn.safetensors"), arch="linear,linear", names="a,,b")


def test_bad_bytes():
    with pytest.raises(errors.FormatError):
        wgpu_mlp.load_bytes(b"not a model")
    with pytest.raises(TypeError):
        wgpu_mlp.load_bytes("a string, not bytes")


def test_save_into_missing_folder(model, tmp_path):
    with pytest.raises(errors.FileError):
        model.save(tmp_path / "missing" / "m.safetensors")


def test_hierarchy():
    for cls in [
        errors.InvalidArgumentError, errors.ShapeError, errors.FormatError, errors.FileError,
        errors.UnsupportedModuleError, errors.GpuError, errors.NoAdapterError,
        errors.OutOfMemoryError, errors.DeviceLostError, errors.GpuTimeoutError,
    ]:
        assert issubclass(cls, wgpu_mlp.Error)
    assert issubclass(errors.NoAdapterError, errors.GpuError)


def test_training_is_a_clear_seam():
    with pytest.raises(NotImplementedError, match="training API"):
        wgpu_mlp.train(None, None, None)
