"""Export scikit-learn's bundled 8x8 digits (load_digits: 1797 images, pixel values 0..16, in
load_digits() order) as data/digits/x.npy (uint8 [1797, 64], row-major pixels) and
data/digits/y.npy (uint8 [1797], the labels 0..9). Read by examples/primer and usable directly
with `wgpu-mlp train --input data/digits/x.npy --target data/digits/y.npy` (integer arrays are
converted to float32 as x.float() does). No network needed.

Run: /opt/torchvenv/bin/python data/digits/make_digits.py
"""
import os

import numpy as np
from sklearn.datasets import load_digits

HERE = os.path.dirname(os.path.abspath(__file__))
X, y = load_digits(return_X_y=True)
assert X.shape == (1797, 64) and X.min() >= 0 and X.max() <= 16
assert np.all(X == np.round(X))
np.save(os.path.join(HERE, "x.npy"), X.astype(np.uint8))
np.save(os.path.join(HERE, "y.npy"), y.astype(np.uint8))
print(X.shape, "label sum", int(y.sum()))
