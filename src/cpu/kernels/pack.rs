//! The packed weight layout every kernel reads.
//!
//! `y = x·Wᵀ + b` with `W` stored `[out, in]`: the kernels want, for each step `p` along `in`,
//! a run of consecutive output columns `W[j.., p]` in one vector load. So `Wᵀ` is cut into
//! *panels* of [`NR`] output columns; panel `j` is `in` rows of [`NR`] floats (one 64-byte
//! [`Block`] per row), `W[j·NR + c][p]` at block `j·in + p`, lane `c`. Panels follow each other,
//! so a kernel that reads several panels at once reads several sequential streams, and a GEMM
//! k-block of a panel (`kc` consecutive blocks) is contiguous. Columns past `out` are zero.
//!
//! Packing happens once, at load: per call the kernels only stream it.

use std::sync::Mutex;

use super::pool::Threads;

/// Output columns per panel: one AVX-512 register, two AVX registers, one cache line.
pub(crate) const NR: usize = 16;

/// One row of a panel: [`NR`] floats, 64-byte aligned so that vector loads never split a cache
/// line.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[repr(C, align(64))]
pub(crate) struct Block(pub [f32; NR]);

/// `Wᵀ` in panels of [`NR`] columns, plus the bias zero-padded to whole panels.
#[derive(Clone, Debug)]
pub(crate) struct PackedWeight {
    k: usize,
    n: usize,
    data: Vec<Block>,
    bias: Vec<f32>,
}

impl PackedWeight {
    /// Packs `weight` (`[n, k]` row-major) and `bias` (`n` values, zeros when absent).
    pub(crate) fn new(k: usize, n: usize, weight: &[f32], bias: Option<&[f32]>) -> Self {
        Self::new_on(k, n, weight, bias, &Threads::single())
    }

    /// [`new`](Self::new), the panels split over `threads`.
    pub(crate) fn new_on(
        k: usize,
        n: usize,
        weight: &[f32],
        bias: Option<&[f32]>,
        threads: &Threads,
    ) -> Self {
        assert_eq!(weight.len(), k * n, "weight is not [{n}, {k}]");
        // Panel j: its rows of W read one by one (contiguous), each scattered into one lane of
        // each block.
        let data = fill_panels(k, n, threads, &|j, panel| {
            let rows = weight.chunks_exact(k.max(1)).take(n).skip(j * NR).take(NR);
            for (c, row) in rows.enumerate() {
                for (block, &w) in panel.iter_mut().zip(row) {
                    block.0[c] = w;
                }
            }
        });
        let mut padded = vec![0.0f32; n.div_ceil(NR) * NR];
        if let Some(b) = bias {
            assert_eq!(b.len(), n, "bias needs {n} values");
            padded[..n].copy_from_slice(b);
        }
        PackedWeight {
            k,
            n,
            data,
            bias: padded,
        }
    }

    /// Packs `b` (`[k, n]` row-major: `B` itself, where [`new`](Self::new) takes `Bᵀ`) with
    /// no bias, for products `a·B` (training's `dX = dY·W` and `dW = dYᵀ·X`), the panels split
    /// over `threads`. Panel `j`, row `p` is a contiguous run `b[p][16j..16j + 16]`, so packing
    /// is a copy, not a transposition.
    pub(crate) fn from_kn(k: usize, n: usize, b: &[f32], threads: &Threads) -> Self {
        assert_eq!(b.len(), k * n, "b is not [{k}, {n}]");
        let data = fill_panels(k, n, threads, &|j, panel| {
            let (c0, c1) = (j * NR, n.min(j * NR + NR));
            for (block, row) in panel.iter_mut().zip(b.chunks_exact(n.max(1))) {
                let run = &row[c0..c1];
                match <&[f32; NR]>::try_from(run) {
                    // Whole runs as fixed-size copies (inlined moves; a `copy_from_slice` of a
                    // length the compiler cannot see was a `memmove` call per 64 bytes).
                    Ok(whole) => block.0 = *whole,
                    Err(_) => block.0[..run.len()].copy_from_slice(run),
                }
            }
        });
        PackedWeight {
            k,
            n,
            data,
            bias: vec![0.0; n.div_ceil(NR) * NR],
        }
    }

    /// Input width (`in`).
    pub(crate) fn k(&self) -> usize {
        self.k
    }

    /// Output width (`out`).
    pub(crate) fn n(&self) -> usize {
        self.n
    }

    /// Number of panels, `ceil(out / NR)`.
    pub(crate) fn panels(&self) -> usize {
        self.n.div_ceil(NR)
    }

    /// Panels `j..` from row `p` of panel `j` on (to the end of the data).
    pub(crate) fn from(&self, j: usize, p: usize) -> &[Block] {
        &self.data[j * self.k + p..]
    }

    /// The bias from column `j·NR` on, zero-padded to whole panels.
    pub(crate) fn bias_from(&self, j: usize) -> &[f32] {
        &self.bias[j * NR..]
    }

    /// Valid output columns of `np` panels starting at panel `j`.
    pub(crate) fn cols(&self, j: usize, np: usize) -> usize {
        (self.n - j * NR).min(np * NR)
    }
}

/// The `ceil(n / NR)` panels of `k` blocks each, zeroed, then `fill(j, panel j)` on each,
/// contiguous groups of panels split over `threads` (a few groups per thread; one thread below
/// a size where waking the others costs more than it saves).
fn fill_panels(
    k: usize,
    n: usize,
    threads: &Threads,
    fill: &(dyn Fn(usize, &mut [Block]) + Sync),
) -> Vec<Block> {
    const PAR_MIN_BLOCKS: usize = 1 << 12;
    let panels = n.div_ceil(NR);
    let mut data = vec![Block::default(); panels * k];
    if k == 0 {
        return data;
    }
    let t = threads.count();
    if t < 2 || panels < 2 || data.len() < PAR_MIN_BLOCKS {
        data.chunks_exact_mut(k)
            .enumerate()
            .for_each(|(j, p)| fill(j, p));
        return data;
    }
    let per = panels.div_ceil((4 * t).min(panels));
    let groups: Vec<Mutex<&mut [Block]>> = data.chunks_mut(per * k).map(Mutex::new).collect();
    threads.run(groups.len(), &|g| {
        // Each task locks only its own group: never contended.
        if let Ok(mut group) = groups[g].lock() {
            for (i, panel) in group.chunks_exact_mut(k).enumerate() {
                fill(g * per + i, panel);
            }
        }
    });
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        // W [out=18, in=3], W[o][p] = 100·o + p.
        let (k, n) = (3, 18);
        let w: Vec<f32> = (0..n * k).map(|i| (100 * (i / k) + i % k) as f32).collect();
        let b: Vec<f32> = (0..n).map(|o| -(o as f32)).collect();
        let pw = PackedWeight::new(k, n, &w, Some(&b));
        assert_eq!(pw.panels(), 2);
        for o in 0..32 {
            for p in 0..k {
                let want = if o < n { (100 * o + p) as f32 } else { 0.0 };
                assert_eq!(pw.from(o / NR, p)[0].0[o % NR], want, "W[{o}][{p}]");
            }
        }
        assert_eq!(pw.bias_from(1)[..3], [-16.0, -17.0, 0.0]);
        assert_eq!((pw.cols(0, 1), pw.cols(0, 2), pw.cols(1, 1)), (16, 18, 2));
        // The same layout from W's transpose, `[k, n]`, with a zero bias.
        let wt: Vec<f32> = (0..k * n).map(|i| w[(i % n) * k + i / n]).collect();
        let from_kn = PackedWeight::from_kn(k, n, &wt, &Threads::new(2));
        assert_eq!(from_kn.data, pw.data);
        assert_eq!(from_kn.bias_from(0), [0.0; 32]);
    }

    /// Split over threads, both packers give the serial layout (sizes past the split's
    /// threshold, panels not dividing evenly, a partial last panel).
    #[test]
    fn split_over_threads() {
        let (k, n) = (600, 7 * NR + 5);
        let w: Vec<f32> = (0..n * k).map(|i| i as f32).collect();
        let one = Threads::single();
        for t in [2, 3] {
            let pool = Threads::new(t);
            assert_eq!(
                PackedWeight::new_on(k, n, &w, None, &pool).data,
                PackedWeight::new(k, n, &w, None).data
            );
            assert_eq!(
                PackedWeight::from_kn(k, n, &w, &pool).data,
                PackedWeight::from_kn(k, n, &w, &one).data
            );
        }
    }
}
