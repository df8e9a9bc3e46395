"""PyTorch-style multi-layer perceptrons on any GPU (Vulkan, Metal, DX12, GL) through WGSL
compute shaders, with PyTorch's numbers; numpy in and out.

>>> import wgpu_mlp
>>> model = wgpu_mlp.load("model.onnx")          # or .safetensors, or wgpu_mlp.from_torch(m)
>>> y = model(x)                                 # x: [batch, in] numpy array or CPU tensor

``wgpu_mlp.dask`` scores Dask arrays on a cluster (the model loaded once per worker);
``wgpu_mlp.train`` is the seam for training, which arrives with the crate's training API.
"""

from . import errors
from ._native import Model, adapters, load, load_bytes
from .errors import (
    DeviceLostError,
    Error,
    FileError,
    FormatError,
    GpuError,
    GpuTimeoutError,
    InvalidArgumentError,
    NoAdapterError,
    OutOfMemoryError,
    ShapeError,
    UnsupportedModuleError,
)
from .from_torch import from_torch
from .train import train

__version__ = "0.1.0"

__all__ = [
    "Model",
    "adapters",
    "load",
    "load_bytes",
    "from_torch",
    "train",
    "errors",
    "Error",
    "InvalidArgumentError",
    "ShapeError",
    "FormatError",
    "FileError",
    "UnsupportedModuleError",
    "GpuError",
    "NoAdapterError",
    "OutOfMemoryError",
    "DeviceLostError",
    "GpuTimeoutError",
]
