#!/usr/bin/env python3
"""Train the browser demo's digit classifier on scikit-learn's bundled load_digits().

Deterministic (fixed seeds, one CPU thread). Writes, next to this file:
  digits.safetensors  state_dict of the nn.Sequential, with __metadata__ wgpu_mlp.arch
  heldout.json        32 held-out samples (3 per class, then 2 that PyTorch misclassifies)
                      with PyTorch's prediction and probabilities
  metrics.json        the held-out accuracy and the training settings

Input to the model: the 64 pixel values (0..16, row-major 8x8, as load_digits gives them)
divided by 16, i.e. float32 in [0, 1].

Run:  /work/venv-torch/bin/python web/model/train_digits.py
"""

import json
import os

import numpy as np
import sklearn
import torch
import torch.nn as nn
from safetensors.torch import save_file
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

HERE = os.path.dirname(os.path.abspath(__file__))
ARCH = "linear,relu,linear,relu,linear,softmax"
SEED = 0
EPOCHS = 150
BATCH = 64
LR = 1e-3
WEIGHT_DECAY = 1e-4

torch.set_num_threads(1)


def build():
    return nn.Sequential(
        nn.Linear(64, 64), nn.ReLU(),
        nn.Linear(64, 32), nn.ReLU(),
        nn.Linear(32, 10), nn.Softmax(dim=1),
    )


def f32(v):
    """A float32 value as the shortest decimal that reads back to it."""
    return float(str(np.float32(v)))


def main():
    X, y = load_digits(return_X_y=True)  # X: (1797, 64) float64 with integer values 0..16
    idx = np.arange(len(y))
    Xtr, Xte, ytr, yte, itr, ite = train_test_split(X, y, idx, test_size=0.25, random_state=0, stratify=y)
    xtr = torch.tensor(Xtr / 16.0, dtype=torch.float32)
    xte = torch.tensor(Xte / 16.0, dtype=torch.float32)
    ttr = torch.tensor(ytr, dtype=torch.long)

    torch.manual_seed(SEED)
    model = build()
    logits_of = model[:-1]  # train on logits; the Softmax is kept for inference
    opt = torch.optim.Adam(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    loss_fn = nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(SEED)
    for epoch in range(EPOCHS):
        model.train()
        perm = torch.randperm(len(xtr), generator=gen)
        for s in range(0, len(perm), BATCH):
            b = perm[s:s + BATCH]
            opt.zero_grad()
            loss = loss_fn(logits_of(xtr[b]), ttr[b])
            loss.backward()
            opt.step()

    model.eval()
    with torch.no_grad():
        probs = model(xte)
        train_acc = (model(xtr).argmax(1).numpy() == ytr).mean()
    pred = probs.argmax(1).numpy()
    correct = int((pred == yte).sum())
    acc = correct / len(yte)
    print(f"held-out accuracy {correct}/{len(yte)} = {acc:.4%}; train accuracy {train_acc:.4%}")

    save_file(model.state_dict(), os.path.join(HERE, "digits.safetensors"), metadata={"wgpu_mlp.arch": ARCH})

    # 3 per class (the first ones in test order), then the first 2 samples PyTorch gets wrong,
    # so that a demo or test also sees a wrong prediction reproduced.
    chosen = [j for cls in range(10) for j in np.flatnonzero(yte == cls)[:3]]
    chosen += [j for j in np.flatnonzero(pred != yte) if j not in chosen][:2]
    samples = []
    for j in chosen:
        samples.append({
            "pixels": [int(v) for v in Xte[j]],
            "label": int(yte[j]),
            "torch_pred": int(pred[j]),
            "torch_probs": [f32(v) for v in probs[j].numpy()],
            "dataset_index": int(ite[j]),
        })
    with open(os.path.join(HERE, "heldout.json"), "w") as f:
        f.write("[\n" + ",\n".join(json.dumps(s, separators=(", ", ": ")) for s in samples) + "\n]\n")

    metrics = {
        "heldout_accuracy": acc,
        "heldout_correct": correct,
        "heldout_total": int(len(yte)),
        "heldout_misclassified_dataset_indices": [int(ite[j]) for j in np.flatnonzero(pred != yte)],
        "train_accuracy": float(train_acc),
        "arch": ARCH,
        "input": "pixel / 16 (float32), row-major 8x8, 64 values",
        "split": "train_test_split(test_size=0.25, random_state=0, stratify=y)",
        "training": {"seed": SEED, "epochs": EPOCHS, "batch": BATCH, "optimizer": "Adam", "lr": LR,
                     "weight_decay": WEIGHT_DECAY, "loss": "CrossEntropyLoss on the logits (model[:-1])"},
        "versions": {"torch": torch.__version__, "scikit-learn": sklearn.__version__, "numpy": np.__version__},
    }
    with open(os.path.join(HERE, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
