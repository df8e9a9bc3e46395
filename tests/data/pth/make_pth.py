"""`.pth` files as torch.save writes them, for the unpickler. Run with PyTorch 2.15 (not in CI):

    python tests/data/pth/make_pth.py

Each model case writes NAME.pth, NAME.x.npy and NAME.y64.npy (the model's float64 forward with
the weights as stored, so a reduced-precision file is compared with what it holds), and its
--arch into manifest.json. Refusal cases: a pickled whole module, the legacy (non-zip) format,
and a pickle that would run `os.system` when loaded with pickle (never loaded here)."""
import json
import os

import numpy as np
import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))


def mlp():
    return nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.1),
                         nn.Linear(8, 3))


ARCH = "linear,batchnorm1d,relu,dropout,linear"
manifest = []


def case(name, dtype, wrap, arch=ARCH):
    torch.manual_seed(len(manifest) + 500)
    model = mlp()
    with torch.no_grad():
        model[1].running_mean.copy_(torch.linspace(-0.3, 0.4, 8))
        model[1].running_var.copy_(torch.linspace(0.6, 1.7, 8))
        model[1].num_batches_tracked.fill_(7)
    model = model.eval().to(dtype)
    sd = model.state_dict()
    torch.save(wrap(sd), os.path.join(HERE, f"{name}.pth"))
    x = torch.randn(4, 5)
    np.save(os.path.join(HERE, f"{name}.x.npy"), x.numpy())
    with torch.no_grad():
        y64 = model.double()(x.double()).numpy()
    np.save(os.path.join(HERE, f"{name}.y64.npy"), y64)
    manifest.append({"name": name, "arch": arch, "keys": list(sd)})


case("state_dict", torch.float32, lambda sd: sd)
case("wrapped_state_dict", torch.float32, lambda sd: {"epoch": 3, "state_dict": sd})
case("wrapped_model", torch.float32, lambda sd: {"model": sd, "optimizer": None, "lr": 0.01})
case("f64", torch.float64, lambda sd: sd)
case("f16", torch.float16, lambda sd: sd)
case("bf16", torch.bfloat16, lambda sd: sd)

# A view into a larger tensor: the stored storage holds more than the tensor (offset, stride).
torch.manual_seed(600)
big = torch.randn(8, 12)
lin = nn.Linear(5, 3)
with torch.no_grad():
    shared = {"0.weight": big[2:5, 1:6], "0.bias": big[7, 4:7]}
torch.save(shared, os.path.join(HERE, "views.pth"))
x = torch.randn(4, 5)
np.save(os.path.join(HERE, "views.x.npy"), x.numpy())
y = x.double() @ shared["0.weight"].double().T + shared["0.bias"].double()
np.save(os.path.join(HERE, "views.y64.npy"), y.numpy())
manifest.append({"name": "views", "arch": "linear", "keys": list(shared)})

# Refused: a whole module, the legacy format, a hostile pickle.
torch.manual_seed(700)
torch.save(mlp(), os.path.join(HERE, "whole_module.pth"))
torch.save(mlp().state_dict(), os.path.join(HERE, "legacy.pth"),
           _use_new_zipfile_serialization=False)


class Hostile:
    def __reduce__(self):
        return (os.system, ("echo pwned > /tmp/wgpu_mlp_pwned",))


torch.save({"0.weight": torch.zeros(3, 5), "payload": Hostile()},
           os.path.join(HERE, "hostile.pth"))

with open(os.path.join(HERE, "manifest.json"), "w") as f:
    json.dump(manifest, f, indent=1)
    f.write("\n")
