"""The exceptions of ``wgpu_mlp``: one class per kind of failure, all under :class:`Error`.

The messages are the Rust crate's own. Classes about bad arguments also derive from the
built-in exception a Python caller would catch for them (``ValueError``, ``OSError``).
"""


class Error(Exception):
    """Base class of every error wgpu_mlp raises."""


class InvalidArgumentError(Error, ValueError):
    """An argument is out of its valid range (a device name, an arch token, a batch size, ...)."""


class ShapeError(Error, ValueError):
    """Shapes that do not fit together (the input's width, chained layers, tensor sizes)."""


class FormatError(Error, ValueError):
    """A model file (or bytes) that is malformed, truncated, of an unsupported dtype, or that does
    not say its architecture."""


class FileError(Error, OSError):
    """An operating-system error reading or writing a file; the message names the path."""


class UnsupportedModuleError(Error, TypeError):
    """``from_torch`` met a module it cannot take; the message names it and the ONNX route."""


class GpuError(Error, RuntimeError):
    """An error reported by the GPU driver or wgpu (validation errors included)."""


class NoAdapterError(GpuError):
    """No GPU adapter matched the request; the message says how to install a software one."""


class OutOfMemoryError(GpuError, MemoryError):
    """The GPU ran out of memory, or a request exceeds the device's limits."""


class DeviceLostError(GpuError):
    """The device was lost (driver reset, removal); the next call opens a new one."""


class GpuTimeoutError(GpuError, TimeoutError):
    """A wait on the GPU exceeded its timeout."""


__all__ = [
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
