//! The optimizers' elementwise loops, compiled a second time with AVX2 + FMA enabled and picked
//! at run time where the CPU has them. `f32::mul_add` is an exact fused multiply-add either
//! way, so the bits are the same; without the `fma` target feature each one is a call into
//! libm's `fmaf`, which was a third of a training step's time (docs/LOG.md, trainspeed).

/// Defines each function twice (as written, and under `#[target_feature(enable = "avx2,fma")]`)
/// and dispatches on the CPU.
macro_rules! with_fma {
    ($($(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),*) $body:block)*) => {$(
        $(#[$doc])*
        pub(crate) fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                fn fast($($arg: $ty),*) $body
                if std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    // SAFETY: the CPU has AVX2 and FMA (checked just above).
                    return unsafe { fast($($arg),*) };
                }
            }
            $body
        }
    )*};
}

with_fma! {
    /// `p = g·a + p` (`param.add_(grad, alpha=a)`), fused.
    fn axpy(p: &mut [f32], g: &[f32], a: f32) {
        for (pv, &gv) in p.iter_mut().zip(g) {
            *pv = gv.mul_add(a, *pv);
        }
    }

    /// SGD's momentum step in one pass: `buf = g·keep + buf·m` (`buf.mul_(m).add_(g,
    /// alpha=keep)`), then `p = buf·neg_lr + p`, each fused as ATen's kernels do.
    fn momentum_step(p: &mut [f32], buf: &mut [f32], g: &[f32], keep: f32, m: f32, neg_lr: f32) {
        for ((pv, bv), &gv) in p.iter_mut().zip(buf.iter_mut()).zip(g) {
            *bv = gv.mul_add(keep, *bv * m);
            *pv = bv.mul_add(neg_lr, *pv);
        }
    }
}

/// One task's share of [`threaded_momentum_step`]: `p`, `buf` and `g`.
type Chunk<'a> = (&'a mut [f32], &'a mut [f32], &'a [f32]);

/// Elements below which [`threaded_momentum_step`] stays on the calling thread.
const PAR_MIN: usize = 1 << 16;

/// [`momentum_step`] split over the training pool's threads in contiguous chunks (each element
/// is computed alone, so the bits do not depend on the split). It streams three arrays once,
/// memory-bound: on a large layer a second core's share of the bandwidth helps.
pub(crate) fn threaded_momentum_step(
    p: &mut [f32],
    buf: &mut [f32],
    g: &[f32],
    keep: f32,
    m: f32,
    neg_lr: f32,
) {
    crate::train::fast_linear::with_pool(|pool| {
        let n = p.len().min(buf.len()).min(g.len());
        if n < PAR_MIN || pool.count() < 2 {
            return momentum_step(p, buf, g, keep, m, neg_lr);
        }
        // Chunks of whole cache lines, a few per thread so that a descheduled thread is covered.
        let tasks = 4 * pool.count();
        let len = n.div_ceil(tasks).next_multiple_of(16);
        let parts: Vec<std::sync::Mutex<Chunk<'_>>> = p[..n]
            .chunks_mut(len)
            .zip(buf[..n].chunks_mut(len))
            .zip(g[..n].chunks(len))
            .map(|((p, b), g)| std::sync::Mutex::new((p, b, g)))
            .collect();
        pool.run(parts.len(), &|t| {
            // Each task locks only its own chunk: never contended.
            if let Ok(mut part) = parts[t].lock() {
                let (p, b, g) = &mut *part;
                momentum_step(p, b, g, keep, m, neg_lr);
            }
        });
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fused_loops_round_once_as_mul_add_does() {
        // 1 + 2⁻¹² squared needs the unrounded product: a separate multiply loses the 2⁻²⁴.
        let e = 1.0 + f32::EPSILON * 2048.0;
        let g: Vec<f32> = vec![e; 37];
        let mut p = vec![-1.0f32; 37];
        axpy(&mut p, &g, e);
        assert!(
            p.iter()
                .all(|&v| v == e.mul_add(e, -1.0) && v != e * e - 1.0)
        );
        let (mut p, mut buf) = (vec![0.5f32; 37], vec![0.25f32; 37]);
        momentum_step(&mut p, &mut buf, &g, 1.0, 0.9, -0.01);
        let b = e.mul_add(1.0, 0.25f32 * 0.9);
        assert!(buf.iter().all(|&v| v == b));
        assert!(p.iter().all(|&v| v == b.mul_add(-0.01, 0.5)));
    }

    #[test]
    fn the_threaded_momentum_step_is_the_plain_one() {
        let n = PAR_MIN * 3 + 17;
        let mut rng = crate::rng::Generator::new(9);
        let (p0, b0, g) = (rng.rand(n), rng.rand(n), rng.rand(n));
        let (mut p1, mut b1) = (p0.clone(), b0.clone());
        let (mut p2, mut b2) = (p0, b0);
        momentum_step(&mut p1, &mut b1, &g, 1.0, 0.9, -0.01);
        threaded_momentum_step(&mut p2, &mut b2, &g, 1.0, 0.9, -0.01);
        assert!(p1.iter().zip(&p2).all(|(a, b)| a.to_bits() == b.to_bits()));
        assert!(b1.iter().zip(&b2).all(|(a, b)| a.to_bits() == b.to_bits()));
    }
}
