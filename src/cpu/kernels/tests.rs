//! Every kernel this CPU runs, against a plain f64 dot product, over odd shapes, batch sizes
//! that hit every path (GEMV, GEMM split by columns, GEMM split by rows, partial tiles), thread
//! counts 1–3, extreme values and the epilogue contract.
//!
//! Tolerance: `|y − ref| ≤ γ(k+2)·(Σ|x_i·w_i| + |b|) + (k+2)·2⁻¹⁴⁹`, with `γ(m) = m·u/(1 − m·u)`,
//! `u = 2⁻²⁴`. It is the textbook worst-case bound for summing `k + 1` rounded terms in any order
//! (products rounded or fused, any blocking), plus half a subnormal step per term for underflow:
//! no kernel that computes the right sum can exceed it, and a wrong index or a missed term
//! (an error of the order of one term) lands far outside it at these sizes. Where the exact sum
//! overflows f32 (or is NaN) the result must be that infinity (NaN) exactly; a NaN never passes.

use std::sync::Mutex;

use super::{Kernel, PackedLinear, Threads};
use crate::Linear;

/// A small deterministic generator (xorshift64*), so the tests do not depend on the crate's.
struct Rng(u64);

impl Rng {
    fn next_u32(&mut self) -> u32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32) as u32
    }

    /// Uniform in [-1, 1).
    fn sym(&mut self) -> f32 {
        (self.next_u32() >> 8) as f32 / (1u32 << 23) as f32 - 1.0
    }

    fn vec(&mut self, len: usize, scale: f32) -> Vec<f32> {
        (0..len).map(|_| scale * self.sym()).collect()
    }
}

struct Case {
    k: usize,
    n: usize,
    rows: usize,
    linear: Linear,
    x: Vec<f32>,
}

impl Case {
    fn new(rng: &mut Rng, k: usize, n: usize, rows: usize, bias: bool, x_scale: f32) -> Case {
        let w = rng.vec(n * k, 1.0);
        let b = bias.then(|| rng.vec(n, 1.0));
        let linear = Linear::new(k, n, w, b).expect("valid layer");
        let x = rng.vec(rows * k, x_scale);
        Case {
            k,
            n,
            rows,
            linear,
            x,
        }
    }

    /// The exact (f64) result and each output's Σ|terms|.
    fn reference(&self) -> (Vec<f64>, Vec<f64>) {
        let (k, n) = (self.k, self.n);
        let w = self.linear.weight();
        let mut y = Vec::with_capacity(self.rows * n);
        let mut mag = Vec::with_capacity(self.rows * n);
        for xr in self.x.chunks_exact(k) {
            for o in 0..n {
                let b = self.linear.bias().map_or(0.0, |b| f64::from(b[o]));
                let (mut s, mut m) = (b, b.abs());
                for (&xi, &wi) in xr.iter().zip(&w[o * k..(o + 1) * k]) {
                    let t = f64::from(xi) * f64::from(wi);
                    s += t;
                    m += t.abs();
                }
                y.push(s);
                mag.push(m);
            }
        }
        (y, mag)
    }

    fn run(&self, layer: &PackedLinear, threads: &Threads) -> Vec<f32> {
        let mut y = vec![f32::from_bits(0x7fc0_dead); self.rows * self.n]; // NaN: unwritten shows
        layer.forward(&self.x, self.rows, &mut y, threads, &|_, _| {});
        y
    }
}

fn check(what: &str, k: usize, y: &[f32], (want, mag): &(Vec<f64>, Vec<f64>)) {
    let u = f64::powi(2.0, -24);
    let m = (k + 2) as f64;
    let gamma = m * u / (1.0 - m * u);
    for (i, ((&got, &r), &mg)) in y.iter().zip(want).zip(mag).enumerate() {
        let r32 = r as f32; // overflows to ±inf exactly as f32 arithmetic does
        let ok = if r.is_nan() {
            got.is_nan()
        } else if r32.is_infinite() {
            got == r32
        } else {
            let tol = gamma * mg + m * f64::powi(2.0, -149);
            (f64::from(got) - r).abs() <= tol
        };
        assert!(ok, "{what}: y[{i}] = {got:e}, want {r:e} (Σ|terms| {mg:e})");
    }
}

fn kernels() -> Vec<Kernel> {
    Kernel::ALL
        .into_iter()
        .filter(|k| k.is_supported())
        .collect()
}

fn pools() -> Vec<Threads> {
    (1..=3).map(Threads::new).collect()
}

/// Runs every kernel on every pool, checks each result and that they agree bit for bit across
/// thread counts.
fn check_case(c: &Case, pools: &[Threads], what: &str) {
    let want = c.reference();
    for kernel in kernels() {
        let layer = PackedLinear::with_kernel(&c.linear, kernel).expect("supported");
        let mut first: Option<Vec<f32>> = None;
        for pool in pools {
            let y = c.run(&layer, pool);
            let what = format!("{what} {} threads {}", kernel.name(), pool.count());
            check(&what, c.k, &y, &want);
            match &first {
                None => first = Some(y),
                Some(f) => assert!(
                    f.iter().zip(&y).all(|(a, b)| a.to_bits() == b.to_bits()),
                    "{what}: differs from 1 thread"
                ),
            }
        }
    }
}

const ODD: [usize; 6] = [1, 3, 7, 31, 33, 257];
const BATCHES: [usize; 8] = [1, 2, 3, 5, 17, 64, 65, 1024];

#[test]
fn odd_shapes_all_batches() {
    let pools = pools();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for &k in &ODD {
        for &n in &ODD {
            for &rows in &BATCHES {
                // The biggest cases only on a few shapes: the rest adds time, not paths.
                if rows == 1024 && k * n > 33 * 257 && k != n {
                    continue;
                }
                let c = Case::new(&mut rng, k, n, rows, (k + n + rows) % 2 == 0, 1.0);
                check_case(&c, &pools, &format!("[{rows}, {k}] -> {n}"));
            }
        }
    }
}

#[test]
fn model_shapes() {
    let pools = pools();
    let mut rng = Rng(7);
    for (k, n) in [(784, 512), (512, 10), (300, 700)] {
        for rows in [1, 4, 6, 40, 200] {
            let c = Case::new(&mut rng, k, n, rows, true, 1.0);
            check_case(&c, &pools, &format!("[{rows}, {k}] -> {n}"));
        }
    }
}

#[test]
fn no_bias_and_large_inputs() {
    let pools = pools();
    let mut rng = Rng(11);
    for rows in [1, 3, 17, 64] {
        for (k, n) in [(33, 31), (257, 7)] {
            let c = Case::new(&mut rng, k, n, rows, false, 1e4);
            check_case(&c, &pools, &format!("|x| ≤ 1e4 [{rows}, {k}] -> {n}"));
            let c = Case::new(&mut rng, k, n, rows, true, 1e-30);
            check_case(&c, &pools, &format!("|x| ≤ 1e-30 [{rows}, {k}] -> {n}"));
        }
    }
}

/// Overflow to ±inf, inf·0 = NaN, inf − inf = NaN, NaN inputs and weights: as f32 math does.
#[test]
fn non_finite() {
    let pools = pools();
    let mut rng = Rng(13);
    for rows in [1, 2, 5, 17, 64] {
        for (k, n) in [(7, 33), (257, 3), (33, 20)] {
            let mut c = Case::new(&mut rng, k, n, rows, true, 1.0);
            let mut w = c.linear.weight().to_vec();
            // Column 0 of W is 2, -2, 0.5 by output: with x = 3e38 there the products overflow
            // to +inf, -inf, or stay finite.
            for o in 0..n {
                w[o * k] = [2.0, -2.0, 0.5][o % 3];
            }
            // Output n-1 gets a NaN weight; output 1 a zero weight at column 2 (for inf·0).
            w[(n - 1) * k + 1] = f32::NAN;
            w[k + 2] = 0.0;
            c.linear = Linear::new(k, n, w, c.linear.bias().map(<[f32]>::to_vec)).unwrap();
            for r in 0..rows {
                let row = &mut c.x[r * k..(r + 1) * k];
                match r % 4 {
                    0 => row[0] = 3e38,
                    1 => row[0] = -3e38,
                    2 => row[2] = f32::INFINITY,
                    _ => row[3] = f32::NAN,
                }
            }
            check_case(&c, &pools, &format!("non-finite [{rows}, {k}] -> {n}"));
        }
    }
    // Two finite products whose sum overflows, whatever the order: 3e38 + 3e38.
    let linear = Linear::new(2, 17, vec![1.0; 34], None).unwrap();
    let c = Case {
        k: 2,
        n: 17,
        rows: 9,
        linear,
        x: vec![3e38; 18],
    };
    check_case(&c, &pools, "sum overflow");
}

/// The epilogue sees every row exactly once, in whole-row blocks holding the final values, and
/// what it writes is what `forward` returns.
#[test]
fn epilogue_contract() {
    let pools = pools();
    let mut rng = Rng(17);
    for kernel in kernels() {
        for (k, n) in [(33, 7), (257, 65), (784, 512)] {
            for rows in [1, 3, 5, 17, 64, 65, 300] {
                let c = Case::new(&mut rng, k, n, rows, true, 1.0);
                let layer = PackedLinear::with_kernel(&c.linear, kernel).unwrap();
                let plain = c.run(&layer, &pools[0]);
                for pool in &pools {
                    let what = format!(
                        "{} [{rows}, {k}] -> {n}, {} threads",
                        kernel.name(),
                        pool.count()
                    );
                    let seen = Mutex::new(vec![f32::NAN; rows * n]);
                    let calls = Mutex::new(Vec::new());
                    let mut y = vec![0.0f32; rows * n];
                    layer.forward(&c.x, rows, &mut y, pool, &|first, block: &mut [f32]| {
                        assert_eq!(block.len() % n, 0, "{what}: partial row");
                        calls.lock().unwrap().push((first, block.len() / n));
                        seen.lock().unwrap()[first * n..][..block.len()].copy_from_slice(block);
                        for v in block.iter_mut() {
                            *v = v.max(0.0); // ReLU
                        }
                    });
                    let mut calls = calls.into_inner().unwrap();
                    calls.sort_unstable();
                    let mut next = 0;
                    for (first, len) in calls {
                        assert_eq!(first, next, "{what}: rows {next}.. not seen once");
                        next += len;
                    }
                    assert_eq!(next, rows, "{what}: rows {next}.. not seen");
                    let seen = seen.into_inner().unwrap();
                    assert!(
                        seen.iter()
                            .zip(&plain)
                            .all(|(a, b)| a.to_bits() == b.to_bits()),
                        "{what}: the epilogue saw unfinished values"
                    );
                    let relu: Vec<f32> = plain.iter().map(|v| v.max(0.0)).collect();
                    assert_eq!(y, relu, "{what}: the epilogue's writes are not the result");
                }
            }
        }
    }
}

#[test]
fn shareable_across_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<PackedLinear>();
    send_sync::<Threads>();
}

#[test]
fn zero_rows_and_accessors() {
    let linear = Linear::new(5, 3, vec![1.0; 15], None).unwrap();
    let layer = PackedLinear::new(&linear);
    assert_eq!((layer.in_features(), layer.out_features()), (5, 3));
    assert_eq!(layer.kernel(), Kernel::best());
    layer.forward(&[], 0, &mut [], &Threads::new(2), &|_, _| {
        panic!("no rows, no epilogue")
    });
}

#[test]
#[should_panic(expected = "x is not")]
fn wrong_x_length() {
    let layer = PackedLinear::new(&Linear::new(5, 3, vec![1.0; 15], None).unwrap());
    layer.forward(&[0.0; 9], 2, &mut [0.0; 6], &Threads::single(), &|_, _| {});
}

/// Each output is one chain over `p = 0..k` in order, then `+ b`, whatever the k-blocking
/// (`gemm.rs` cuts a transposed operand's reduction into blocks and resumes from the stored
/// f32 partial sums):
/// bit for bit against that chain computed one scalar at a time (fused on the FMA kernels,
/// rounded product then sum on the portable one), on shapes whose `k` spans several blocks
/// with a partial last one, partial panels and tiles, on 1–3 threads, with the left operand
/// read row-major and as a transpose in place ([`Lhs`], training's `dW = Gᵀ·X`).
#[test]
fn k_blocks_keep_each_chain() {
    use super::Lhs;
    let mut rng = Rng(23);
    for (rows, k, n) in [
        (9, 300, 70),
        (64, 1024, 33),
        (5, 257, 16),
        (70, 784, 40),
        (3, 2000, 5),
    ] {
        let c = Case::new(&mut rng, k, n, rows, true, 1.0);
        // The same rows stored transposed, `[k, rows]`.
        let xt: Vec<f32> = (0..k * rows)
            .map(|i| c.x[(i % rows) * k + i / rows])
            .collect();
        let (w, b) = (c.linear.weight(), c.linear.bias().unwrap());
        for kernel in kernels() {
            let chain = |r: usize, o: usize| {
                let terms = c.x[r * k..(r + 1) * k].iter().zip(&w[o * k..(o + 1) * k]);
                let s = terms.fold(0.0f32, |s, (&x, &w)| {
                    if kernel == Kernel::Portable {
                        s + x * w
                    } else {
                        x.mul_add(w, s)
                    }
                });
                s + b[o]
            };
            let layer = PackedLinear::with_kernel(&c.linear, kernel).expect("supported");
            for pool in &pools() {
                let what = format!("[{rows}, {k}] -> {n} {} {}", kernel.name(), pool.count());
                let mut y = c.run(&layer, pool);
                let mut yt = vec![f32::NAN; rows * n];
                let a = Lhs {
                    data: &xt,
                    ld: 1,
                    kx: rows,
                };
                layer.product(a, rows, &mut yt, pool, &|_, _| {});
                for (got, name) in [(&mut y, "row-major"), (&mut yt, "transposed")] {
                    for (i, v) in got.iter().enumerate() {
                        let want = chain(i / n, i % n);
                        assert_eq!(v.to_bits(), want.to_bits(), "{what} {name} y[{i}]");
                    }
                }
            }
        }
    }
}
