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
}
