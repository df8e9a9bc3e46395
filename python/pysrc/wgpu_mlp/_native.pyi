"""Type stubs of the extension module (the Rust half of wgpu_mlp), so editors complete the API."""

import os
from typing import Any, Literal, Sequence, TypedDict, Union

import numpy as np
import numpy.typing as npt

Device = Literal["auto", "gpu", "cpu", "cpu-reference"]
ArchLike = Union[str, Sequence[str]]
PathLike = Union[str, "os.PathLike[str]"]

class AdapterInfo(TypedDict):
    name: str
    backend: str
    device_type: str
    driver: str

class Model:
    """A multi-layer perceptron loaded by `load`, `load_bytes` or `from_torch`. Call it on a
    batch: `model(x)`. Safe to share between threads; the GIL is released while it computes."""

    @property
    def in_features(self) -> int:
        """Input width."""
    @property
    def out_features(self) -> int:
        """Output width."""
    @property
    def param_count(self) -> int:
        """Number of parameters, as torchsummary counts them."""
    @property
    def arch(self) -> str:
        """The module sequence in `arch` notation (`"linear,relu,linear"`)."""
    @property
    def diagnostics(self) -> list[str]:
        """Warnings about the weights (a layer whose weights are all equal)."""
    def __call__(self, x: npt.ArrayLike, device: Device = "auto") -> npt.NDArray[np.float32]:
        """`model.forward(x, device)`."""
    def forward(self, x: npt.ArrayLike, device: Device = "auto") -> npt.NDArray[np.float32]:
        """The output for `x` (`[batch, in_features]`, or one row `[in_features]`): a new float32
        array `[batch, out_features]` (or `[out_features]`). A C-contiguous, aligned float32
        array is read in place; anything else with `__array__` (a CPU torch tensor) is converted
        once. `device`: `"auto"` (a hardware GPU, else the fast CPU path), `"gpu"` (the adapter
        `WGPU_BACKEND` / `WGPU_ADAPTER_NAME` pick, software adapters included), `"cpu"` (the
        fast CPU path), `"cpu-reference"` (the f64 reference, for checking)."""
    def summary(self, batch: int = -1) -> str:
        """torchsummary's table for a batch of `batch` (-1: torchsummary's default)."""
    def save(self, path: PathLike) -> None:
        """Writes a self-describing safetensors file (the state_dict of the equivalent
        `nn.Sequential`, the architecture in its metadata), atomically."""
    def to_bytes(self) -> bytes:
        """The bytes `save` writes."""
    def __reduce__(self) -> tuple[Any, tuple[bytes]]: ...

def load(path: PathLike, arch: ArchLike | None = None, names: ArchLike | None = None) -> Model:
    """A model file: `.onnx`, or a safetensors state_dict, self-describing or with `arch` (the
    modules in forward order, `"linear,relu,linear"` or a list) and `names` (the modules that own
    tensors, in forward order)."""

def load_bytes(data: bytes, arch: ArchLike | None = None, names: ArchLike | None = None) -> Model:
    """A model from the bytes of a safetensors file (what `Model.to_bytes` returns)."""

def adapters() -> list[AdapterInfo]:
    """The adapters wgpu finds (`WGPU_BACKEND`'s backends, else all), best first."""
