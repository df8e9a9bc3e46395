#!/usr/bin/env python3
"""Make the real-PyTorch model fixtures in this folder (tests/data/models/).

Every file here is produced by PyTorch itself (plus torchsummary, the two ONNX exporters
and onnxruntime as a cross-check); nothing comes from wgpu-mlp's own code.

Run with a Python that has torch, onnx, onnxscript, onnxruntime, safetensors,
torchsummary==1.5.1 and numpy (see README.md):

    /work/venv-torch/bin/python tests/data/models/make_models.py

Deterministic: every case re-seeds torch before it builds its model and input, so a
re-run with the same package versions rewrites the same files (the dynamo .onnx files
embed Python stack traces, so they only match byte for byte when the venv lives at the
same path).
"""

import contextlib
import copy
import io
import json
import math
import os
import sys
import traceback
import warnings

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file
from torchsummary import summary

HERE = os.path.dirname(os.path.abspath(__file__))
BATCH = 5          # batch of x.npy / y.npy
DUMMY_BATCH = 3    # batch of the example input given to the exporters (must differ from BATCH)
LEGACY_OPSET = 17

torch.set_num_threads(1)  # same reduction order on every machine

# --------------------------------------------------------------------------------------
# Helpers that make the weights "look trained" (non-default norms, spread pre-activations)
# --------------------------------------------------------------------------------------


@torch.no_grad()
def randomize_bn(bn: nn.BatchNorm1d, batches: int = 1000):
    """Running stats and affine so that BatchNorm is far from the identity."""
    n = bn.num_features
    bn.running_mean.copy_(torch.randn(n) * 0.5)
    bn.running_var.copy_(torch.rand(n) * 1.5 + 0.5)  # U(0.5, 2)
    if bn.affine:
        bn.weight.copy_(torch.rand(n) + 0.5)  # U(0.5, 1.5)
        bn.bias.copy_(torch.randn(n) * 0.3)
    bn.num_batches_tracked.fill_(batches)


@torch.no_grad()
def randomize_ln(ln: nn.LayerNorm):
    if ln.weight is not None:
        ln.weight.copy_(torch.rand(ln.weight.shape) + 0.5)
    if ln.bias is not None:
        ln.bias.copy_(torch.randn(ln.bias.shape) * 0.3)


@torch.no_grad()
def calibrate_sequential(seq: nn.Sequential, x: torch.Tensor, stds):
    """Rescale each Linear (weight and bias by one factor) so that its output on x has
    the wanted standard deviation; stds[i] is for the i-th Linear. Returns, for each
    activation module, (index, class name, min, max) of its input on x."""
    h = x
    li = 0
    ranges = []
    for idx, m in enumerate(seq):
        if isinstance(m, nn.Linear):
            pre = m(h)
            k = stds[li] / pre.std().item()
            m.weight.mul_(k)
            if m.bias is not None:
                m.bias.mul_(k)
            li += 1
        elif not isinstance(m, (nn.Dropout, nn.Identity, nn.Flatten)):
            ranges.append((idx, type(m).__name__, round(h.min().item(), 3), round(h.max().item(), 3)))
        h = m(h)
    return ranges


# --------------------------------------------------------------------------------------
# Custom modules
# --------------------------------------------------------------------------------------


class MyModel(nn.Module):
    """The primer's model."""

    def __init__(self):
        super().__init__()
        self.linear1 = nn.Linear(3, 3)
        self.linear2 = nn.Linear(3, 2)
        nn.init.xavier_normal_(self.linear1.weight)
        nn.init.kaiming_normal_(self.linear2.weight)

    def forward(self, x):
        x = torch.sigmoid(self.linear1(x))
        x = self.linear2(x)
        return x


class NestedFunctional(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(11, 19), nn.ReLU(), nn.Linear(19, 19))
        self.head = nn.Linear(19, 3)

    def forward(self, x):
        return self.head(torch.tanh(self.net(x)))


FC_WIDTHS = [5, 6, 7, 9, 10, 11, 13, 14, 15, 17, 3]  # in, fc1 out, ..., fc10 out


class FcNatural(nn.Module):
    def __init__(self):
        super().__init__()
        for i in range(1, 11):
            setattr(self, f"fc{i}", nn.Linear(FC_WIDTHS[i - 1], FC_WIDTHS[i]))

    def forward(self, x):
        for i in range(1, 10):
            x = F.relu(getattr(self, f"fc{i}")(x))
        return self.fc10(x)


class FunctionalMix(nn.Module):
    """Activations called as functions in forward(), the way many users write models."""

    def __init__(self):
        super().__init__()
        self.fc_in = nn.Linear(10, 21)
        self.hidden = nn.Linear(21, 15)
        self.hidden2 = nn.Linear(15, 9)
        self.out = nn.Linear(9, 6)

    def forward(self, x):
        x = F.relu(self.fc_in(x))
        x = F.gelu(self.hidden(x))
        x = F.silu(self.hidden2(x))
        return F.softmax(self.out(x), dim=-1)


# --------------------------------------------------------------------------------------
# Cases
# --------------------------------------------------------------------------------------


def case_seq_bn():
    m = nn.Sequential(nn.Linear(13, 31), nn.BatchNorm1d(31), nn.ReLU(), nn.Dropout(0.3),
                      nn.Linear(31, 7), nn.Softmax(dim=1))
    randomize_bn(m[1])
    return dict(model=m, arch="linear,batchnorm1d,relu,dropout:0.3,linear,softmax", in_w=13)


def case_seq_ln():
    m = nn.Sequential(nn.Linear(13, 33), nn.LayerNorm(33), nn.GELU(), nn.Linear(33, 17),
                      nn.LayerNorm(17, eps=1e-3), nn.GELU(approximate="tanh"), nn.Linear(17, 5),
                      nn.LogSoftmax(dim=1))
    randomize_ln(m[1])
    randomize_ln(m[4])
    return dict(model=m, arch="linear,layernorm,gelu,linear,layernorm:0.001,gelu_tanh,linear,log_softmax",
                in_w=13)


def case_primer():
    return dict(model=MyModel(), arch="linear,F.sigmoid,linear", in_w=3,
                notes="The primer's MyModel: sigmoid is torch.sigmoid in forward(), so torchsummary "
                      "shows no Sigmoid row.")


ACTS_A = [
    (nn.Hardtanh(), "hardtanh", 4.0),
    (nn.Hardtanh(-2.0, 3.0), "hardtanh:-2:3", 4.0),
    (nn.ReLU6(), "relu6", 6.0),
    (nn.Softplus(), "softplus", 14.0),
    (nn.Softplus(beta=2.0, threshold=5.0), "softplus:2:5", 4.0),
    (nn.Mish(), "mish", 4.0),
    (nn.Hardswish(), "hardswish", 4.0),
    (nn.Hardsigmoid(), "hardsigmoid", 4.0),
    (nn.SELU(), "selu", 4.0),
]
ACTS_B = [
    (nn.PReLU(), "prelu", 4.0),
    (None, "prelu", 4.0),  # PReLU(num_parameters=C), built with the right C below
    (nn.ELU(alpha=0.5), "elu:0.5", 4.0),
    (nn.LeakyReLU(0.2), "leaky_relu:0.2", 4.0),
    (nn.SiLU(), "silu", 4.0),
    (nn.Tanh(), "tanh", 4.0),
    (nn.Sigmoid(), "sigmoid", 4.0),
    (nn.GELU(), "gelu", 4.0),
    (nn.ReLU(), "relu", 4.0),
]


def _acts_case(acts, widths, out_w, x):
    layers, tokens, stds = [], [], []
    for (act, tok, std), (a, b) in zip(acts, zip(widths, widths[1:])):
        layers.append(nn.Linear(a, b))
        if act is None:
            act = nn.PReLU(num_parameters=b)
        if isinstance(act, nn.PReLU):
            with torch.no_grad():
                act.weight.copy_(torch.rand(act.weight.shape) * 1.2 - 0.4)  # U(-0.4, 0.8)
        layers += [act]
        tokens += ["linear", tok]
        stds.append(std)
    layers.append(nn.Linear(widths[len(acts)], out_w))
    tokens.append("linear")
    stds.append(2.0)
    m = nn.Sequential(*layers)
    ranges = calibrate_sequential(m, x, stds)
    return m, ",".join(tokens), ranges


def case_acts_a():
    widths = [13, 15, 17, 19, 21, 23, 25, 27, 29, 31]
    x = torch.randn(BATCH, widths[0])
    m, arch, ranges = _acts_case(ACTS_A, widths, 3, x)
    return dict(model=m, arch=arch, in_w=widths[0], x=x, preact_ranges=ranges,
                notes="Weights rescaled (per Linear, by PyTorch on x.npy) so that pre-activations cross "
                      "the breakpoints: +-1 (hardtanh), -2/3, 6 (relu6), 20 (softplus threshold), "
                      "2.5 (softplus beta=2 threshold=5), +-3 (hardswish/hardsigmoid). The legacy "
                      "exporter writes Softplus(beta, threshold) as Softplus(x*beta)/beta and DROPS "
                      "the threshold (PyTorch returns x where beta*x > threshold), hence its larger "
                      "ort_max_abs_diff (~1e-4); the dynamo export keeps it (Greater + Where).")


def case_acts_b():
    widths = [13, 15, 17, 19, 21, 23, 25, 27, 29, 31]
    x = torch.randn(BATCH, widths[0])
    m, arch, ranges = _acts_case(ACTS_B, widths, 3, x)
    return dict(model=m, arch=arch, in_w=widths[0], x=x, preact_ranges=ranges,
                notes="PReLU weights random in U(-0.4, 0.8) (first: 1 parameter, second: one per "
                      "channel, 17). Weights rescaled so pre-activations span about +-10.")


def case_nobias_flatten():
    m = nn.Sequential(nn.Flatten(), nn.Linear(13, 9, bias=False), nn.ReLU(), nn.Identity(),
                      nn.Linear(9, 4, bias=False))
    return dict(model=m, arch="flatten,linear,relu,identity,linear", in_w=13,
                notes="Linear layers without bias: the state_dict has only 1.weight and 4.weight.")


def case_nested_functional():
    return dict(model=NestedFunctional(), arch="linear,relu,linear,F.tanh,linear", in_w=11,
                names="net.0,net.2,head",
                notes="Plain sort of the key prefixes gives head before net.*; the names metadata "
                      "gives the forward order.")


def case_fc_natural():
    return dict(model=FcNatural(), arch=",".join(["linear,F.relu"] * 9 + ["linear"]), in_w=FC_WIDTHS[0],
                notes="fc1..fc10 in forward order; natural order (fc2 < fc10) is right, plain string "
                      "order (fc1, fc10, fc2, ...) is wrong, and every width differs so a wrong "
                      "order fails on shapes. Widths " + "->".join(map(str, FC_WIDTHS)) + ".")


def case_bn_first():
    m = nn.Sequential(nn.BatchNorm1d(13), nn.Linear(13, 8), nn.Tanh(), nn.Linear(8, 3))
    randomize_bn(m[0])
    return dict(model=m, arch="batchnorm1d,linear,tanh,linear", in_w=13,
                notes="A BatchNorm before any Linear (input normalisation).")


def case_ln_4096():
    m = nn.Sequential(nn.Linear(3, 4096), nn.LayerNorm(4096), nn.ReLU(), nn.Linear(4096, 3))
    randomize_ln(m[1])
    return dict(model=m, arch="linear,layernorm,relu,linear", in_w=3,
                notes="LayerNorm over 4096 features. Input width 3 (not 7) keeps the weight file "
                      "under 150 KB.")


def case_norm_variants():
    m = nn.Sequential(nn.Linear(9, 10), nn.BatchNorm1d(10, affine=False), nn.ReLU(),
                      nn.Linear(10, 11), nn.LayerNorm(11, elementwise_affine=False), nn.Tanh(),
                      nn.Linear(11, 6), nn.LayerNorm(6, bias=False), nn.ELU(),
                      nn.Linear(6, 5), nn.BatchNorm1d(5, eps=1e-3, momentum=0.01), nn.Dropout(),
                      nn.Linear(5, 4), nn.Softmax(dim=-1))
    randomize_bn(m[1])
    randomize_ln(m[7])
    randomize_bn(m[10])
    return dict(model=m,
                arch="linear,batchnorm1d,relu,linear,layernorm,tanh,linear,layernorm,elu,"
                     "linear,batchnorm1d:0.001,dropout,linear,softmax",
                in_w=9,
                notes="BatchNorm1d(affine=False) (only running stats + num_batches_tracked), "
                      "LayerNorm(elementwise_affine=False) (no tensors at all), LayerNorm(bias=False) "
                      "(weight only), BatchNorm1d(eps=1e-3, momentum=0.01) (momentum does not matter "
                      "in eval), Dropout() with the default p=0.5, Softmax(dim=-1).")


def case_functional_mix():
    return dict(model=FunctionalMix(), arch="linear,F.relu,linear,F.gelu,linear,F.silu,linear,F.softmax",
                in_w=10,
                notes="Every activation is a torch.nn.functional call in forward(); torchsummary shows "
                      "only the four Linear rows. Module names fc_in, hidden, hidden2, out: natural "
                      "order of the key prefixes (fc_in, hidden, hidden2, out) happens to be forward order.")


def case_regression_1out():
    m = nn.Sequential(nn.Linear(6, 23), nn.ELU(), nn.Linear(23, 23), nn.LeakyReLU(), nn.Linear(23, 1))
    return dict(model=m, arch="linear,elu,linear,leaky_relu,linear", in_w=6,
                notes="Regression head with one output (y is [5, 1]); LeakyReLU with the default slope 0.01.")


CASES = [
    ("seq_bn", case_seq_bn, 1.0),
    ("seq_ln", case_seq_ln, 1.0),
    ("primer", case_primer, 1.0),
    ("acts_a", case_acts_a, 1.0),
    ("acts_b", case_acts_b, 1.0),
    ("nobias_flatten", case_nobias_flatten, 1.5),
    ("nested_functional", case_nested_functional, 1.0),
    ("fc_natural", case_fc_natural, 1.0),
    ("bn_first", case_bn_first, 2.0),
    ("ln_4096", case_ln_4096, 1.0),
    ("norm_variants", case_norm_variants, 1.0),
    ("functional_mix", case_functional_mix, 1.0),
    ("regression_1out", case_regression_1out, 1.0),
]

# --------------------------------------------------------------------------------------
# Export and inspection
# --------------------------------------------------------------------------------------


def op_types(model: onnx.ModelProto):
    ops = set()

    def visit(graph):
        for n in graph.node:
            ops.add(n.op_type if n.domain in ("", "ai.onnx") else f"{n.domain}::{n.op_type}")
            for a in n.attribute:
                if a.type == onnx.AttributeProto.GRAPH:
                    visit(a.g)
    visit(model.graph)
    for f in model.functions:
        for n in f.node:
            ops.add(f"{n.domain or ''}::{n.op_type}" if n.domain else n.op_type)
    return sorted(ops)


def default_opset(model: onnx.ModelProto):
    for o in model.opset_import:
        if o.domain in ("", "ai.onnx"):
            return o.version
    return None


ELIDED_META = ("pkg.torch.onnx.stack_trace", "pkg.torch.onnx.fx_node")


def fmt_attr(a):
    v = onnx.helper.get_attribute_value(a)
    if isinstance(v, bytes):
        v = v.decode()
    elif isinstance(v, onnx.TensorProto):
        arr = onnx.numpy_helper.to_array(v)
        v = f"tensor {onnx.TensorProto.DataType.Name(v.data_type)}{list(arr.shape)} = {arr.flatten()[:8].tolist()}"
    elif isinstance(v, list):
        v = [x.decode() if isinstance(x, bytes) else x for x in v]
    return f"{a.name}={v}"


def fmt_value_info(vi):
    t = vi.type.tensor_type
    dims = []
    for d in t.shape.dim:
        dims.append(d.dim_param if d.HasField("dim_param") else (str(d.dim_value) if d.HasField("dim_value") else "?"))
    return f"{vi.name}: {onnx.TensorProto.DataType.Name(t.elem_type)}[{', '.join(dims)}]"


def fmt_meta(props, indent):
    out = []
    for p in props:
        if p.key in ELIDED_META:
            out.append(f"{indent}{p.key}: <{len(p.value)} chars, elided>")
        else:
            out.append(f"{indent}{p.key}: {p.value}")
    return out


def dump_graph(title, model: onnx.ModelProto, state_dict):
    g = model.graph
    lines = [f"===== {title} =====",
             f"ir_version={model.ir_version} producer={model.producer_name} {model.producer_version} "
             f"opsets={[(o.domain or 'ai.onnx', o.version) for o in model.opset_import]} graph.name={g.name!r}"]
    if model.metadata_props:
        lines.append("model metadata_props:")
        lines += fmt_meta(model.metadata_props, "    ")
    lines.append("inputs:")
    for vi in g.input:
        lines.append("    " + fmt_value_info(vi))
        lines += fmt_meta(vi.metadata_props, "        ")
    lines.append("outputs:")
    for vi in g.output:
        lines.append("    " + fmt_value_info(vi))
        lines += fmt_meta(vi.metadata_props, "        ")
    lines.append("initializers (name dtype[shape], == state_dict[name]?):")
    for t in g.initializer:
        arr = onnx.numpy_helper.to_array(t)
        same = ""
        if t.name in state_dict:
            sd = state_dict[t.name].detach().cpu().numpy()
            same = " == state_dict" if (sd.shape == arr.shape and np.array_equal(sd, arr)) else " DIFFERS from state_dict"
        else:
            same = " (not a state_dict key)"
            if arr.size <= 8:
                same += f" = {arr.flatten().tolist()}"
        lines.append(f"    {t.name}: {onnx.TensorProto.DataType.Name(t.data_type)}{list(arr.shape)}{same}")
        lines += fmt_meta(t.metadata_props, "        ")
    inits = {t.name for t in g.initializer}
    vis = [vi for vi in g.value_info if vi.name not in inits]
    if vis:
        lines.append("value_info (intermediate tensors; initializers left out):")
        for vi in vis:
            lines.append("    " + fmt_value_info(vi))
    lines.append(f"nodes ({len(g.node)}):")
    for n in g.node:
        dom = f"{n.domain}::" if n.domain else ""
        lines.append(f"  [{dom}{n.op_type}] name={n.name!r} in={list(n.input)} out={list(n.output)}")
        if n.attribute:
            lines.append("      attrs: " + "; ".join(fmt_attr(a) for a in n.attribute))
        lines += fmt_meta(n.metadata_props, "      ")
    if model.functions:
        lines.append(f"functions ({len(model.functions)}):")
        for f in model.functions:
            lines.append(f"  function {f.domain}::{f.name} in={list(f.input)} out={list(f.output)}")
            for n in f.node:
                lines.append(f"    [{n.op_type}] in={list(n.input)} out={list(n.output)}"
                             + (" attrs: " + "; ".join(fmt_attr(a) for a in n.attribute) if n.attribute else ""))
    lines.append("")
    return "\n".join(lines)


def export_dynamo(model, dummy, path):
    torch.onnx.export(model, (dummy,), path, dynamo=True, external_data=False,
                      dynamic_shapes=({0: torch.export.Dim("batch")},))


def export_legacy(model, dummy, path):
    torch.onnx.export(model, (dummy,), path, dynamo=False, opset_version=LEGACY_OPSET,
                      input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})


def run_ort(path, x):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def torchsummary_text(model, in_w):
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        summary(model, (in_w,), device="cpu")
    return buf.getvalue()


def sort_metadata_keys(path):
    """safetensors writes __metadata__ from a Rust HashMap, so with two keys their order in the
    header changes from run to run. Rewrite the header with the metadata keys sorted (same
    length, same JSON otherwise) so that re-runs give the same bytes."""
    with open(path, "rb") as f:
        data = f.read()
    n = int.from_bytes(data[:8], "little")
    raw = data[8:8 + n]
    text = raw.decode("utf-8")
    body = text.rstrip(" ")
    hdr = json.loads(body, object_pairs_hook=lambda kv: dict(kv))
    md = hdr.get("__metadata__")
    if not md or list(md) == sorted(md):
        return
    hdr["__metadata__"] = {k: md[k] for k in sorted(md)}
    hdr = {"__metadata__": hdr.pop("__metadata__"), **hdr}
    new = json.dumps(hdr, separators=(",", ":"), ensure_ascii=False)
    assert len(new) == len(body), (len(new), len(body))
    new = new + text[len(body):]
    with open(path, "wb") as f:
        f.write(data[:8] + new.encode("utf-8") + data[8 + n:])


def save_meta(sd, path, metadata):
    save_file(sd, path, metadata=metadata)
    sort_metadata_keys(path)


def meta_for(arch, names):
    md = {"wgpu_mlp.arch": arch}
    if names:
        md["wgpu_mlp.names"] = names
    return md


def make_case(name, builder, x_scale, graphs, seed):
    torch.manual_seed(seed)
    spec = builder()
    model = spec["model"].eval()
    in_w = spec["in_w"]
    x = spec.get("x")
    if x is None:
        x = torch.randn(BATCH, in_w) * x_scale
    x = x.float().contiguous()
    dummy = torch.randn(DUMMY_BATCH, in_w)

    p = lambda suffix: os.path.join(HERE, name + suffix)
    sd = model.state_dict()
    save_file(sd, p(".safetensors"))
    save_meta(sd, p(".meta.safetensors"), meta_for(spec["arch"], spec.get("names")))

    with torch.no_grad():
        y = model(x)
        y64 = copy.deepcopy(model).double()(x.double())
    np.save(p(".x.npy"), x.numpy())
    np.save(p(".y.npy"), y.numpy())
    np.save(p(".y64.npy"), y64.numpy())

    text = torchsummary_text(model, in_w)
    with open(p(".summary.txt"), "w") as f:
        f.write(text)
    model.eval()  # torchsummary does not change the mode, but be sure

    entry = {
        "name": name,
        "arch": spec["arch"],
        "in": in_w,
        "out": int(y.shape[1]),
        "batch": BATCH,
        "seed": seed,
        "x_scale": x_scale,
        "prefix": "",
        "state_dict_keys": list(sd.keys()),
        "max_abs_y_minus_y64": float(np.max(np.abs(y.numpy().astype(np.float64) - y64.numpy()))),
    }
    if spec.get("names"):
        entry["names"] = spec["names"]
    if spec.get("preact_ranges"):
        entry["preact_ranges"] = [
            {"module_index": i, "module": c, "input_min": lo, "input_max": hi}
            for i, c, lo, hi in spec["preact_ranges"]
        ]

    diffs, errors = {}, {}
    for kind, fn, in (("dynamo", export_dynamo), ("legacy", export_legacy)):
        path = p(f".{kind}.onnx")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fn(copy.deepcopy(model).eval(), dummy, path)
            if os.path.exists(path + ".data"):
                raise RuntimeError("exporter wrote external data")
            mp = onnx.load(path)
            onnx.checker.check_model(mp)
            entry[f"{kind}_ops"] = op_types(mp)
            entry[f"{kind}_opset"] = default_opset(mp)
            entry[f"{kind}_input"] = fmt_value_info(mp.graph.input[0])
            entry[f"{kind}_output"] = fmt_value_info(mp.graph.output[0])
            got = run_ort(path, x.numpy())
            diffs[kind] = float(np.max(np.abs(got.astype(np.float64) - y.numpy().astype(np.float64))))
            diffs[kind + "_vs_y64"] = float(np.max(np.abs(got.astype(np.float64) - y64.numpy())))
            graphs.append(dump_graph(f"{name}.{kind}.onnx", mp, sd))
        except Exception as e:  # keep going; record the failure
            msg = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
            errors[kind] = msg
            entry[f"{kind}_ops"] = None
            entry[f"{kind}_opset"] = None
            for f in (path, path + ".data"):
                if os.path.exists(f):
                    os.remove(f)
            graphs.append(f"===== {name}.{kind}.onnx =====\nEXPORT FAILED: {msg}\n")
            traceback.print_exc()
    entry["ort_max_abs_diff"] = diffs
    if errors:
        entry["export_errors"] = errors
    entry["notes"] = spec.get("notes", "")
    return model, x, entry


def prefixed_variants(model, base_entry, spec_names):
    """nested_functional's state_dict as saved from torch.compile(model) and nn.DataParallel(model)."""
    out = []
    variants = []
    try:
        compiled = torch.compile(model)  # state_dict() does not trigger compilation
        variants.append(("nested_functional_compiled", compiled.state_dict(), "_orig_mod.",
                         "state_dict() of torch.compile(model) (a real OptimizedModule; no compilation "
                         "is needed to read its state_dict)."))
    except Exception as e:
        sd = {"_orig_mod." + k: v for k, v in model.state_dict().items()}
        variants.append(("nested_functional_compiled", sd, "_orig_mod.",
                         f"EMULATED by renaming keys: torch.compile failed ({type(e).__name__})."))
    try:
        dp = nn.DataParallel(model)  # on a CPU-only machine it just wraps the module
        variants.append(("nested_functional_dataparallel", dp.state_dict(), "module.",
                         "state_dict() of nn.DataParallel(model) (real wrapper; no GPU here, so it "
                         "wraps without replicating)."))
    except Exception as e:
        sd = {"module." + k: v for k, v in model.state_dict().items()}
        variants.append(("nested_functional_dataparallel", sd, "module.",
                         f"EMULATED by renaming keys: nn.DataParallel failed ({type(e).__name__})."))
    for name, sd, prefix, note in variants:
        assert all(k.startswith(prefix) for k in sd), (name, list(sd))
        names = ",".join(prefix + n for n in spec_names.split(","))
        save_file(sd, os.path.join(HERE, name + ".safetensors"))
        save_meta(sd, os.path.join(HERE, name + ".meta.safetensors"), meta_for(base_entry["arch"], names))
        out.append({
            "name": name,
            "variant_of": base_entry["name"],
            "arch": base_entry["arch"],
            "names": names,
            "in": base_entry["in"],
            "out": base_entry["out"],
            "batch": BATCH,
            "prefix": prefix,
            "state_dict_keys": list(sd.keys()),
            "dynamo_ops": None,
            "legacy_ops": None,
            "dynamo_opset": None,
            "legacy_opset": None,
            "ort_max_abs_diff": {},
            "files": [name + ".safetensors", name + ".meta.safetensors"],
            "notes": note + f" Same weights as {base_entry['name']}: use {base_entry['name']}.x.npy / "
                            f".y.npy / .y64.npy / .summary.txt. wgpu_mlp.names carries the prefix "
                            f"(it lists the key prefixes exactly as they are in this file).",
        })
    return out


def main():
    print("torch", torch.__version__, "onnx", onnx.__version__, "onnxruntime", ort.__version__, file=sys.stderr)
    graphs = []
    manifest = []
    for i, (name, builder, x_scale) in enumerate(CASES):
        seed = 1000 + i
        print(f"--- {name}", file=sys.stderr)
        model, x, entry = make_case(name, builder, x_scale, graphs, seed)
        files = [name + s for s in (".safetensors", ".meta.safetensors", ".dynamo.onnx", ".legacy.onnx",
                                    ".x.npy", ".y.npy", ".y64.npy", ".summary.txt")]
        entry["files"] = [f for f in files if os.path.exists(os.path.join(HERE, f))]
        manifest.append(entry)
        if name == "nested_functional":
            manifest += prefixed_variants(model, entry, entry["names"])
    with open(os.path.join(HERE, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    header = (
        "Readable listing of every .onnx file in this folder, written by make_models.py.\n"
        "Per file: opsets, graph inputs/outputs with shapes (a dim_param such as 'batch' is the dynamic\n"
        "batch axis), initializers (and whether each equals the state_dict tensor of the same name),\n"
        "then every node: [op_type] name, inputs, outputs, attributes, metadata_props.\n"
        "The metadata keys pkg.torch.onnx.stack_trace and pkg.torch.onnx.fx_node are long and elided\n"
        "here (their length is shown); open the .onnx file to read them.\n\n"
    )
    with open(os.path.join(HERE, "onnx_graphs.txt"), "w") as f:
        f.write(header + "\n".join(graphs))


if __name__ == "__main__":
    main()
