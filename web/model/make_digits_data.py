#!/usr/bin/env python3
"""Write digits.bin: scikit-learn's bundled load_digits() (1797 images of 8x8 pixels, values
0..16) for the page's training panel, split as train_digits.py splits it.

Layout: 1797 records of 65 bytes, each the label (0..9) then the 64 pixels (row-major, 0..16);
first the 1347 training rows in train_test_split's order, then the 450 held-out rows in its order
(train_test_split(test_size=0.25, random_state=0, stratify=y), the split of digits.safetensors).

Run with scikit-learn and numpy (e.g. /opt/torchvenv/bin/python web/model/make_digits_data.py);
deterministic: the same file every run.
"""
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

X, y = load_digits(return_X_y=True)
idx = np.arange(len(y))
_, _, _, _, itr, ite = train_test_split(X, y, idx, test_size=0.25, random_state=0, stratify=y)
order = np.concatenate([itr, ite])
rec = np.concatenate([y[order, None], X[order]], axis=1)
assert rec.min() >= 0 and rec.max() <= 16 and rec.shape == (1797, 65)
out = Path(__file__).with_name("digits.bin")
out.write_bytes(rec.astype(np.uint8).tobytes())
print(f"{out}: {len(itr)} train + {len(ite)} held-out rows, {out.stat().st_size} bytes")
