"""What forward takes and gives: dtypes, layouts, one row, empty batches, non-finite values, and
that the input is read, never written."""

import os

import numpy as np
import pytest

import wgpu_mlp

from conftest import MODELS, assert_close

DEVICES = ["cpu-reference", "cpu", "gpu"]


@pytest.fixture(scope="module")
def case():
    model = wgpu_mlp.load(os.path.join(MODELS, "seq_ln.meta.safetensors"))
    x = np.load(os.path.join(MODELS, "seq_ln.x.npy"))
    y64 = np.load(os.path.join(MODELS, "seq_ln.y64.npy"))
    return model, x, y64


@pytest.mark.parametrize("device", DEVICES)
def test_layouts_and_dtypes_agree(case, device):
    model, x, y64 = case
    variants = [
        x.astype(np.float64),
        np.asfortranarray(x),
        np.concatenate([x, x], axis=1)[:, : x.shape[1]],  # a strided view
        x.tolist(),
        x.astype(np.float16).astype(np.float32),
    ]
    for v in variants[:4]:
        assert_close(model(v, device=device), y64, f"{type(v)} on {device}")


@pytest.mark.parametrize("device", DEVICES)
def test_misaligned_input(case, device):
    # What unpickling a block can give (Dask does): float32 data at an odd address.
    model, x, y64 = case
    raw = np.zeros(x.nbytes + 1, np.uint8)
    odd = raw[1:].view(np.float32).reshape(x.shape)
    odd[:] = x
    assert not odd.flags.aligned
    assert_close(model(odd, device=device), y64)


@pytest.mark.parametrize("device", DEVICES)
def test_one_row(case, device):
    model, x, y64 = case
    y = model(x[2], device=device)
    assert y.shape == (model.out_features,)
    assert_close(y, y64[2])


@pytest.mark.parametrize("device", DEVICES)
def test_empty_batch(case, device):
    model, x, _ = case
    y = model(np.zeros((0, x.shape[1]), np.float32), device=device)
    assert y.shape == (0, model.out_features) and y.dtype == np.float32


@pytest.mark.parametrize("device", DEVICES)
def test_input_untouched_and_output_fresh(case, device):
    model, x, _ = case
    before = x.copy()
    y1 = model(x, device=device)
    y2 = model(x, device=device)
    assert np.array_equal(x, before)
    assert y1.base is None or not np.shares_memory(y1, y2)
    assert not np.shares_memory(y1, x)
    y1[:] = 0  # the output is the caller's to write
    assert np.array_equal(model(x, device=device), y2)


@pytest.mark.parametrize("device", DEVICES)
def test_nan_and_inf_propagate(case, device):
    model, x, _ = case
    bad = x.copy()
    bad[1, 0] = np.nan
    bad[3, 2] = np.inf
    y = model(bad, device=device)
    assert np.isnan(y[1]).all() and np.isnan(y[3]).all()
    assert np.isfinite(y[[0, 2, 4]]).all()


def test_array_like_object(case):
    model, x, y64 = case

    class TensorLike:  # what a CPU torch tensor offers numpy
        def __array__(self, dtype=None, copy=None):
            return x

    assert_close(model(TensorLike()), y64)


def test_forward_is_call(case):
    model, x, _ = case
    assert np.array_equal(model.forward(x, device="cpu"), model(x, device="cpu"))
    assert np.array_equal(model.forward(x), model(x))


@pytest.mark.parametrize("device", ["cpu", "gpu"])
def test_larger_batches_against_reference(mnist_like, device):
    rng = np.random.default_rng(3)
    for batch in [1, 7, 64, 333]:
        x = rng.standard_normal((batch, 784)).astype(np.float32)
        ref = mnist_like(x, device="cpu-reference").astype(np.float64)
        np.testing.assert_allclose(mnist_like(x, device=device), ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("device", DEVICES)
def test_read_only_input(case, device):
    # np.frombuffer over bytes gives an array numpy will not let anyone write: read in place.
    model, x, y64 = case
    frozen = np.frombuffer(x.tobytes(), np.float32).reshape(x.shape)
    assert not frozen.flags.writeable
    assert_close(model(frozen, device=device), y64)
