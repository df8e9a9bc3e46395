"""Scale-out on a local Dask cluster of two worker processes: a data set of many blocks scored
with the model loaded once per worker, each worker on its own device."""

import os

import numpy as np
import pytest

import dask  # noqa: F401  (a test requirement: its absence fails, never skips)
import dask.array as da  # noqa: E402
from dask.distributed import Client, LocalCluster  # noqa: E402

import wgpu_mlp  # noqa: E402
import wgpu_mlp.dask  # noqa: E402

from conftest import MODELS, assert_close  # noqa: E402

PATH = os.path.join(MODELS, "seq_ln.meta.safetensors")


@pytest.fixture(scope="module")
def client():
    # Processes, not threads: each worker is its own interpreter with its own model and device,
    # as on a real cluster.
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster, Client(cluster) as c:
        c.wait_for_workers(2)
        yield c


def data(rows=6000, chunk=400):
    x = np.random.default_rng(5).standard_normal((rows, 13)).astype(np.float32)
    return x, da.from_array(x, chunks=(chunk, 13))


def fresh_counts(client):
    return {w: s for w, s in client.run(wgpu_mlp.dask.stats).items()}


@pytest.mark.parametrize("device", ["cpu", "gpu"])
def test_two_workers_score_a_path(client, device):
    x, dx = data()
    before = fresh_counts(client)
    y = wgpu_mlp.dask.predict(dx, PATH, device=device).compute()
    after = fresh_counts(client)
    ref = wgpu_mlp.load(PATH)(x, device="cpu-reference")
    assert y.dtype == np.float32 and y.shape == (6000, 5)
    assert_close(y, ref, f"dask on {device}")
    blocks = {w: after[w]["blocks"] - before[w]["blocks"] for w in after}
    assert sum(blocks.values()) == 15
    assert len(blocks) == 2 and all(b >= 1 for b in blocks.values()), blocks
    # Once per worker: the first test loads it, later ones reuse it.
    assert all(s["loads"] == 1 for s in after.values()), after


def test_model_object_travels(client):
    model = wgpu_mlp.load(os.path.join(MODELS, "seq_bn.dynamo.onnx"))
    x = np.random.default_rng(6).standard_normal((3000, 13)).astype(np.float32)
    y = wgpu_mlp.dask.predict(da.from_array(x, chunks=(250, 7)), model, device="cpu").compute()
    assert_close(y, model(x, device="cpu-reference"))


def test_bad_path_fails_on_the_client():
    _, dx = data(10, 5)
    with pytest.raises(wgpu_mlp.FileError):
        wgpu_mlp.dask.predict(dx, "/nonexistent/m.onnx")
