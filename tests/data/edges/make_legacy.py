#!/usr/bin/env python3
"""ONNX files in legacy opsets (PyTorch no longer exports them), built with onnx.helper, for
tests/onnx_ops.rs. Writes legacy/*.onnx and legacy/expected.json next to this file.

- clip6_*: opset 6 `Clip` with `min` only, `max` only, neither, both (a bound left out is
  +-FLT_MAX in Clip-6, so +inf becomes 3.4028235e38);
- add6_* / mul6_*: opset 6 `Add` / `Mul` with `broadcast=1` and an `axis`: B lined up with A from
  `axis` (axis=0 with one value per row adds per row);
- dup_attr: a `LeakyRelu` that gives `alpha` twice (onnx.checker refuses it).

Each graph is x [6, 1] -> MatMul by [[1, -1, 0.5]] (so +-inf stay +-inf) -> the op. expected.json holds, for the files
the importer must compute, the input and what onnx's reference evaluator (onnx.reference)
returns, as float32 bit patterns in hex; for the others, why they must be refused. Run:

    /opt/torchvenv/bin/python tests/data/edges/make_legacy.py
"""

import json
import math
import os
import struct

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "legacy")
X = np.array([[1.5], [-2.0], [math.inf], [-math.inf], [math.nan], [0.25]], dtype=np.float32)
W = np.array([[1.0, -1.0, 0.5]], dtype=np.float32)


def h32(v):
    return "0x%08x" % struct.unpack("<I", struct.pack("<f", float(v)))[0]


def model(name, opset, nodes, inits, check=True):
    w = numpy_helper.from_array(W, "W")
    inits = [w] + inits
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["h"])] + nodes, name,
        # IR 3 lists the initializers among the graph's inputs too.
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [6, 1])]
        + [helper.make_tensor_value_info(t.name, TensorProto.FLOAT, list(t.dims))
           for t in inits],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [6, 3])],
        inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                          producer_name="make_legacy.py")
    m.ir_version = 3
    if check:
        onnx.checker.check_model(m)
    onnx.save(m, os.path.join(HERE, f"{name}.onnx"))
    return m


def main():
    os.makedirs(HERE, exist_ok=True)
    computed, refused = {}, {}

    def run(name, m):
        y = ReferenceEvaluator(m).run(None, {"x": X})[0]
        computed[name] = {"x": [h32(v) for v in X.reshape(-1)],
                          "y": [h32(v) for v in np.asarray(y, dtype=np.float32).reshape(-1)]}

    clip = lambda **kw: [helper.make_node("Clip", ["h"], ["y"], **kw)]
    run("clip6_min", model("clip6_min", 6, clip(min=0.0), []))
    run("clip6_max", model("clip6_max", 6, clip(max=1.0), []))
    run("clip6_none", model("clip6_none", 6, clip(), []))
    run("clip6_both", model("clip6_both", 6, clip(min=-1.0, max=1.0), []))

    def bcast(op, name, b, **kw):
        init = numpy_helper.from_array(np.asarray(b, dtype=np.float32), "B")
        return model(name, 6, [helper.make_node(op, ["h", "B"], ["y"], broadcast=1, **kw)], [init])

    # B ends where A ends, or holds one value: numpy's broadcasting gives the same.
    run("add6_axis1", bcast("Add", "add6_axis1", [10.0, 20.0, 30.0], axis=1))
    run("add6_axis_minus1", bcast("Add", "add6_axis_minus1", [10.0, 20.0, 30.0], axis=-1))
    run("add6_no_axis", bcast("Add", "add6_no_axis", [10.0, 20.0, 30.0]))
    run("mul6_axis0_one", bcast("Mul", "mul6_axis0_one", [3.0], axis=0))
    # B lines up with A's rows: per-row values, which an MLP of any batch cannot hold.
    for op, name in [("Add", "add6_axis0"), ("Mul", "mul6_axis0"), ("Sub", "sub6_axis0")]:
        bcast(op, name, [10.0, 20.0, 30.0, 40.0, 50.0, 60.0], axis=0)
        refused[name] = {"why": "legacy broadcast along axis 0 (onnx.reference has no legacy "
                                "broadcast: B[i] applies to row i of A)"}

    dup = helper.make_node("LeakyRelu", ["h"], ["y"], alpha=0.1)
    dup.attribute.extend([helper.make_attribute("alpha", 0.2)])
    m = model("dup_attr", 13, [dup], [], check=False)
    try:
        onnx.checker.check_model(m)
        raise SystemExit("onnx.checker took an attribute given twice")
    except onnx.checker.ValidationError as e:
        refused["dup_attr"] = {"why": "attribute given twice", "checker": str(e).splitlines()[0]}

    with open(os.path.join(HERE, "expected.json"), "w") as f:
        json.dump({"onnx": onnx.__version__, "computed": computed, "refused": refused}, f,
                  indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
