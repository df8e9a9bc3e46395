"""Training from Python: the seam for the crate's training API (being written on another branch).

When it lands, ``train(model, x, y, loss=..., optimizer=..., epochs=..., batch_size=..., seed=...)``
will take the same losses, optimizers and options as ``wgpu-mlp train``, run on the device
``Model.forward`` uses, and return ``(trained_model, losses)``: a new :class:`wgpu_mlp.Model` and
the per-step losses as a float32 numpy array. It will be a thin wrapper over a ``_native.train``
function (python/src/train.rs), beside ``load`` in python/src/load.rs, with the GIL released for
the whole run.
"""


def train(model, x, y, **options):
    """Not available yet: the crate's training API has not landed. Raises NotImplementedError."""
    raise NotImplementedError(
        "wgpu_mlp.train: training from Python arrives with the crate's training API; "
        "train in PyTorch meanwhile and load the result with wgpu_mlp.from_torch or wgpu_mlp.load"
    )
