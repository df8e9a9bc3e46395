"""Tiny ONNX files whose GPU shaders are expensive to compile (issue 24, item 8).

Run with /opt/torchvenv/bin/python (onnx). Writes, beside this script:
- mish64.onnx: Gemm(4->4) then 64 Mish nodes (1,178 bytes; the red team had 512: one Linear whose
  fused epilogue is 64 Mish, compiled into every Linear pipeline).
- distinct16.onnx: Gemm then 16 chunks of 64 elementwise nodes, each chunk a different sequence
  of operations, so no two chunks share a shader.
- repeated16.onnx: Gemm then the same 64-node chunk 16 times (identical chunks share one shader).
"""
import os
import onnx
from onnx import TensorProto, helper
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OPS = ["Mish", "Tanh", "Sigmoid", "Softplus", "Elu", "Selu", "Erf", "Abs"]


def model(ops, name):
    w = helper.make_tensor("w", TensorProto.FLOAT, [4, 4], np.eye(4, dtype=np.float32).ravel())
    nodes = [helper.make_node("Gemm", ["x", "w"], ["0"], transB=1)]
    for i, op in enumerate(ops):
        nodes.append(helper.make_node(op, [str(i)], [str(i + 1)]))
    nodes[-1].output[0] = "y"
    g = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])],
        [w],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)], producer_name="")
    m.ir_version = 8
    onnx.checker.check_model(m)
    path = os.path.join(HERE, name + ".onnx")
    onnx.save(m, path)
    print(name, os.path.getsize(path), "bytes")


def chunk(k):
    # 64 ops, a different rotation and stride of OPS for each k (16 distinct chunks).
    return [OPS[(k + i * (1 + k // 8)) % len(OPS)] for i in range(64)]


model(["Mish"] * 64, "mish64")
model([op for k in range(16) for op in chunk(k)], "distinct16")
model(chunk(3) * 16, "repeated16")
assert len({tuple(chunk(k)) for k in range(16)}) == 16
