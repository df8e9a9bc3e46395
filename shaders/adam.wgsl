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

// WG comes from update_walk.rs.
@compute @workgroup_size(WG)
fn adam(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = (wid.y * dims.groups_x + wid.x) * WG + lid.x;
    if i >= dims.n || step_skip() {
        return;
    }
    let n = dims.n;
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
    let denom = wm_sqrt(second) / step[STEP_BC2_SQRT] + dims.eps;
    p[i] = w + step[STEP_NEG_STEP_SIZE] * m / denom;
}
