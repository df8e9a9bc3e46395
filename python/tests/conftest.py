"""Shared helpers of the Python tests: where the fixtures are, the agreement rule, small models."""

import json
import os

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
# The crate's real PyTorch models (tests/data/models, written by PyTorch through make_models.py).
MODELS = os.path.join(HERE, "..", "..", "tests", "data", "models")
FIXTURES = os.path.join(HERE, "fixtures")

# Mesa's EGL wants a runtime dir; without one every GL probe prints an error.
os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")


def manifest():
    with open(os.path.join(MODELS, "manifest.json")) as f:
        return json.load(f)


def assert_close(got, ref, what=""):
    """The crate's agreement rule with PyTorch's float64 output: |got - ref| <= 1e-5 + 1e-4 |ref|,
    NaN where ref has NaN."""
    got = np.asarray(got, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    assert got.shape == ref.shape, f"{what}: shape {got.shape} != {ref.shape}"
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5, err_msg=what)


@pytest.fixture(scope="session")
def mnist_like():
    """A 784-64-64-10 ReLU model with PyTorch-like random weights (for thread and size tests,
    judged against the crate's CPU reference, not PyTorch)."""
    return random_model([784, 64, 64, 10], "linear,relu,linear,relu,linear", seed=7)


def random_model(widths, arch, seed=0):
    import wgpu_mlp
    from wgpu_mlp.from_torch import _safetensors

    rng = np.random.default_rng(seed)
    tensors = {}
    for i, (a, b) in enumerate(zip(widths, widths[1:])):
        bound = 1 / np.sqrt(a)
        tensors[f"{i}.weight"] = rng.uniform(-bound, bound, (b, a)).astype(np.float32)
        tensors[f"{i}.bias"] = rng.uniform(-bound, bound, b).astype(np.float32)
    return wgpu_mlp.load_bytes(_safetensors(tensors), arch=arch)
