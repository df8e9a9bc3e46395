"""Export scikit-learn's bundled 8x8 digits (load_digits: 1797 images, pixel values 0..16) as
data/digits/digits.bin: 1797 records of 65 bytes, the 64 pixels in row-major order then the label
(0..9), in load_digits() order. Used by examples/primer.rs; no network needed.

Run: /opt/torchvenv/bin/python data/digits/make_digits.py
"""
import os

import numpy as np
from sklearn.datasets import load_digits

HERE = os.path.dirname(os.path.abspath(__file__))
X, y = load_digits(return_X_y=True)
assert X.shape == (1797, 64) and X.min() >= 0 and X.max() <= 16
assert np.all(X == np.round(X))
rec = np.concatenate([X.astype(np.uint8), y.astype(np.uint8)[:, None]], axis=1)
with open(os.path.join(HERE, "digits.bin"), "wb") as f:
    f.write(rec.tobytes())
print(rec.shape, "sha of labels", int(y.sum()))
