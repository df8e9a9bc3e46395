"""``from_torch``: a live ``torch.nn.Module`` (an ``nn.Sequential``, or a module whose children
run in order) as a :class:`wgpu_mlp.Model`, read through its modules and their tensors.

Pure Python, and torch is needed only at call time (and only to check the result): the modules
are read by their class names and attributes, so nothing here imports torch at import time.
The model is built from an ``--arch`` string and a safetensors image of the tensors, the same
path every file takes, so the Rust loader validates shapes and binds tensors as it does for
files.
"""

import json
from typing import Any

import numpy as np

from ._native import Model, load_bytes
from .errors import UnsupportedModuleError

# Activations with no parameters: PyTorch class name -> arch token.
_PLAIN = {
    "ReLU": "relu",
    "SELU": "selu",
    "SiLU": "silu",
    "Mish": "mish",
    "ReLU6": "relu6",
    "Hardsigmoid": "hardsigmoid",
    "Hardswish": "hardswish",
    "Sigmoid": "sigmoid",
    "Tanh": "tanh",
    "Identity": "identity",
}

_ONNX_ROUTE = (
    "export the model to ONNX instead, which also carries code in forward() (functional calls, "
    "elementwise arithmetic): torch.onnx.export(model.eval(), (x,), 'model.onnx', dynamo=True, "
    "external_data=False, dynamic_shapes=({0: torch.export.Dim('batch')},)), then "
    "wgpu_mlp.load('model.onnx')"
)

_SUPPORTED = (
    "Linear, BatchNorm1d, LayerNorm (over the last dimension), Dropout, Identity, Flatten, PReLU, "
    "ReLU, LeakyReLU, ELU, SELU, CELU, GELU, SiLU, Mish, Softplus, Hardtanh, ReLU6, Hardsigmoid, "
    "Hardswish, Sigmoid, Tanh, Softmax and LogSoftmax (over the last dimension), and containers "
    "of them"
)


def from_torch(module: Any, example_input: Any = None) -> Model:
    """The model ``module`` computes, as a :class:`wgpu_mlp.Model` in eval semantics (as after
    ``module.eval()``: BatchNorm1d uses its running statistics, Dropout is the identity).

    ``module``: an ``nn.Sequential`` (nested ones included) or any module whose children run in
    the order they were registered, each on the previous one's output. Each leaf module is read
    through its class and attributes and its tensors (weight, bias, running statistics).

    ``example_input``: a batch ``[n, in_features]`` to check the result on. The module is run on
    it (in eval mode, its training flags restored afterwards) and the outputs compared; without
    one, a random batch of 4 rows is used. A module whose ``forward()`` does anything but run its
    children in order (a functional call, a skip connection) fails that check. The check runs
    whenever ``module`` can be called (a real ``torch.nn.Module``).

    Raises :class:`UnsupportedModuleError` naming a module it cannot take (and the ONNX route,
    which can), or when the check fails.
    """
    leaves = list(_leaves(module, ""))
    tokens, tensors = [], {}
    for index, (path, leaf) in enumerate(leaves):
        token, params = _describe(path, leaf)
        tokens.append(token)
        for name, value in params.items():
            tensors[f"{index}.{name}"] = value
    model = load_bytes(_safetensors(tensors), arch=",".join(tokens))
    # A real torch module can be run, and is: the check below. (The structure fixtures of the
    # tests are stand-ins with the recorded attributes of real modules, and cannot.)
    if callable(module) and hasattr(module, "register_forward_hook"):
        _check(module, model, example_input)
    return model


def _leaves(module, path):
    """(dotted path, module) of every module without children, in registration order. A module
    without children is its own one leaf (an empty ``Sequential`` is then refused by name)."""
    children = list(module.named_children())
    if not children:
        yield path or type(module).__name__, module
        return
    for name, child in children:
        yield from _leaves(child, f"{path}.{name}" if path else name)


def _unsupported(path, leaf, why=""):
    what = f"module '{path}' ({type(leaf).__name__}{': ' + why if why else ''})"
    return UnsupportedModuleError(
        f"wgpu_mlp.from_torch cannot take {what}. It reads {_SUPPORTED}. To run this model, "
        f"{_ONNX_ROUTE}"
    )


def _num(x):
    """A float as the arch grammar takes it (repr keeps every digit of a Python float)."""
    return repr(float(x))


def _param(token, values, defaults):
    """``token:v1:v2`` with the parameters, or ``token`` alone when all are PyTorch's defaults."""
    if all(float(v) == d for v, d in zip(values, defaults)):
        return token
    return ":".join([token] + [_num(v) for v in values])


def _last_dim(path, leaf):
    dim = getattr(leaf, "dim", None)
    # dim=None is PyTorch's legacy implicit choice: dim 1 for a 2-D input, the last one.
    if dim not in (None, -1, 1):
        raise _unsupported(path, leaf, f"dim={dim}; only the last dimension (-1 or 1) is supported")


def _describe(path, leaf):
    """(arch token, {tensor name: float32 array}) of one leaf module."""
    kind = type(leaf).__name__
    if kind in _PLAIN:
        return _PLAIN[kind], {}
    if kind == "Linear":
        return "linear", _tensors(leaf, "weight", "bias")
    if kind == "BatchNorm1d":
        if getattr(leaf, "running_mean", None) is None or getattr(leaf, "running_var", None) is None:
            raise _unsupported(path, leaf, "track_running_stats=False: it has no running statistics")
        token = _param("batchnorm1d", [leaf.eps], [1e-5])
        return token, _tensors(leaf, "weight", "bias", "running_mean", "running_var")
    if kind == "LayerNorm":
        shape = tuple(leaf.normalized_shape)
        if len(shape) != 1:
            raise _unsupported(path, leaf, f"normalized_shape={shape}; only one dimension")
        return _param("layernorm", [leaf.eps], [1e-5]), _tensors(leaf, "weight", "bias")
    if kind == "Dropout":
        return "dropout", {}
    if kind == "Flatten":
        if (leaf.start_dim, leaf.end_dim) != (1, -1):
            raise _unsupported(path, leaf, "only start_dim=1, end_dim=-1")
        return "flatten", {}
    if kind == "PReLU":
        return "prelu", _tensors(leaf, "weight")
    if kind == "LeakyReLU":
        return _param("leaky_relu", [leaf.negative_slope], [0.01]), {}
    if kind == "ELU":
        return _param("elu", [leaf.alpha], [1.0]), {}
    if kind == "CELU":
        return _param("celu", [leaf.alpha], [1.0]), {}
    if kind == "GELU":
        approximate = getattr(leaf, "approximate", "none")
        if approximate not in ("none", "tanh"):
            raise _unsupported(path, leaf, f"approximate={approximate!r}")
        return ("gelu" if approximate == "none" else "gelu_tanh"), {}
    if kind == "Softplus":
        return _param("softplus", [leaf.beta, leaf.threshold], [1.0, 20.0]), {}
    if kind == "Hardtanh":
        return _param("hardtanh", [leaf.min_val, leaf.max_val], [-1.0, 1.0]), {}
    if kind in ("Softmax", "LogSoftmax"):
        _last_dim(path, leaf)
        return ("softmax" if kind == "Softmax" else "log_softmax"), {}
    raise _unsupported(path, leaf)


def _tensors(leaf, *names):
    """The module's tensors among ``names`` that exist (a Linear without bias has ``bias=None``),
    as float32 numpy arrays."""
    out = {}
    for name in names:
        value = getattr(leaf, name, None)
        if value is not None:
            out[name] = _to_numpy(value)
    return out


def _to_numpy(t):
    if hasattr(t, "detach"):  # a torch tensor or parameter: off the graph, the device, bf16
        t = t.detach().cpu().float()
    return np.ascontiguousarray(np.asarray(t), dtype=np.float32)


def _safetensors(tensors):
    """The bytes of a safetensors file holding ``tensors`` (f32, little endian)."""
    header, blobs, offset = {}, [], 0
    for name, value in tensors.items():
        blob = value.astype("<f4", copy=False).tobytes()
        header[name] = {
            "dtype": "F32",
            "shape": list(value.shape),
            "data_offsets": [offset, offset + len(blob)],
        }
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the format aligns the data to 8 bytes
    return len(text).to_bytes(8, "little") + text + b"".join(blobs)


def _check(module, model, example_input):
    """Runs ``module`` and ``model`` on the same batch; a difference beyond float32 rounding means
    ``forward()`` is more than the children in order."""
    import torch  # only here: the module given is a torch module

    if example_input is None:
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(4, model.in_features, generator=gen)
    else:
        x = torch.as_tensor(np.asarray(example_input), dtype=torch.float32)
    flags = {m: m.training for m in module.modules()}
    first = next(iter(module.parameters()), None)
    dtype = first.dtype if first is not None and first.is_floating_point() else torch.float32
    module.eval()
    try:
        with torch.no_grad():
            # The module runs in its own dtype and on its own device (a bf16 model on a GPU).
            expected = module(x.to(device=first.device, dtype=dtype) if first is not None else x)
    finally:
        for m, training in flags.items():
            m.training = training
    expected = expected.detach().cpu().double().numpy()
    got = model(x.numpy(), device="cpu-reference").astype(np.float64)
    if expected.shape != got.shape:
        raise UnsupportedModuleError(
            f"wgpu_mlp.from_torch: {type(module).__name__}'s forward() returns shape "
            f"{tuple(expected.shape)} but its modules in order give {tuple(got.shape)}; it does "
            f"more than run its children in order. {_ONNX_ROUTE}"
        )
    scale = max(1.0, float(np.nanmax(np.abs(expected), initial=0.0)))
    # float32 rounding is far below 1e-3; a module held in half precision rounds more.
    tol = max(1e-3, 8 * torch.finfo(dtype).eps) * scale
    diff = np.abs(expected - got)
    same_nan = np.isnan(expected) == np.isnan(got)
    if not same_nan.all() or np.nanmax(diff, initial=0.0) > tol:
        raise UnsupportedModuleError(
            f"wgpu_mlp.from_torch: {type(module).__name__}'s forward() does more than run its "
            f"children in order (a functional call, arithmetic or a skip connection in forward(); "
            f"largest difference {float(np.nanmax(diff, initial=0.0)):.3g} on the check batch). "
            f"Its modules read as arch {model.arch!r}. {_ONNX_ROUTE}"
        )
