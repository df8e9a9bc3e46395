//! The number types a `.npy` file may hold, and their conversion to f32 (as PyTorch's
//! `x.float()`) or f64.

/// What kind of number an element is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Float,
    Int,
    Uint,
    Bool,
}

/// A NumPy dtype this crate reads: floats of 2, 4 or 8 bytes, integers of 1 to 8 bytes, bool;
/// either byte order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Dtype {
    kind: Kind,
    size: usize,
    big_endian: bool,
}

impl Dtype {
    /// `<f4`, `>i8`, `|u1`, `|b1`, …; an error message naming the dtype otherwise.
    pub(crate) fn parse(descr: &str) -> Result<Self, String> {
        let refuse = || {
            let hint = if descr.ends_with("V2") {
                " (NumPy has no bfloat16: save x.float().numpy(), or the tensor as safetensors)"
            } else {
                ""
            };
            format!(
                "unsupported dtype '{descr}'; expected a little- or big-endian float \
                 (f2, f4, f8), integer (i1–i8, u1–u8) or bool (b1){hint}"
            )
        };
        let b = descr.as_bytes();
        if b.len() != 3 {
            return Err(refuse());
        }
        let big_endian = match b[0] {
            b'<' | b'|' => false,
            b'>' => true,
            // '=' is the writer's native order; NumPy itself writes '<' or '>' in files.
            b'=' => cfg!(target_endian = "big"),
            _ => return Err(refuse()),
        };
        let kind = match b[1] {
            b'f' => Kind::Float,
            b'i' => Kind::Int,
            b'u' => Kind::Uint,
            b'b' => Kind::Bool,
            _ => return Err(refuse()),
        };
        let size = usize::from(b[2].wrapping_sub(b'0'));
        let ok = match kind {
            Kind::Float => matches!(size, 2 | 4 | 8),
            Kind::Int | Kind::Uint => matches!(size, 1 | 2 | 4 | 8),
            Kind::Bool => size == 1,
        };
        if !ok {
            return Err(refuse());
        }
        Ok(Dtype {
            kind,
            size,
            big_endian,
        })
    }

    /// Bytes per element.
    pub(crate) fn size(self) -> usize {
        self.size
    }

    /// NumPy's name for it: `float32`, `int64`, `bool`, …
    pub(crate) fn name(self) -> &'static str {
        match (self.kind, self.size) {
            (Kind::Float, 2) => "float16",
            (Kind::Float, 4) => "float32",
            (Kind::Float, _) => "float64",
            (Kind::Int, 1) => "int8",
            (Kind::Int, 2) => "int16",
            (Kind::Int, 4) => "int32",
            (Kind::Int, _) => "int64",
            (Kind::Uint, 1) => "uint8",
            (Kind::Uint, 2) => "uint16",
            (Kind::Uint, 4) => "uint32",
            (Kind::Uint, _) => "uint64",
            (Kind::Bool, _) => "bool",
        }
    }

    /// Appends the elements in `bytes` (whole elements) to `out` as f32, each rounded to nearest
    /// as `x.float()` rounds it; returns how many changed in the rounding (NaN never counts).
    pub(crate) fn decode_f32(self, bytes: &[u8], out: &mut Vec<f32>) -> usize {
        let mut rounded = 0;
        self.each(bytes, |v| {
            let f = match v {
                Value::F(x) => x as f32,
                Value::I(x) => x as f32,
                Value::U(x) => x as f32,
            };
            let exact = match v {
                Value::F(x) => x.is_nan() || f64::from(f) == x,
                // Through i128 so that 2⁶³ (the f32 nearest i64::MAX) compares as itself.
                Value::I(x) => f.is_finite() && f as i128 == i128::from(x),
                Value::U(x) => f.is_finite() && f as i128 == i128::from(x),
            };
            rounded += usize::from(!exact);
            out.push(f);
        });
        rounded
    }

    /// Appends the elements in `bytes` to `out` as f64 (integers past 2⁵³ rounded).
    pub(crate) fn decode_f64(self, bytes: &[u8], out: &mut Vec<f64>) {
        self.each(bytes, |v| {
            out.push(match v {
                Value::F(x) => x,
                Value::I(x) => x as f64,
                Value::U(x) => x as f64,
            })
        });
    }

    /// Whether it holds integers (signed or unsigned; bool is not one).
    pub(crate) fn is_integer(self) -> bool {
        matches!(self.kind, Kind::Int | Kind::Uint)
    }

    /// Appends the elements in `bytes` to `out` exactly as i64; an unsigned value past
    /// `i64::MAX` is an error naming its position.
    pub(crate) fn decode_i64(self, bytes: &[u8], out: &mut Vec<i64>) -> Result<(), String> {
        let mut too_large = None;
        self.each(bytes, |v| {
            let x = match v {
                Value::I(x) => x,
                Value::U(x) => i64::try_from(x).unwrap_or_else(|_| {
                    too_large.get_or_insert((out.len(), x));
                    0
                }),
                Value::F(x) => x as i64,
            };
            out.push(x);
        });
        match too_large {
            Some((i, x)) => Err(format!("value {i} is {x}, past the largest int64")),
            None => Ok(()),
        }
    }

    /// Calls `f` with each element of `bytes`, exactly (an f16 or f32 widened to f64 is exact).
    fn each(self, bytes: &[u8], mut f: impl FnMut(Value)) {
        for chunk in bytes.chunks_exact(self.size) {
            let mut b = [0u8; 8];
            b[..self.size].copy_from_slice(chunk);
            if self.big_endian {
                b[..self.size].reverse();
            }
            let v = match (self.kind, self.size) {
                (Kind::Float, 2) => Value::F(f64::from(half::f16::from_le_bytes([b[0], b[1]]))),
                (Kind::Float, 4) => {
                    Value::F(f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])))
                }
                (Kind::Float, _) => Value::F(f64::from_le_bytes(b)),
                (Kind::Bool, _) => Value::U(u64::from(b[0] != 0)),
                (Kind::Uint, _) => Value::U(u64::from_le_bytes(b)),
                (Kind::Int, n) => {
                    // Sign-extend from n bytes.
                    let shift = 64 - 8 * n as u32;
                    Value::I((i64::from_le_bytes(b) << shift) >> shift)
                }
            };
            f(v);
        }
    }
}

/// One element, exactly.
#[derive(Clone, Copy)]
enum Value {
    F(f64),
    I(i64),
    U(u64),
}
