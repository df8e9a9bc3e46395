"""Fixtures for binding a bare state_dict whose module names do not sort in forward order
(`classifier` < `features`, `fc_hidden` < `fc_in`), one where several orders fit, and
self-describing files that start with a single-slope PReLU. Run with PyTorch 2.15 and
safetensors (not in CI):

    python tests/data/binding/make_order.py

Each case writes NAME.safetensors (safetensors.torch.save_file of the state_dict; for the
prelu cases with the architecture in the metadata), NAME.x.npy and NAME.y64.npy (the model's
float64 forward), and its arch and forward order of names into order_manifest.json. Two cases
are also saved with torch.save as NAME.pth."""
import json
import os

import numpy as np
import torch
import torch.nn as nn
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))


class FeaturesClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 8), nn.ReLU())
        self.classifier = nn.Linear(8, 3)

    def forward(self, x):
        return self.classifier(self.features(x))


class FcNames(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc_in = nn.Linear(5, 12)
        self.norm = nn.LayerNorm(12)
        self.fc_hidden = nn.Linear(12, 12)
        self.fc_out = nn.Linear(12, 2)

    def forward(self, x):
        x = nn.functional.gelu(self.norm(self.fc_in(x)))
        return self.fc_out(nn.functional.gelu(self.fc_hidden(x)))


class TwoSame(nn.Module):
    """c runs first, then a and b (both 8 -> 8): c,a,b and c,b,a both fit the shapes."""

    def __init__(self):
        super().__init__()
        self.a = nn.Linear(8, 8)
        self.b = nn.Linear(8, 8)
        self.c = nn.Linear(4, 8)

    def forward(self, x):
        return self.b(torch.relu(self.a(torch.relu(self.c(x)))))


CASES = [
    ("features_classifier", FeaturesClassifier, 6, "linear,relu,linear,relu,linear",
     "features.0,features.2,classifier", True),
    ("fc_names", FcNames, 5, "linear,layernorm,F.gelu,linear,F.gelu,linear",
     "fc_in,norm,fc_hidden,fc_out", True),
    ("two_same", TwoSame, 4, "linear,F.relu,linear,F.relu,linear", "c,a,b", False),
    ("prelu_first", lambda: nn.Sequential(nn.PReLU(), nn.Linear(4, 3)), 4, "prelu,linear", "",
     False),
    ("prelu_dropout_first",
     lambda: nn.Sequential(nn.PReLU(), nn.Dropout(0.1), nn.PReLU(), nn.Linear(5, 2), nn.PReLU()),
     5, "prelu,dropout,prelu,linear,prelu", "", False),
]

manifest = []
for seed, (name, make, in_w, arch, names, pth) in enumerate(CASES):
    torch.manual_seed(800 + seed)
    model = make().eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.PReLU):
                m.weight.fill_(0.1 + 0.2 * seed)
    sd = {k: v.contiguous() for k, v in model.state_dict().items()}
    meta = {"wgpu_mlp.arch": arch} if name.startswith("prelu") else None
    save_file(sd, os.path.join(HERE, f"{name}.safetensors"), metadata=meta)
    if pth:
        torch.save(model.state_dict(), os.path.join(HERE, f"{name}.pth"))
    x = torch.randn(5, in_w)
    np.save(os.path.join(HERE, f"{name}.x.npy"), x.numpy())
    with torch.no_grad():
        np.save(os.path.join(HERE, f"{name}.y64.npy"), model.double()(x.double()).numpy())
    manifest.append({"name": name, "arch": arch, "names": names, "keys": list(sd)})
with open(os.path.join(HERE, "order_manifest.json"), "w") as f:
    json.dump(manifest, f, indent=1)
    f.write("\n")
