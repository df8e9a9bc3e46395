//! The fast path's Linear products on the packed f32 kernels and their thread pool
//! ([`PackedLinear`]), arranged so that each step packs as little as it can: the operand
//! streamed as panels is the one that packs by a copy (`B` row-major, [`PackedLinear::from_kn`])
//! or the smaller one to transpose. Every output is one f32 FMA chain over the reduced dimension
//! in order (docs/CPU.md), so each result is the same whichever arrangement and kernel set runs
//! it; the bias is added once at the end, as the forward kernels add it.

use std::cell::RefCell;
use std::sync::{Arc, OnceLock};

use crate::cpu::{Kernel, Lhs, PackedLinear, Threads};
use crate::model::Linear;

/// `y = x·Wᵀ + b` on `batch` rows.
pub(crate) fn forward(lin: &Linear, x: &[f32], batch: usize, kernel: Kernel) -> Vec<f32> {
    let (k, n) = (lin.in_features(), lin.out_features());
    let mut y = vec![0.0f32; batch * n];
    if batch.saturating_mul(k + n) >= k * n {
        // Pack W (the smaller operand) as the forward pass does.
        with_pool(|t| {
            let w = PackedLinear::from_nk(k, n, lin.weight(), kernel, t).expect(SUPPORTED);
            w.forward(x, batch, &mut y, t, &|_, _| {});
        });
    } else {
        // Few rows: yᵀ = W·xᵀ, packing x ([batch, k] is a Linear weight's layout) and reading
        // W in place, then y = (yᵀ)ᵀ.
        let mut yt = vec![0.0f32; n * batch];
        with_pool(|t| {
            let xs = PackedLinear::from_nk(k, batch, x, kernel, t).expect(SUPPORTED);
            xs.forward(lin.weight(), n, &mut yt, t, &|_, _| {});
        });
        transpose_into(&yt, n, batch, &mut y);
    }
    if let Some(b) = lin.bias() {
        for row in y.chunks_exact_mut(n) {
            row.iter_mut().zip(b).for_each(|(v, b)| *v += b);
        }
    }
    y
}

/// `dX = G·W` (`G` `[batch, out]`, `W` `[out, in]`): `W` packed by a copy.
pub(crate) fn input_grad(lin: &Linear, g: &[f32], batch: usize, kernel: Kernel) -> Vec<f32> {
    let (k, n) = (lin.in_features(), lin.out_features());
    let mut dx = vec![0.0f32; batch * k];
    with_pool(|t| {
        let w = PackedLinear::from_kn(n, k, lin.weight(), kernel, t).expect(SUPPORTED);
        w.forward(g, batch, &mut dx, t, &|_, _| {});
    });
    dx
}

/// `dW = Gᵀ·X` (`[out, in]`): `X` packed by a copy, `Gᵀ` read in place (a transposition of
/// `G` cost 10% of a batch-1024 step, docs/LOG.md cpustep; the driver copies `Gᵀ`'s k-blocks
/// into its own order instead).
pub(crate) fn weight_grad(
    x: &[f32],
    g: &[f32],
    batch: usize,
    (k, n): (usize, usize),
    kernel: Kernel,
) -> Vec<f32> {
    let gt = Lhs {
        data: g,
        ld: 1,
        kx: n,
    };
    let mut dw = vec![0.0f32; n * k];
    with_pool(|t| {
        let xs = PackedLinear::from_kn(batch, k, x, kernel, t).expect(SUPPORTED);
        xs.product(gt, n, &mut dw, t, &|_, _| {});
    });
    dw
}

/// `db = Σ_batch G` in f32, each column summed over the rows in order (rows added one at a
/// time: contiguous, vectorisable).
pub(crate) fn bias_grad(g: &[f32], n: usize) -> Vec<f32> {
    let mut rows = g.chunks_exact(n);
    let mut acc = rows.next().map_or_else(|| vec![0.0; n], <[f32]>::to_vec);
    for r in rows {
        acc.iter_mut().zip(r).for_each(|(a, v)| *a += v);
    }
    acc
}

const SUPPORTED: &str = "the training path's kernel is supported (Kernel::best or checked)";

/// `t = mᵀ` for `m` `[rows, cols]`, through a 16 × 16 tile on the stack so that every line
/// of `m` and of `t` is read or written whole: writing `t` a float at a time down a column,
/// rows 4 KiB apart, put every line in one cache set and thrashed it (10% of a batch-1024 step).
fn transpose_into(m: &[f32], rows: usize, cols: usize, t: &mut [f32]) {
    const T: usize = 16;
    let mut tile = [[0.0f32; T]; T];
    for r0 in (0..rows).step_by(T) {
        let rn = T.min(rows - r0);
        for c0 in (0..cols).step_by(T) {
            let cn = T.min(cols - c0);
            for i in 0..rn {
                let src = &m[(r0 + i) * cols + c0..][..cn];
                for (j, &v) in src.iter().enumerate() {
                    tile[j][i] = v;
                }
            }
            for (j, row) in tile.iter().enumerate().take(cn) {
                t[(c0 + j) * rows + r0..][..rn].copy_from_slice(&row[..rn]);
            }
        }
    }
}

/// The fast path's thread pool: one thread per core, started on first use and shared by every
/// trainer (a pool runs one job at a time; concurrent trainers take turns), unless
/// [`with_threads`] set another for the calling thread.
pub(crate) fn with_pool<R>(f: impl FnOnce(&Threads) -> R) -> R {
    static POOL: OnceLock<Threads> = OnceLock::new();
    let local = OVERRIDE.with(|o| o.borrow().clone());
    match local {
        Some(t) => f(&t),
        None => f(POOL.get_or_init(|| {
            Threads::new(std::thread::available_parallelism().map_or(1, |n| n.get()))
        })),
    }
}

thread_local! {
    static OVERRIDE: RefCell<Option<Arc<Threads>>> = const { RefCell::new(None) };
}

/// Runs `f` with the fast training path of this thread on `threads` threads (the harness's
/// `--threads`); the default pool again afterwards.
#[cfg(all(feature = "bench", not(target_arch = "wasm32")))]
pub(crate) fn with_threads<R>(threads: usize, f: impl FnOnce() -> R) -> R {
    let pool = Arc::new(Threads::new(threads));
    let before = OVERRIDE.with(|o| o.replace(Some(pool)));
    let out = f();
    OVERRIDE.with(|o| *o.borrow_mut() = before);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Generator;

    #[test]
    fn transpose_at_odd_shapes() {
        for (r, c) in [(1, 1), (1, 17), (17, 1), (33, 31), (64, 16), (5, 300)] {
            let m: Vec<f32> = (0..r * c).map(|i| i as f32).collect();
            let mut t = vec![f32::NAN; r * c];
            transpose_into(&m, r, c, &mut t);
            for i in 0..r {
                for j in 0..c {
                    assert_eq!(t[j * r + i], m[i * c + j], "[{r}, {c}] at ({i}, {j})");
                }
            }
        }
    }

    /// Every product on every kernel set this CPU has (AVX-512, AVX2, portable), in both
    /// arrangements of the forward pass, against f64 sums: within the f32 rounding of a chain
    /// of `k` terms, and bit for bit the same on the two FMA sets (AVX-512 and AVX2; the
    /// portable kernel rounds its products separately).
    #[test]
    fn products_match_f64_on_every_kernel_set() {
        let mut rng = Generator::new(5);
        let mut r = |n: usize| -> Vec<f32> { rng.rand(n).iter().map(|v| 2.0 * v - 1.0).collect() };
        for (batch, k, n) in [
            (1, 3, 1),
            (7, 31, 33),
            (65, 17, 3),
            (3, 257, 40),
            (100, 20, 20),
        ] {
            let lin = Linear::new(k, n, r(n * k), Some(r(n))).unwrap();
            let (x, g) = (r(batch * k), r(batch * n));
            let w = lin.weight();
            let bias = lin.bias().unwrap();
            let close = |what: &str, got: &[f32], want: &dyn Fn(usize) -> f64, terms: usize| {
                for (i, &v) in got.iter().enumerate() {
                    let e = want(i);
                    let tol = 2.0 * terms as f64 * f64::from(f32::EPSILON) * (1.0 + e.abs());
                    assert!(
                        (f64::from(v) - e).abs() <= tol,
                        "{what} [{batch},{k},{n}] {i}: {v} vs {e}"
                    );
                }
            };
            let mut seen: Option<Vec<Vec<f32>>> = None;
            for kernel in Kernel::ALL.into_iter().filter(|k| k.is_supported()) {
                let y = forward(&lin, &x, batch, kernel);
                close(
                    "y",
                    &y,
                    &|i| {
                        let (b, o) = (i / n, i % n);
                        f64::from(bias[o])
                            + (0..k)
                                .map(|p| f64::from(x[b * k + p]) * f64::from(w[o * k + p]))
                                .sum::<f64>()
                    },
                    k,
                );
                let dx = input_grad(&lin, &g, batch, kernel);
                close(
                    "dx",
                    &dx,
                    &|i| {
                        let (b, p) = (i / k, i % k);
                        (0..n)
                            .map(|o| f64::from(g[b * n + o]) * f64::from(w[o * k + p]))
                            .sum::<f64>()
                    },
                    n,
                );
                let dw = weight_grad(&x, &g, batch, (k, n), kernel);
                close(
                    "dw",
                    &dw,
                    &|i| {
                        let (o, p) = (i / k, i % k);
                        (0..batch)
                            .map(|b| f64::from(g[b * n + o]) * f64::from(x[b * k + p]))
                            .sum::<f64>()
                    },
                    batch,
                );
                let all = vec![y, dx, dw];
                match &seen {
                    _ if kernel == Kernel::Portable => {}
                    None => seen = Some(all),
                    Some(s) => assert!(
                        s.iter()
                            .flatten()
                            .zip(all.iter().flatten())
                            .all(|(a, b)| a.to_bits() == b.to_bits()),
                        "{} differs from the first kernel set",
                        kernel.name()
                    ),
                }
            }
        }
    }
}
