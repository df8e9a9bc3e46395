"""from_torch on live PyTorch modules, run by hand (CI has no torch; python/README.md records the
last run):

    PYTHONPATH=python/tests/fixtures /opt/torchvenv/bin/python python/tests/torch_check.py

with the wheel installed in that environment (or python/pysrc on PYTHONPATH after
`maturin develop`). It runs the README's Python example as written, every structure of
fixtures/make_fixtures.py from the live modules, and the refusals. Exits non-zero on any failure.
"""

import copy
import os
import re
import sys

import numpy as np
import torch
from torch import nn

import wgpu_mlp
from make_fixtures import FunctionalInForward, cases, randomize_norms

HERE = os.path.dirname(os.path.abspath(__file__))
README = os.path.join(HERE, "..", "..", "README.md")
failures = []


def check(what, ok, detail=""):
    print(f"{'ok  ' if ok else 'FAIL'} {what} {detail}")
    if not ok:
        failures.append(what)


def readme_example():
    text = open(README).read()
    section = text[text.index("## Python"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    scope = {}
    exec(code, scope)  # the README's example, as printed there
    y, net, x = scope["y"], scope["net"], scope["x"]
    diff = np.abs(y - net.eval()(x).detach().numpy()).max()
    check("README example", diff < 1e-5, f"max |diff| vs PyTorch {diff:.2e}")


def structures():
    for i, (name, build, width) in enumerate(cases()):
        torch.manual_seed(2000 + i)
        module = randomize_norms(build())
        if name.startswith("bad_"):
            try:
                wgpu_mlp.from_torch(module)
                check(f"{name} refused", False, "was taken")
            except wgpu_mlp.UnsupportedModuleError as e:
                check(f"{name} refused", "ONNX" in str(e), str(e)[:110])
            continue
        x = torch.randn(5, width)
        module.train()  # from_torch must read eval semantics and restore the flag
        model = wgpu_mlp.from_torch(module, example_input=x)
        check(f"{name} training flag restored", module.training)
        y64 = copy.deepcopy(module).eval().double()(x.double()).detach().numpy()
        for device in ("cpu-reference", "cpu", "gpu"):
            y = model(x, device=device)  # a torch CPU tensor straight in
            ok = np.allclose(y, y64, rtol=1e-4, atol=1e-5)
            check(f"{name} on {device}", ok, f"max |diff| {np.abs(y - y64).max():.2e}")


def refusals():
    try:
        wgpu_mlp.from_torch(FunctionalInForward())
        check("functional call in forward() refused", False)
    except wgpu_mlp.UnsupportedModuleError as e:
        check("functional call in forward() refused", "forward()" in str(e), str(e)[:110])
    x = torch.randn(3, 4, requires_grad=True)
    model = wgpu_mlp.from_torch(nn.Sequential(nn.Linear(4, 2)))
    try:
        model(x)
        check("tensor requiring grad refused", False)
    except wgpu_mlp.InvalidArgumentError as e:
        check("tensor requiring grad refused", "detach" in str(e), str(e)[:110])
    bf16 = nn.Sequential(nn.Linear(4, 3), nn.Tanh()).to(torch.bfloat16)
    y = wgpu_mlp.from_torch(bf16, example_input=torch.randn(2, 4))(np.ones((1, 4), np.float32))
    check("bfloat16 module read as float32", y.dtype == np.float32 and y.shape == (1, 3))


if __name__ == "__main__":
    print(f"torch {torch.__version__}, wgpu_mlp {wgpu_mlp.__version__}, adapters "
          f"{[a['name'] + ' ' + a['backend'] for a in wgpu_mlp.adapters()]}")
    readme_example()
    structures()
    refusals()
    print(f"{len(failures)} failed" if failures else "all passed")
    sys.exit(1 if failures else 0)
