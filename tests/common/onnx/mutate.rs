//! Seeded mutations of protobuf files, for the ONNX property tests in `tests/onnx.rs`.
//!
//! A file is parsed into a tree of fields ([`super::protobuf`]; a length-delimited field is a
//! nested message when its bytes parse as one and encode back to the same bytes, else bytes),
//! mutated, and encoded again with the lengths of every enclosing message recomputed, so a
//! rewrite deep inside a node reaches the importer's graph checks instead of failing at the
//! first length. Byte-level mutations (bit flips, truncations, inserted and deleted ranges,
//! splices of two files, and length prefixes that lie) cover the decoder itself. One to four
//! mutations are stacked.

use super::protobuf::{Field, Val, encode_into, parse, read_varint, write_varint};

/// A small seeded generator (xorshift64*), so a run is reproducible from its seed.
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (0 for `n = 0`).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }

    /// True `percent` % of the time.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    /// A random element.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Every field of the tree, as a path of indices.
fn paths(fields: &[Field], prefix: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
    for (i, f) in fields.iter().enumerate() {
        prefix.push(i);
        out.push(prefix.clone());
        if let Val::Message(m) = &f.val {
            paths(m, prefix, out);
        }
        prefix.pop();
    }
}

/// The message holding the field at `path`, and the field's index in it.
fn parent<'a>(fields: &'a mut Vec<Field>, path: &[usize]) -> Option<(&'a mut Vec<Field>, usize)> {
    let (&last, init) = path.split_last()?;
    let mut cur = fields;
    for &i in init {
        cur = match &mut cur.get_mut(i)?.val {
            Val::Message(m) => m,
            _ => return None,
        };
    }
    (last < cur.len()).then_some((cur, last))
}

const NUMBERS: &[u64] = &[
    0,
    1,
    2,
    3,
    4,
    5,
    6,
    7,
    8,
    9,
    10,
    11,
    12,
    13,
    16,
    17,
    20,
    255,
    256,
    4096,
    65536,
    1 << 31,
    (1 << 31) - 1,
    1 << 32,
    1 << 40,
    1 << 62,
    1 << 63,
    u64::MAX,
    u64::MAX - 1,
];

const FLOATS: &[f32] = &[
    0.0,
    -0.0,
    1.0,
    -1.0,
    0.5,
    2.0,
    6.0,
    1.0 / 6.0,
    1e-45,
    1e30,
    f32::MAX,
    f32::INFINITY,
    f32::NEG_INFINITY,
    f32::NAN,
];

const STRINGS: &[&str] = &[
    "",
    "Gemm",
    "MatMul",
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Pow",
    "Relu",
    "Sigmoid",
    "Tanh",
    "Softmax",
    "LogSoftmax",
    "Clip",
    "Where",
    "Greater",
    "Erf",
    "Flatten",
    "Reshape",
    "Constant",
    "Identity",
    "Dropout",
    "PRelu",
    "Softplus",
    "Gelu",
    "HardSigmoid",
    "Selu",
    "BatchNormalization",
    "LayerNormalization",
    "Conv",
    "If",
    "ai.onnx",
    "com.microsoft",
    "x",
    "y",
    "input",
    "0.weight",
    "0.bias",
    "value",
    "alpha",
    "beta",
    "axis",
    "transA",
    "transB",
    "epsilon",
    "approximate",
    "tanh",
    "none",
    "training_mode",
    "location",
    "pkg.torch.onnx.name_scopes",
    "pkg.torch.onnx.class_hierarchy",
    "pkg.torch.onnx.fx_node",
    "['', '1', 'relu']",
    "['a', 'torch.nn.modules.activation.ReLU', 'b']",
    "['', '1'",
    "/1/Relu",
    "/Relu",
    "/",
    "args = (%x, [3], None, None, 1e-05)",
    "\u{1b}[31m\n",
];

/// Rewrites one field of the tree.
fn mutate_tree(rng: &mut Rng, tree: &mut Vec<Field>, seeds: &[Vec<Field>]) {
    let mut all = Vec::new();
    paths(tree, &mut Vec::new(), &mut all);
    if all.is_empty() {
        return;
    }
    let path = rng.pick(&all).clone();
    let kind = rng.below(9);
    // A field from another file, for the splice below.
    let donor = {
        let seed = rng.pick(seeds);
        let mut donor_paths = Vec::new();
        paths(seed, &mut Vec::new(), &mut donor_paths);
        let p = if donor_paths.is_empty() {
            None
        } else {
            Some(rng.pick(&donor_paths).clone())
        };
        p.and_then(|p| {
            let mut s = seed.clone();
            parent(&mut s, &p).map(|(m, i)| m[i].clone())
        })
    };
    let Some((msg, i)) = parent(tree, &path) else {
        return;
    };
    match kind {
        0 => {
            msg.remove(i);
        }
        1 => {
            let f = msg[i].clone();
            let at = rng.below(msg.len() + 1);
            msg.insert(at, f);
        }
        2 => {
            let j = rng.below(msg.len());
            msg.swap(i, j);
        }
        3 => {
            msg[i].tag = 1 + rng.below(24) as u64;
        }
        4 => {
            if let Some(d) = donor {
                let at = rng.below(msg.len() + 1);
                msg.insert(at, d);
            }
        }
        _ => {
            let f = &mut msg[i];
            f.val = match &f.val {
                Val::Varint(v) => {
                    if rng.chance(70) {
                        Val::Varint(*rng.pick(NUMBERS))
                    } else {
                        Val::Varint(v ^ (1 << rng.below(64)))
                    }
                }
                Val::Fixed32(_) => Val::Fixed32(rng.pick(FLOATS).to_le_bytes()),
                Val::Fixed64(_) => Val::Fixed64(f64::from(*rng.pick(FLOATS)).to_le_bytes()),
                Val::Bytes(b) => {
                    let mut b = b.clone();
                    match rng.below(4) {
                        0 | 1 => Val::Bytes(rng.pick(STRINGS).as_bytes().to_vec()),
                        2 => {
                            b.truncate(rng.below(b.len() + 1));
                            Val::Bytes(b)
                        }
                        _ => {
                            if !b.is_empty() {
                                let k = rng.below(b.len());
                                b[k] = rng.next() as u8;
                            }
                            Val::Bytes(b)
                        }
                    }
                }
                // A message replaced by raw bytes, or emptied.
                Val::Message(_) => {
                    if rng.chance(50) {
                        Val::Message(Vec::new())
                    } else {
                        Val::Bytes(rng.pick(STRINGS).as_bytes().to_vec())
                    }
                }
            };
        }
    }
}

/// Rewrites bytes.
fn mutate_bytes(rng: &mut Rng, b: &mut Vec<u8>, lengths: &[(usize, usize)], seeds: &[Vec<u8>]) {
    match rng.below(7) {
        0 => {
            for _ in 0..1 + rng.below(8) {
                if !b.is_empty() {
                    let i = rng.below(b.len());
                    b[i] ^= 1 << rng.below(8);
                }
            }
        }
        1 => {
            let len = if rng.chance(30) {
                b.len().saturating_sub(1 + rng.below(8))
            } else {
                rng.below(b.len() + 1)
            };
            b.truncate(len);
        }
        2 => {
            let at = rng.below(b.len() + 1);
            let n = 1 + rng.below(16);
            let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
            b.splice(at..at, bytes);
        }
        3 => {
            if !b.is_empty() {
                let s = rng.below(b.len());
                let e = (s + 1 + rng.below(64)).min(b.len());
                b.drain(s..e);
            }
        }
        4 => {
            let other = rng.pick(seeds);
            let cut = rng.below(b.len() + 1);
            let from = rng.below(other.len() + 1);
            b.truncate(cut);
            b.extend_from_slice(&other[from..]);
        }
        // A length prefix that lies (same width, so the rest stays in place).
        _ => {
            if lengths.is_empty() {
                return;
            }
            let &(at, width) = rng.pick(lengths);
            let mut old_at = at;
            let old = read_varint(b, &mut old_at).unwrap_or(0);
            let new = match rng.below(4) {
                0 => old.wrapping_add(1 + rng.below(4) as u64),
                1 => old.saturating_sub(1 + rng.below(4) as u64),
                2 => 0,
                _ => (1u64 << (7 * width as u32).min(63)) - 1,
            };
            let mut enc = Vec::new();
            write_varint(&mut enc, new);
            // Pad to the same width with continuation bytes (a non-minimal varint).
            while enc.len() < width {
                let last = enc.len() - 1;
                enc[last] |= 0x80;
                enc.push(0);
            }
            if enc.len() == width && at + width <= b.len() {
                b[at..at + width].copy_from_slice(&enc);
            }
        }
    }
}

/// Parses seed files into trees once.
pub struct Seeds {
    files: Vec<Vec<u8>>,
    trees: Vec<Vec<Field>>,
}

impl Seeds {
    /// The seeds (each must parse as a protobuf message).
    pub fn new(files: Vec<Vec<u8>>) -> Self {
        let trees = files
            .iter()
            .map(|f| parse(f, 12).unwrap_or_default())
            .collect();
        Seeds { files, trees }
    }

    /// The seed files.
    pub fn files(&self) -> &[Vec<u8>] {
        &self.files
    }

    /// One mutant: a seed with one to four mutations (field rewrites, then byte rewrites).
    pub fn mutant(&self, rng: &mut Rng) -> Vec<u8> {
        let k = rng.below(self.trees.len());
        let mut tree = self.trees[k].clone();
        let steps = 1 + rng.below(4);
        let byte_steps = (0..steps).filter(|_| rng.chance(35)).count();
        for _ in byte_steps..steps {
            mutate_tree(rng, &mut tree, &self.trees);
        }
        let mut out = Vec::new();
        let mut lengths = Vec::new();
        encode_into(&tree, &mut out, &mut lengths);
        for _ in 0..byte_steps {
            mutate_bytes(rng, &mut out, &lengths, &self.files);
        }
        out
    }
}
