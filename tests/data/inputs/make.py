"""Writes the input fixtures of tests/cli_inputs.rs with real NumPy, as PyTorch users hold
their data: float64, float16, integer and bool arrays, Fortran order, big-endian, N-D images
for a model that starts with nn.Flatten, and .npz archives (np.savez, np.savez_compressed).
Each `<name>.npy` comes with `<name>.f32.npy`, NumPy's own float32 conversion (x.astype(float32),
what torch's x.float() gives), which the crate's conversion must equal bit for bit.

Run: /opt/torchvenv/bin/python tests/data/inputs/make.py (from the repository root)."""
import os
import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(23)
base = rng.standard_normal((5, 4)) * 3  # float64, values not exact in float32


def save(name, a):
    np.save(os.path.join(here, name + ".npy"), a)
    c = np.ascontiguousarray(a.astype(np.float32))
    if c.ndim > 2:
        c = c.reshape(len(c), -1)  # nn.Flatten
    np.save(os.path.join(here, name + ".f32.npy"), c)


save("float64", base)
save("float16", base.astype(np.float16))
save("int64", np.array([[0, -1, 2**24 + 1, 2**62], [7, -(2**63), 3, 2**31]], dtype=np.int64))
save("uint8", (np.arange(12, dtype=np.uint8) * 21).reshape(3, 4))
save("int16_be", np.arange(-6, 6, dtype=">i2").reshape(3, 4))
save("bool", np.array([[True, False, True, True]]))
save("float32_be", base.astype(">f4"))
save("fortran", np.asfortranarray(base.astype(np.float32)))
save("fortran64", np.asfortranarray(base))
# Images [batch, channels, height, width], as a DataLoader gives them to nn.Flatten.
save("images", rng.standard_normal((3, 1, 2, 2)).astype(np.float32))
np.savez(os.path.join(here, "one.npz"), x=base)
np.savez_compressed(os.path.join(here, "two.npz"), x=base, y=base[:2].astype(np.float32))
np.savez_compressed(os.path.join(here, "one_deflated.npz"), x=base)
