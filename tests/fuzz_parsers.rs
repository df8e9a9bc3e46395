//! Property test of the file parsers (issue 6): seeded random mutations of valid
//! safetensors, `.npy`, `.npz` and CSV files, torch.save `.pth` files (the pickle rewritten inside
//! the archive) and ONNX files with external data (issue 23), run in CI. Every input must give `Ok`
//! with a well-formed
//! value (shapes consistent, and a write/read round trip gives the same bits) or an
//! `Error::Format` naming the source, and never a panic.
//!
//! Mutations: bit flips, byte overwrites with boundary values, truncations, inserted, deleted and
//! duplicated ranges, splices of two files, and format-aware rewrites: the safetensors header
//! length (lying or huge), numbers in its JSON header (shapes and data_offsets set to 0, 2³²,
//! 2⁶⁴ − 1, negative…), dtypes, duplicated entries; the `.npy` version, header length, shape,
//! descr and fortran_order; CSV tokens (`nan`, `inf`, huge exponents, empty fields, stray commas,
//! BOMs, invalid UTF-8, …). One to four mutations are stacked per input.
//!
//! `FUZZ_PARSERS_ITERS` sets the number of inputs per parser (default 500,000), `FUZZ_PARSERS_SEED`
//! the seed. A failure prints the input as hex; add it to `FOUND` so it stays tested.
//! `fuzz/` holds cargo-fuzz targets for longer runs by hand.

mod common;

use common::{npy_file, raw_st};

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::time::Instant;

use wgpu_mlp::io::{csv, npy, safetensors as st};
use wgpu_mlp::{Activation, Error, Layer, Linear, Matrix, Mlp};

const DEFAULT_ITERS: usize = 500_000;

// ---------------------------------------------------------------------------------------------
// Inputs kept as regression tests: tricky cases written by hand, and any input the fuzzing here or
// under cargo fuzz (`fuzz/`) found to fail, as hex (format, hex bytes).

const FOUND: &[(&str, &str)] = &[];

/// Hand-written tricky inputs (format, bytes).
fn regression_inputs() -> Vec<(&'static str, Vec<u8>)> {
    let w = r#""dtype":"F32","shape":[1,1],"data_offsets":[0,4]"#;
    let one = 1.0f32.to_le_bytes();
    let npy_h =
        |shape: &str| format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
    let mut v: Vec<(&str, Vec<u8>)> = vec![
        // Header length u64::MAX, and lengths past the end.
        ("st", b"\xff\xff\xff\xff\xff\xff\xff\xff{}".to_vec()),
        ("st", b"\x02\x00\x00\x00\x01\x00\x00\x00{}".to_vec()),
        ("st", b"\x00\x00\x00\x00\x00\x00\x00".to_vec()),
        // Duplicate tensor names: serde_json silently keeps the last one.
        (
            "st",
            raw_st(
                &format!(r#"{{"0.weight":{{{w}}},"0.weight":{{{w}}}}}"#),
                &one,
            ),
        ),
        (
            "st",
            raw_st(
                &format!(r#"{{"0.weight":{{{w}}},"0.w\u0065ight":{{{w}}}}}"#),
                &one,
            ),
        ),
        // An element count that overflows u64, with offsets that match 0 bytes.
        (
            "st",
            raw_st(
                r#"{"0.weight":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}}"#,
                &[],
            ),
        ),
        // A zero-size weight.
        (
            "st",
            raw_st(
                r#"{"0.weight":{"dtype":"F32","shape":[0,3],"data_offsets":[0,0]}}"#,
                &[],
            ),
        ),
        // Sub-byte dtype.
        (
            "st",
            raw_st(
                r#"{"0.weight":{"dtype":"F4","shape":[2,2],"data_offsets":[0,2]}}"#,
                &[0, 0],
            ),
        ),
        // Escapes and surrogates in keys.
        (
            "st",
            raw_st(
                &format!(r#"{{"\ud83d\ude00":{{{w}}},"\\":{{{w}}}}}"#),
                &[0; 8],
            ),
        ),
        // .npy: byte count overflowing usize, negative and huge dimensions.
        ("npy", npy_file(1, &npy_h("(4611686018427387904, 4)"), &[])),
        ("npy", npy_file(1, &npy_h("(-1,)"), &[])),
        // Zero rows and an enormous column count: a valid empty array, not an allocation.
        ("npy", npy_file(1, &npy_h("(0, 18446744073709551615)"), &[])),
        // Deeply nested header literal; version 2 header length past the end.
        ("npy", npy_file(1, &"(".repeat(5000), &[])),
        ("npy", b"\x93NUMPY\x02\x00\xff\xff\xff\xff{}".to_vec()),
        ("npy", b"\x93NUMPY\x01".to_vec()),
        // CSV: invalid UTF-8, a lone BOM, huge exponents, empty fields, header and comments,
        // quotes left open, `#N/A` that is not a comment, a header without rows.
        ("csv", b"\xff1,2\n".to_vec()),
        ("csv", b"\xef\xbb\xbf".to_vec()),
        ("csv", b"1e999999999999999999999,-1e-99999999999\n".to_vec()),
        ("csv", b",\n,\n".to_vec()),
        ("csv", b"a,b\n\n#c\n1,2\r\n3,4".to_vec()),
        ("csv", b"\"1,\"\"2\n".to_vec()),
        ("csv", b"#N/A\t#na\n#n/a n/a\n".to_vec()),
        ("csv", b"\"\" \"\"\n".to_vec()),
        ("csv", b",x\n".to_vec()),
    ];
    for (kind, h) in FOUND {
        let bytes = (0..h.len() / 2)
            .map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).unwrap())
            .collect();
        v.push((kind, bytes));
    }
    v
}

// ---------------------------------------------------------------------------------------------
// A small seeded generator (xorshift64*), so every run sees the same inputs for a given seed.

struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
    fn pick_str(&mut self, items: &[&'static str]) -> &'static str {
        items[self.below(items.len())]
    }
}

// ---------------------------------------------------------------------------------------------
// Seeds: the files in tests/data plus a few variants the fixtures do not cover.

fn data_files(ext: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    names.sort();
    names.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

fn safetensors_seeds() -> Vec<Vec<u8>> {
    let mut seeds = data_files("safetensors");
    // Other dtypes, a lone nn.Linear, named modules, metadata.
    seeds.push(raw_st(
        r#"{"__metadata__":{"format":"pt"},"weight":{"dtype":"F16","shape":[2,2],"data_offsets":[0,8]},"bias":{"dtype":"BF16","shape":[2],"data_offsets":[8,12]}}"#,
        &[0, 60, 0, 188, 0, 0, 0, 126, 128, 63, 0, 192],
    ));
    seeds.push(raw_st(
        r#"{"0.weight":{"dtype":"F64","shape":[1,2],"data_offsets":[0,16]},"2.weight":{"dtype":"F32","shape":[1,1],"data_offsets":[16,20]}}"#,
        &[
            0, 0, 0, 0, 0, 0, 240, 63, 0, 0, 0, 0, 0, 0, 0, 192, 0, 0, 128, 63,
        ],
    ));
    seeds.push(raw_st(
        r#"{"10.weight":{"dtype":"F32","shape":[1,1],"data_offsets":[0,4]},"9.weight":{"dtype":"F32","shape":[1,1],"data_offsets":[4,8]},"9.bias":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}"#,
        &[0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 192, 127],
    ));
    seeds
}

fn npy_seeds() -> Vec<Vec<u8>> {
    let mut seeds = data_files("npy");
    seeds.push(npy_file(
        2,
        "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }\n",
        &[0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64],
    ));
    seeds.push(npy_file(
        3,
        "{\"shape\": [1, 1], \"fortran_order\": False, \"descr\": \"<f8\"}",
        &[0, 0, 0, 0, 0, 0, 240, 127],
    ));
    seeds.push(npy_file(
        1,
        "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 3), }",
        &[],
    ));
    seeds
}

fn csv_seeds() -> Vec<Vec<u8>> {
    let mut seeds: Vec<Vec<u8>> = data_files("npy")
        .iter()
        .filter_map(|b| npy::from_bytes(b, "seed").ok())
        .map(|m| csv::to_bytes(&m))
        .collect();
    seeds.push(b"# x0,x1\nx0, x1\n1, 2\r\n\n-3.5e-3,inf\n".to_vec());
    seeds.push("\u{feff}nan,-inf,1e-45\n0,-0,3.4028235e38\n".into());
    // The other spellings and layouts the reader takes: missing-value markers on the first line,
    // numpy's space-separated default, tabs, quotes, an empty batch's header.
    seeds.push(b"NA,#N/A,null\n1,\"2\",3\n".to_vec());
    seeds.push(b"1.000000000000000000e+00 -2.5e+00\n\t3\t4 \n".to_vec());
    seeds.push(b"c0,c1,c2\n".to_vec());
    seeds
}

// ---------------------------------------------------------------------------------------------
// Mutations.

const INTERESTING_BYTES: &[u8] = &[
    0, 1, 0x7f, 0x80, 0xff, b'"', b'\'', b'{', b'}', b'[', b']', b'(', b')', b',', b':', b'\\',
    b'\n', b'\r', b' ', b'-', b'.', b'e', b'0', b'9', 0xc3, 0xef,
];

/// Numbers that break size arithmetic.
const INTERESTING_NUMBERS: &[&str] = &[
    "0",
    "1",
    "2",
    "3",
    "4",
    "7",
    "8",
    "16",
    "-1",
    "255",
    "65535",
    "65536",
    "2147483647",
    "2147483648",
    "4294967295",
    "4294967296",
    "1073741824",
    "4611686018427387904",
    "9223372036854775807",
    "9223372036854775808",
    "18446744073709551615",
    "18446744073709551616",
    "340282366920938463463374607431768211456",
    "1e3",
    "1.5",
    "00",
    "0x10",
];

const DTYPES: &[&str] = &[
    "F32", "F16", "BF16", "F64", "I32", "I64", "U8", "BOOL", "F8_E4M3", "F8_E5M2", "F4", "F6_E2M3",
    "E8M0", "C64", "Q4", "", "f32",
];

const NPY_DESCRS: &[&str] = &[
    "<f4", "<f8", ">f4", "<f2", "<i4", "|u1", "|b1", "<c8", "f4", "<f16", "", "<U3", "O",
];

const CSV_TOKENS: &[&str] = &[
    "nan",
    "NaN",
    "-nan",
    "inf",
    "-inf",
    "infinity",
    "1e39",
    "-1e39",
    "1e-50",
    "3.4028236e38",
    "0x10",
    "1_000",
    "+1",
    "-",
    ".",
    "..",
    "1.2.3",
    "",
    ",",
    ",,",
    "\n",
    "\r\n",
    "\r",
    "#",
    " ",
    "\t",
    "\u{feff}",
    "é",
    "\u{2212}1",
    "99999999999999999999999999999999999999999",
    "0.000000000000000000000000000000000000000000001",
    "NA",
    "N/A",
    "#N/A",
    "null",
    "\"",
    "\"1\"",
    "\"\"",
    ";",
    "\t\t",
    "  ",
];

fn flip_bits(rng: &mut Rng, b: &mut [u8]) {
    if b.is_empty() {
        return;
    }
    for _ in 0..1 + rng.below(8) {
        let i = rng.below(b.len());
        b[i] ^= 1 << rng.below(8);
    }
}

fn set_bytes(rng: &mut Rng, b: &mut [u8]) {
    if b.is_empty() {
        return;
    }
    for _ in 0..1 + rng.below(4) {
        let i = rng.below(b.len());
        b[i] = if rng.chance(50) {
            *rng.pick(INTERESTING_BYTES)
        } else {
            rng.next() as u8
        };
    }
}

fn truncate(rng: &mut Rng, b: &mut Vec<u8>) {
    let len = if rng.chance(30) {
        b.len().saturating_sub(1 + rng.below(8))
    } else {
        rng.below(b.len() + 1)
    };
    b.truncate(len);
}

fn insert_bytes(rng: &mut Rng, b: &mut Vec<u8>) {
    let at = rng.below(b.len() + 1);
    let n = 1 + rng.below(16);
    let bytes: Vec<u8> = (0..n)
        .map(|_| {
            if rng.chance(50) {
                *rng.pick(INTERESTING_BYTES)
            } else {
                rng.next() as u8
            }
        })
        .collect();
    b.splice(at..at, bytes);
}

fn delete_range(rng: &mut Rng, b: &mut Vec<u8>) {
    if b.is_empty() {
        return;
    }
    let start = rng.below(b.len());
    let end = (start + 1 + rng.below(32)).min(b.len());
    b.drain(start..end);
}

fn duplicate_range(rng: &mut Rng, b: &mut Vec<u8>) {
    if b.is_empty() {
        return;
    }
    let start = rng.below(b.len());
    let end = (start + 1 + rng.below(64)).min(b.len());
    let chunk = b[start..end].to_vec();
    let at = rng.below(b.len() + 1);
    b.splice(at..at, chunk);
}

fn splice(rng: &mut Rng, b: &mut Vec<u8>, seeds: &[Vec<u8>]) {
    let other = rng.pick(seeds);
    let cut = rng.below(b.len() + 1);
    let from = rng.below(other.len() + 1);
    b.truncate(cut);
    b.extend_from_slice(&other[from..]);
}

/// Byte ranges of the ASCII digit runs (with a leading '-') in `b[range]`.
fn number_spans(b: &[u8], start: usize, end: usize) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut i = start;
    while i < end {
        if b[i].is_ascii_digit() {
            let s = if i > start && b[i - 1] == b'-' {
                i - 1
            } else {
                i
            };
            let mut e = i;
            while e < end && b[e].is_ascii_digit() {
                e += 1;
            }
            spans.push((s, e));
            i = e;
        } else {
            i += 1;
        }
    }
    spans
}

/// Byte ranges of the contents of quoted strings (`"…"` or `'…'`) in `b[start..end]`.
fn string_spans(b: &[u8], start: usize, end: usize, quote: u8) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut i = start;
    while i < end {
        if b[i] == quote {
            let s = i + 1;
            let mut e = s;
            while e < end && b[e] != quote {
                e += 1;
            }
            spans.push((s, e));
            i = e + 1;
        } else {
            i += 1;
        }
    }
    spans
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn replace_span(b: &mut Vec<u8>, (s, e): (usize, usize), with: &[u8]) {
    b.splice(s..e, with.iter().copied());
}

/// The safetensors header bounds `(8, 8 + n)` when the length field fits the file.
fn st_header(b: &[u8]) -> Option<(usize, usize)> {
    let n = u64::from_le_bytes(b.get(..8)?.try_into().ok()?);
    let end = 8usize.checked_add(usize::try_from(n).ok()?)?;
    (end <= b.len()).then_some((8, end))
}

fn set_st_len(b: &mut [u8], n: u64) {
    if b.len() >= 8 {
        b[..8].copy_from_slice(&n.to_le_bytes());
    }
}

fn mutate_safetensors(rng: &mut Rng, b: &mut Vec<u8>) {
    let Some((hs, he)) = st_header(b) else {
        return;
    };
    let old_len = he - hs;
    match rng.below(6) {
        // A shape, offset or other number in the header.
        0 | 1 => {
            let spans = number_spans(b, hs, he);
            if !spans.is_empty() {
                let span = *rng.pick(&spans);
                let n = rng.pick(INTERESTING_NUMBERS).as_bytes();
                replace_span(b, span, n);
            }
        }
        // A dtype, or a key.
        2 => {
            let spans = string_spans(b, hs, he, b'"');
            if !spans.is_empty() {
                let span = *rng.pick(&spans);
                let with: &str = if rng.chance(60) {
                    rng.pick_str(DTYPES)
                } else {
                    rng.pick_str(&[
                        "0.weight",
                        "0.bias",
                        "1.weight",
                        "weight",
                        "bias",
                        "x",
                        "00.weight",
                        "dtype",
                        "shape",
                    ])
                };
                replace_span(b, span, with.as_bytes());
            }
        }
        // Duplicate one entry of the header object.
        3 => {
            let header = b[hs..he].to_vec();
            if let (Some(s), Some(e)) = (
                header.iter().position(|&c| c == b'"'),
                header.iter().position(|&c| c == b'}'),
            ) && s < e
            {
                let mut entry = header[s..=e].to_vec();
                entry.push(b',');
                b.splice(hs + s..hs + s, entry);
            }
        }
        // Add or remove data after the header.
        4 => {
            if rng.chance(50) {
                let n = 1 + rng.below(8);
                b.extend(std::iter::repeat_n(0u8, n));
            } else {
                let n = rng.below(8).min(b.len() - he);
                b.truncate(b.len() - n);
            }
        }
        // A lying header length.
        _ => {
            let n = *rng.pick(&[
                0,
                1,
                old_len as u64 + 1,
                old_len.saturating_sub(1) as u64,
                b.len() as u64,
                b.len() as u64 - 7,
                100_000_001,
                u32::MAX as u64,
                1 << 40,
                u64::MAX,
                u64::MAX - 7,
            ]);
            set_st_len(b, n);
            return;
        }
    }
    // Usually keep the length field consistent, so the rewrite reaches the JSON parser.
    if rng.chance(85) {
        let end = find_header_end(b);
        set_st_len(b, (end - 8) as u64);
    }
}

/// Where the JSON object that starts at byte 8 ends (matching braces, outside strings).
fn find_header_end(b: &[u8]) -> usize {
    let mut depth = 0i32;
    let mut in_str = false;
    let mut i = 8;
    while i < b.len() {
        let c = b[i];
        if in_str {
            if c == b'\\' {
                i += 1;
            } else if c == b'"' {
                in_str = false;
            }
        } else if c == b'"' {
            in_str = true;
        } else if c == b'{' {
            depth += 1;
        } else if c == b'}' {
            depth -= 1;
            if depth == 0 {
                return i + 1;
            }
        }
        i += 1;
    }
    b.len()
}

/// `(header start, header end)` of an .npy file, when the length field fits.
fn npy_header(b: &[u8]) -> Option<(usize, usize)> {
    let (len, start) = match b.get(6)? {
        1 => (
            usize::from(u16::from_le_bytes(b.get(8..10)?.try_into().ok()?)),
            10,
        ),
        _ => (
            u32::from_le_bytes(b.get(8..12)?.try_into().ok()?) as usize,
            12,
        ),
    };
    let end = start + len;
    (end <= b.len()).then_some((start, end))
}

fn set_npy_len(b: &mut [u8], len: usize) {
    match b.get(6) {
        Some(1) if b.len() >= 10 => {
            b[8..10].copy_from_slice(&(len.min(65535) as u16).to_le_bytes());
        }
        Some(_) if b.len() >= 12 => {
            b[8..12].copy_from_slice(&(len as u32).to_le_bytes());
        }
        _ => {}
    }
}

fn mutate_npy(rng: &mut Rng, b: &mut Vec<u8>) {
    let Some((hs, he)) = npy_header(b) else {
        return;
    };
    match rng.below(7) {
        // A shape dimension (or any number in the header).
        0 | 1 => {
            let spans = number_spans(b, hs, he);
            if !spans.is_empty() {
                let span = *rng.pick(&spans);
                replace_span(b, span, rng.pick(INTERESTING_NUMBERS).as_bytes());
            }
        }
        // The descr, or a key.
        2 => {
            let spans = string_spans(b, hs, he, b'\'');
            if !spans.is_empty() {
                let span = *rng.pick(&spans);
                let with: &str = if rng.chance(60) {
                    rng.pick_str(NPY_DESCRS)
                } else {
                    rng.pick_str(&["descr", "shape", "fortran_order", "x", ""])
                };
                replace_span(b, span, with.as_bytes());
            }
        }
        // A whole new shape, of any rank.
        3 => {
            if let Some(s) = find(&b[hs..he], b"'shape': (")
                && let Some(e) = find(&b[hs + s..he], b")")
            {
                let rank = rng.below(4);
                let dims: Vec<&str> = (0..rank).map(|_| *rng.pick(INTERESTING_NUMBERS)).collect();
                let shape = if rank == 1 {
                    format!("{},", dims[0])
                } else {
                    dims.join(", ")
                };
                let start = hs + s + "'shape': (".len();
                replace_span(b, (start, hs + s + e), shape.as_bytes());
            }
        }
        // fortran_order, version.
        4 => {
            if let Some(s) = find(&b[hs..he], b"False") {
                let with = rng.pick_str(&["True", "0", "None", "false", "Fals"]);
                replace_span(b, (hs + s, hs + s + 5), with.as_bytes());
            }
            if rng.chance(30) {
                b[6] = *rng.pick(&[0, 1, 2, 3, 4, 255]);
                b[7] = *rng.pick(&[0, 1, 255]);
            }
        }
        // Data longer or shorter than the shape says.
        5 => {
            if rng.chance(50) {
                let n = 1 + rng.below(16);
                b.extend(std::iter::repeat_n(0u8, n));
            } else {
                let n = rng.below(16).min(b.len() - he);
                b.truncate(b.len() - n);
            }
            return;
        }
        // A lying header length.
        _ => {
            let len = *rng.pick(&[
                0,
                1,
                he - hs + 1,
                (he - hs).saturating_sub(1),
                65535,
                1 << 31,
            ]);
            set_npy_len(b, len);
            return;
        }
    }
    // Usually keep the header length consistent: the header ends at its '\n' (or '}').
    if rng.chance(85) {
        let end = b[hs..]
            .iter()
            .position(|&c| c == b'\n')
            .or_else(|| b[hs..].iter().position(|&c| c == b'}').map(|p| p + 1))
            .map_or(b.len(), |p| hs + p + 1);
        let len = end.min(b.len()) - hs;
        set_npy_len(b, len);
    }
}

fn mutate_csv(rng: &mut Rng, b: &mut Vec<u8>) {
    match rng.below(4) {
        // Replace a number with a token.
        0 | 1 => {
            let spans = number_spans(b, 0, b.len());
            if !spans.is_empty() {
                let span = *rng.pick(&spans);
                replace_span(b, span, rng.pick(CSV_TOKENS).as_bytes());
            }
        }
        // Insert a token anywhere.
        2 => {
            let at = rng.below(b.len() + 1);
            b.splice(at..at, rng.pick(CSV_TOKENS).bytes());
        }
        // Repeat or drop a line.
        _ => {
            let lines: Vec<usize> = std::iter::once(0)
                .chain(
                    b.iter()
                        .enumerate()
                        .filter(|(_, c)| **c == b'\n')
                        .map(|(i, _)| i + 1),
                )
                .collect();
            let s = *rng.pick(&lines);
            let e = b[s..]
                .iter()
                .position(|&c| c == b'\n')
                .map_or(b.len(), |p| s + p + 1);
            if rng.chance(50) {
                let line = b[s..e].to_vec();
                b.splice(s..s, line);
            } else {
                b.drain(s..e);
            }
        }
    }
}

/// One input: a seed with 1 to 4 mutations stacked.
fn mutant(
    rng: &mut Rng,
    seeds: &[Vec<u8>],
    aware: fn(&mut Rng, &mut Vec<u8>),
) -> (Vec<u8>, Vec<&'static str>) {
    let mut b = rng.pick(seeds).clone();
    let mut applied = Vec::new();
    for _ in 0..1 + rng.below(4) {
        let name = match rng.below(10) {
            0 => {
                flip_bits(rng, &mut b);
                "flip_bits"
            }
            1 => {
                set_bytes(rng, &mut b);
                "set_bytes"
            }
            2 => {
                truncate(rng, &mut b);
                "truncate"
            }
            3 => {
                insert_bytes(rng, &mut b);
                "insert_bytes"
            }
            4 => {
                delete_range(rng, &mut b);
                "delete_range"
            }
            5 => {
                duplicate_range(rng, &mut b);
                "duplicate_range"
            }
            6 => {
                splice(rng, &mut b, seeds);
                "splice"
            }
            _ => {
                aware(rng, &mut b);
                "format_aware"
            }
        };
        applied.push(name);
    }
    (b, applied)
}

// ---------------------------------------------------------------------------------------------
// Checks.

/// What happened to one input.
enum Outcome {
    Ok,
    /// Refused with a Format error; the message with digits and quoted text blanked, so messages
    /// can be counted by kind.
    Err(String),
}

fn error_kind(e: &Error) -> String {
    let msg = match e {
        Error::Format { msg, .. } => msg.as_str(),
        _ => "",
    };
    // Text from the file is quoted: keep only what is around the quotes.
    let msg = match (msg.find('\''), msg.rfind('\'')) {
        (Some(a), Some(b)) if a < b => format!("{}'…'{}", &msg[..a], &msg[b + 1..]),
        _ => msg.to_string(),
    };
    let msg = msg.split('"').next().unwrap_or_default();
    let mut out = String::new();
    for c in msg.chars().take(70) {
        if c.is_ascii_digit() {
            if !out.ends_with('N') {
                out.push('N');
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Runs one parser on `bytes`: a panic, or an invalid result, is a failure message.
fn check(kind: &str, bytes: &[u8]) -> Result<Outcome, String> {
    let run = catch_unwind(AssertUnwindSafe(|| match kind {
        "st" => check_safetensors(bytes),
        "npy" => check_npy(bytes),
        "npz" => check_npz(bytes),
        "pth" => check_pth(bytes),
        "onnx_external" => check_onnx_external(bytes),
        _ => check_csv(bytes),
    }));
    match run {
        Ok(r) => r,
        Err(panic) => {
            let msg = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Err(format!("panicked: {msg}"))
        }
    }
}

/// An error must be a Format error naming the source.
fn check_error<T>(r: &wgpu_mlp::Result<T>, source: &str) -> Result<(), String> {
    match r {
        Err(Error::Format { path, msg }) if path == source && !msg.is_empty() => Ok(()),
        Err(e) => Err(format!("not a Format error naming '{source}': {e:?}")),
        Ok(_) => Ok(()),
    }
}

fn same_bits(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()))
}

fn check_matrix(m: &Matrix) -> Result<(), String> {
    if m.rows().checked_mul(m.cols()) != Some(m.as_slice().len()) {
        return Err(format!(
            "matrix {:?} holds {} values",
            m.shape(),
            m.as_slice().len()
        ));
    }
    Ok(())
}

fn check_safetensors(bytes: &[u8]) -> Result<Outcome, String> {
    let r = st::layers_from_bytes(bytes, "fuzz", None);
    check_error(&r, "fuzz")?;
    let layers = match r {
        Ok(layers) => layers,
        Err(e) => return Ok(Outcome::Err(error_kind(&e))),
    };
    if layers.is_empty() {
        return Err("Ok with no layers".into());
    }
    for (i, l) in layers.iter().enumerate() {
        if l.weight().len() != l.in_features() * l.out_features()
            || l.bias().is_some_and(|b| b.len() != l.out_features())
        {
            return Err(format!("layer {i}: inconsistent lengths"));
        }
        if i > 0 && layers[i - 1].out_features() != l.in_features() {
            return Err(format!("layer {i}: shapes do not chain"));
        }
    }
    // Saved and read back: the same layers, bit for bit.
    let model = Mlp::from_layers(
        layers
            .iter()
            .map(|l| Layer {
                linear: l.clone(),
                activation: Activation::Identity,
            })
            .collect(),
    )
    .map_err(|e| format!("loaded layers do not make a model: {e}"))?;
    let saved = st::model_to_bytes(&model).map_err(|e| format!("cannot save: {e}"))?;
    let again = st::layers_from_bytes(&saved, "again", None)
        .map_err(|e| format!("cannot read back what was saved: {e}"))?;
    let same = |a: &Linear, b: &Linear| {
        a.in_features() == b.in_features()
            && a.out_features() == b.out_features()
            && same_bits(a.weight(), b.weight())
            && match (a.bias(), b.bias()) {
                (Some(x), Some(y)) => same_bits(x, y),
                (None, None) => true,
                _ => false,
            }
    };
    if again.len() != layers.len() || !again.iter().zip(&layers).all(|(a, b)| same(a, b)) {
        return Err("save/load round trip changed the layers".into());
    }
    Ok(Outcome::Ok)
}

fn check_npy(bytes: &[u8]) -> Result<Outcome, String> {
    let r = npy::from_bytes(bytes, "fuzz");
    check_error(&r, "fuzz")?;
    let r64 = npy::from_bytes_f64(bytes, "fuzz");
    check_error(&r64, "fuzz")?;
    // The exact integer read (class targets) and the labels on it: a value or a Format error;
    // an integer array's values agree with the f64 read wherever f64 holds them exactly.
    let ints = npy::integers_from_bytes(bytes, "fuzz");
    check_error(&ints, "fuzz")?;
    check_error(
        &wgpu_mlp::io::labels::labels_from_npy(bytes, "fuzz"),
        "fuzz",
    )?;
    if let (Ok((_, ints)), Ok(a)) = (&ints, &r64)
        && (ints.len() != a.data.len()
            || ints
                .iter()
                .zip(&a.data)
                .any(|(&i, &f)| i.unsigned_abs() < 1 << 53 && i as f64 != f))
    {
        return Err("integers_from_bytes and from_bytes_f64 disagree".into());
    }
    match (r, r64) {
        (Ok(m), Ok(a)) => {
            check_matrix(&m)?;
            if [a.rows, a.cols] != m.shape() || a.data.len() != m.as_slice().len() {
                return Err("from_bytes and from_bytes_f64 disagree on the shape".into());
            }
            let again = npy::from_bytes(&npy::to_bytes(&m), "again")
                .map_err(|e| format!("cannot read back what was written: {e}"))?;
            if again.shape() != m.shape() || !same_bits(again.as_slice(), m.as_slice()) {
                return Err("write/read round trip changed the matrix".into());
            }
            Ok(Outcome::Ok)
        }
        (Err(e), Err(_)) => Ok(Outcome::Err(error_kind(&e))),
        _ => Err("from_bytes and from_bytes_f64 disagree on validity".into()),
    }
}

/// A `.npz` gives its one array or a Format error naming the archive or its member
/// (`fuzz:x`); a member that inflates past its declared size is refused, never read on.
fn check_npz(bytes: &[u8]) -> Result<Outcome, String> {
    let r = wgpu_mlp::io::npz::array_from_bytes(bytes, None, "fuzz");
    match &r {
        Err(Error::Format { path, msg }) if path.starts_with("fuzz") && !msg.is_empty() => {
            Ok(Outcome::Err(error_kind(r.as_ref().unwrap_err())))
        }
        Err(e) => Err(format!("not a Format error naming 'fuzz': {e:?}")),
        Ok(a) => {
            let count: usize = a.shape.iter().product();
            if count != a.data.len() {
                return Err("the shape and the values disagree".into());
            }
            Ok(Outcome::Ok)
        }
    }
}

/// The `.npz` fixtures of one array, stored and deflated.
fn npz_seeds() -> Vec<Vec<u8>> {
    let dir = common::data("inputs");
    ["one.npz", "one_deflated.npz"]
        .iter()
        .map(|f| std::fs::read(dir.join(f)).unwrap())
        .collect()
}

fn check_csv(bytes: &[u8]) -> Result<Outcome, String> {
    let r = csv::from_bytes(bytes, "fuzz");
    check_error(&r, "fuzz")?;
    let m = match r {
        Ok(m) => m,
        Err(e) => return Ok(Outcome::Err(error_kind(&e))),
    };
    check_matrix(&m)?;
    let again = csv::from_bytes(&csv::to_bytes(&m), "again")
        .map_err(|e| format!("cannot read back what was written: {e}"))?;
    if again.shape() != m.shape() || !same_bits(again.as_slice(), m.as_slice()) {
        return Err("write/read round trip changed the matrix".into());
    }
    Ok(Outcome::Ok)
}

// ---------------------------------------------------------------------------------------------
// The runs.

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn iterations() -> usize {
    std::env::var("FUZZ_PARSERS_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_ITERS)
}

fn seed() -> u64 {
    std::env::var("FUZZ_PARSERS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_0006)
}

fn fuzz(kind: &str, seeds: Vec<Vec<u8>>, aware: fn(&mut Rng, &mut Vec<u8>)) {
    fuzz_n(kind, seeds, aware, iterations());
}

/// [`fuzz`] with `n` mutants (the loaders that build models take longer per input).
fn fuzz_n(kind: &str, seeds: Vec<Vec<u8>>, aware: fn(&mut Rng, &mut Vec<u8>), n: usize) {
    let seed = seed();
    let mut rng = Rng::new(seed ^ kind.len() as u64);
    let start = Instant::now();
    // A panic inside the parser is caught and reported below with its input; keep the default
    // hook's message from interleaving with other tests' output.
    let (mut ok, mut err) = (0usize, 0usize);
    let mut failures: Vec<(Vec<u8>, Vec<&str>, String)> = Vec::new();
    let mut kinds: std::collections::HashMap<String, usize> = Default::default();
    for s in &seeds {
        match check(kind, s) {
            Ok(Outcome::Ok) => ok += 1,
            Ok(Outcome::Err(e)) => panic!("{kind}: seed {} is refused: {e}", hex(s)),
            Err(why) => panic!("{kind}: seed {}: {why}", hex(s)),
        }
    }
    for _ in 0..n {
        let (bytes, applied) = mutant(&mut rng, &seeds, aware);
        match check(kind, &bytes) {
            Ok(Outcome::Ok) => ok += 1,
            Ok(Outcome::Err(e)) => {
                err += 1;
                *kinds.entry(e).or_insert(0usize) += 1;
            }
            Err(why) => {
                if failures.len() < 5 {
                    failures.push((bytes, applied, why));
                }
            }
        }
    }
    let elapsed = start.elapsed();
    println!(
        "fuzz {kind}: {} inputs ({n} mutants of {} seeds, seed {seed:#x}) in {elapsed:.2?}: \
         {ok} parsed and round-tripped, {err} refused with a Format error ({} kinds of message), \
         {} failures",
        n + seeds.len(),
        seeds.len(),
        kinds.len(),
        failures.len()
    );
    if std::env::var_os("FUZZ_PARSERS_VERBOSE").is_some() {
        let mut kinds: Vec<_> = kinds.into_iter().collect();
        kinds.sort_by_key(|k| std::cmp::Reverse(k.1));
        for (k, n) in kinds {
            println!("  {n:>7}  {k}");
        }
    }
    for (bytes, applied, why) in &failures {
        eprintln!("{kind} input {} ({applied:?}): {why}", hex(bytes));
    }
    assert!(
        failures.is_empty(),
        "{kind}: {} failing inputs",
        failures.len()
    );
    assert!(
        ok > 0 && err > 0,
        "{kind}: the mutations must reach both outcomes"
    );
}

#[test]
fn fuzz_safetensors() {
    fuzz("st", safetensors_seeds(), mutate_safetensors);
}

#[test]
fn fuzz_npy() {
    fuzz("npy", npy_seeds(), mutate_npy);
}

/// Each input opens a zip archive (a central directory, perhaps inflating): a tenth of the
/// iterations of the flat formats.
#[test]
fn fuzz_npz() {
    fuzz_n("npz", npz_seeds(), |_, _| {}, iterations().div_ceil(10));
}

#[test]
fn fuzz_csv() {
    fuzz("csv", csv_seeds(), mutate_csv);
}

/// `.pth` files (torch.save's zip and our own unpickler): most mutants rewrite the pickle inside
/// and zip it again (a byte changed in place only fails the entry's CRC).
#[test]
fn fuzz_pth() {
    fuzz_n("pth", pth_seeds(), mutate_pth, iterations() / 10);
}

/// ONNX models with external data, as `[u32 LE model length][model][data]`: both parts mutated.
#[test]
fn fuzz_onnx_external() {
    fuzz_n(
        "onnx_external",
        onnx_external_seeds(),
        mutate_onnx_external,
        iterations() / 50,
    );
}

#[test]
fn regressions() {
    for (kind, bytes) in regression_inputs() {
        if let Err(why) = check(kind, &bytes) {
            panic!("{kind} regression {}: {why}", hex(&bytes));
        }
    }
}

/// Writes the seeds into the cargo-fuzz seed corpus, `fuzz/corpus/<target>/` (run by hand:
/// `cargo test --test fuzz_parsers -- --ignored write_seed_corpus`).
#[test]
#[ignore = "writes fuzz/corpus; run by hand"]
fn write_seed_corpus() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let sets = [
        ("safetensors", "safetensors", safetensors_seeds()),
        ("npy", "npy", npy_seeds()),
        ("csv", "csv", csv_seeds()),
        ("pth", "pth", pth_seeds()),
        ("onnx_external", "bin", onnx_external_seeds()),
    ];
    for (target, ext, seeds) in sets {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir).unwrap();
        for (i, s) in seeds.iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i:02}.{ext}")), s).unwrap();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// `.pth` and ONNX external data.

/// The torch.save fixtures that load (the refused ones are regressions of their own).
fn pth_seeds() -> Vec<Vec<u8>> {
    ["state_dict", "wrapped_model", "f16", "bf16", "views"]
        .iter()
        .map(|n| std::fs::read(common::data("pth").join(format!("{n}.pth"))).unwrap())
        .collect()
}

/// The entries of a zip archive, in order.
fn unzip(b: &[u8]) -> Option<Vec<(String, Vec<u8>)>> {
    use std::io::Read;
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(b)).ok()?;
    let mut out = Vec::new();
    for i in 0..z.len() {
        let mut f = z.by_index(i).ok()?;
        let mut v = Vec::new();
        f.read_to_end(&mut v).ok()?;
        out.push((f.name().ok()?.into_owned(), v));
    }
    Some(out)
}

fn rezip(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    use std::io::Write;
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, bytes) in entries {
        w.start_file(name.as_str(), stored).unwrap();
        w.write_all(bytes).unwrap();
    }
    w.finish().unwrap().into_inner()
}

/// Pickle opcodes torch.save writes, and a few it does not, to splice in.
const PICKLE_OPS: &[&[u8]] = &[
    b"(",
    b")",
    b"t",
    b"\x85",
    b"\x86",
    b"\x87",
    b"R",
    b"Q",
    b"b",
    b"s",
    b"u",
    b"a",
    b"e",
    b"]",
    b"}",
    b"N",
    b"\x88",
    b"\x89",
    b"K\xff",
    b"J\xff\xff\xff\xff",
    b"h\x00",
    b"q\x00",
    b"j\xff\xff\xff\x7f",
    b"X\xff\xff\xff\x7f",
    b"0",
    b".",
    b"cposix\nsystem\n",
    b"ctorch\nFloatStorage\n",
    b"ctorch._utils\n_rebuild_tensor_v2\n",
    b"\x93",
    b"\x94",
    b"\x8a\x09\x01\x02\x03\x04\x05\x06\x07\x08\x09",
];

fn mutate_pth(rng: &mut Rng, b: &mut Vec<u8>) {
    let Some(mut entries) = unzip(b) else {
        flip_bits(rng, b);
        return;
    };
    let Some(k) = (if rng.chance(80) {
        entries.iter().position(|(n, _)| n.ends_with("data.pkl"))
    } else {
        Some(rng.below(entries.len()))
    }) else {
        return;
    };
    let e = &mut entries[k].1;
    match rng.below(5) {
        0 => flip_bits(rng, e),
        1 => truncate(rng, e),
        2 => delete_range(rng, e),
        3 => duplicate_range(rng, e),
        _ => {
            let at = rng.below(e.len() + 1);
            let op = rng.pick(PICKLE_OPS);
            e.splice(at..at, op.iter().copied());
        }
    }
    *b = rezip(&entries);
}

fn check_pth(bytes: &[u8]) -> Result<Outcome, String> {
    use wgpu_mlp::model::Tensors;
    let r = wgpu_mlp::io::pth::StateDict::from_bytes(bytes, "fuzz");
    check_error(&r, "fuzz")?;
    let dict = match r {
        Ok(d) => d,
        Err(e) => return Ok(Outcome::Err(error_kind(&e))),
    };
    for k in dict.keys() {
        let shape = dict.shape(&k).ok_or("a key without a shape")?;
        if let Ok(v) = dict.values(&k)
            && v.len() != shape.iter().product::<usize>()
        {
            return Err(format!("'{k}' has shape {shape:?} but {} values", v.len()));
        }
    }
    let arch: wgpu_mlp::Arch = "linear,batchnorm1d,relu,dropout,linear".parse().unwrap();
    let r = st::from_bytes(bytes, "fuzz", Some(&arch), None);
    match &r {
        Err(Error::Format { .. } | Error::InvalidArgument(_)) | Ok(_) => Ok(Outcome::Ok),
        Err(e) => Err(format!("binding gave {e:?}")),
    }
}

fn onnx_external_seeds() -> Vec<Vec<u8>> {
    ["regression", "digits"]
        .iter()
        .map(|n| {
            let dir = common::data("external");
            let m = std::fs::read(dir.join(format!("{n}.onnx"))).unwrap();
            let d = std::fs::read(dir.join(format!("{n}.onnx.data"))).unwrap();
            [(m.len() as u32).to_le_bytes().to_vec(), m, d].concat()
        })
        .collect()
}

/// Rewrites the digits of an `offset` or `length` entry, or the data file's length.
fn mutate_onnx_external(rng: &mut Rng, b: &mut Vec<u8>) {
    let key: &[u8] = if rng.chance(50) {
        b"offset\x12"
    } else {
        b"length\x12"
    };
    let hits: Vec<usize> = (0..b.len().saturating_sub(key.len()))
        .filter(|&i| &b[i..i + key.len()] == key)
        .collect();
    if hits.is_empty() || rng.chance(20) {
        let keep = b.len() - rng.below(b.len().min(400) + 1);
        b.truncate(keep);
        return;
    }
    let at = *rng.pick(&hits) + key.len() + 1;
    if let Some(d) = b.get_mut(at) {
        *d = *rng.pick(b"0123456789-x ");
    }
}

fn check_onnx_external(bytes: &[u8]) -> Result<Outcome, String> {
    let Some((len, rest)) = bytes.split_first_chunk::<4>() else {
        return Ok(Outcome::Err("too short".into()));
    };
    let len = (u32::from_le_bytes(*len) as usize).min(rest.len());
    let (model, data) = rest.split_at(len);
    let mut last = Outcome::Ok;
    for name in ["regression.onnx.data", "digits.onnx.data"] {
        let r = wgpu_mlp::onnx::from_bytes_with_data(model, "fuzz", &[(name, data)]);
        check_error(&r, "fuzz")?;
        match r {
            Ok(m) => {
                let n = m.in_features();
                let x = Matrix::new(2, n, vec![0.5; 2 * n]).map_err(|e| e.to_string())?;
                let y = wgpu_mlp::cpu::forward(&m, &x).map_err(|e| format!("forward: {e}"))?;
                if y.cols() != m.out_features() {
                    return Err("output width".into());
                }
                return Ok(Outcome::Ok);
            }
            Err(e) => last = Outcome::Err(error_kind(&e)),
        }
    }
    Ok(last)
}
