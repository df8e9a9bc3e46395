// The Adam / AdamW update (adam.rs): PyTorch's torch.optim.Adam(W) step on one parameter
// tensor, op for op as its single-tensor path (_single_tensor_adam) and the CPU's optim.rs:
//   g = g + wd·p                   (Adam, wd ≠ 0; fused, as add(alpha=))     or
//   p = p·(1 − lr·wd)              (AdamW; the factor rounded from f64 on the host)
//   m = m.lerp(g, 1 − β1)          (ATen's lerp: two fused forms by |w| < ½)
//   v = fma((1 − β2)·g, g, v·β2)   (mul_ then addcmul_)
//   vmax = max(vmax, v)            (amsgrad; the denominator then uses vmax)
//   p = p + (−step_size·m) / (√v / √bc2 + eps)
// −step_size = −lr/(1 − β1^t) and √bc2 = √(1 − β2^t) change every step: the host computes them
// in f64, as PyTorch's Python does, and writes them to the step-state buffer. The state is one
// tensor: m, then v, then (amsgrad) vmax, each n values. NaN and inf propagate as in PyTorch.

const WG: u32 = 64u;

@compute @workgroup_size(WG)
fn adam(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    if step_skip() {
        return;
    }
    let neg_step_size = step[STEP_NEG_STEP_SIZE];
    let bc2_sqrt = step[STEP_BC2_SQRT];
    let n = dims.n;
    // PER values, WG apart (consecutive invocations read consecutive values).
    let base = (wid.y * dims.groups_x + wid.x) * WG * PER + lid.x;
    for (var j = 0u; j < PER; j++) {
        let i = base + j * WG;
        if i >= n {
            break;
        }
        var w = p[i];
        var gv = g[i];
        if dims.weight_decay != 0.0 {
            if (dims.flags & 2u) != 0u {
                w = w * dims.weight_decay;
            } else {
                gv = fma(w, dims.weight_decay, gv);
            }
        }
        let m0 = state[i];
        let d = gv - m0;
        let wt = dims.one_minus_beta1;
        let m = select(fma(wt - 1.0, d, gv), fma(wt, d, m0), abs(wt) < 0.5);
        state[i] = m;
        let v = fma(dims.one_minus_beta2 * gv, gv, state[n + i] * dims.beta2);
        state[n + i] = v;
        var second = v;
        if (dims.flags & 1u) != 0u {
            second = max(state[2u * n + i], v);
            state[2u * n + i] = second;
        }
        let denom = wm_sqrt(second) / bc2_sqrt + dims.eps;
        p[i] = w + neg_step_size * m / denom;
    }
}
