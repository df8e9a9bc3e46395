"""One model shared by several Python threads: the same numbers as alone, and the GIL released
while the device works."""

import threading
import time

import numpy as np
import pytest

from concurrent.futures import ThreadPoolExecutor


@pytest.mark.parametrize("device", ["cpu", "gpu", "cpu-reference"])
def test_concurrent_calls_equal_alone(mnist_like, device):
    rng = np.random.default_rng(11)
    xs = [rng.standard_normal((b, 784)).astype(np.float32) for b in [1, 3, 17, 64, 5, 128, 2, 40]]
    alone = [mnist_like(x, device=device) for x in xs]
    with ThreadPoolExecutor(8) as pool:
        for _ in range(3):
            together = list(pool.map(lambda x: mnist_like(x, device=device), xs))
            for a, t in zip(alone, together):
                assert np.array_equal(a, t)


def test_gil_released_while_computing(mnist_like):
    # A slow forward pass (the f64 reference on a large batch) in one thread; this thread keeps
    # ticking meanwhile. Holding the GIL would leave one gap as long as the whole pass.
    x = np.random.default_rng(1).standard_normal((4096, 784)).astype(np.float32)
    start = time.perf_counter()
    mnist_like(x[:256], device="cpu-reference")
    per_256 = time.perf_counter() - start
    done = threading.Event()

    def work():
        mnist_like(x, device="cpu-reference")
        done.set()

    t = threading.Thread(target=work)
    ticks = []
    t.start()
    began = time.perf_counter()
    while not done.is_set():
        ticks.append(time.perf_counter())
        time.sleep(0.001)
    took = time.perf_counter() - began
    t.join()
    gaps = np.diff([began] + ticks)
    assert took > 8 * per_256 * 0.5, "the pass was too quick to tell"
    assert len(ticks) > 10 and gaps.max() < took / 2, (gaps.max(), took)


def test_device_loss_is_an_exception_then_recovers(mnist_like):
    from wgpu_mlp import _native, errors

    x = np.random.default_rng(2).standard_normal((9, 784)).astype(np.float32)
    before = mnist_like(x, device="gpu")
    assert _native._simulate_device_loss()
    with pytest.raises(errors.DeviceLostError):
        mnist_like(x, device="gpu")
    # The next call opens a new device and rebuilds the model on it.
    assert np.array_equal(mnist_like(x, device="gpu"), before)


def test_other_models_rebuild_after_a_loss(mnist_like):
    import os

    import wgpu_mlp
    from conftest import MODELS
    from wgpu_mlp import _native, errors

    other = wgpu_mlp.load(os.path.join(MODELS, "seq_bn.meta.safetensors"))
    x = np.random.default_rng(4).standard_normal((3, 13)).astype(np.float32)
    y = other(x, device="gpu")
    assert _native._simulate_device_loss()
    with pytest.raises(errors.DeviceLostError):
        mnist_like(np.zeros((1, 784), np.float32), device="gpu")
    # `other` was built on the lost device too; it rebuilds on the new one without an error.
    assert np.array_equal(other(x, device="gpu"), y)
