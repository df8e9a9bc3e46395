// The SGD update (sgd.rs): PyTorch's torch.optim.SGD step on one parameter tensor, in the
// order of its single-tensor path (_single_tensor_sgd) and the CPU's optim.rs, one value per
// invocation, each add(alpha=) fused as ATen's kernels fuse it:
//   d = fma(p, weight_decay, g)                 (when weight_decay ≠ 0)
//   buf = d on the first step, else fma(d, 1 − dampening, momentum·buf)   (when momentum ≠ 0)
//   d = fma(buf, momentum, d) (nesterov) or buf (when momentum ≠ 0)
//   p = fma(d, −lr, p)
// 1 − dampening and −lr are rounded on the host from f64, as PyTorch passes them (Python
// floats). Whether this is the first step comes from the step-state buffer, and a step whose
// loss was not finite (or a gradients-only step) changes nothing. NaN and inf propagate as in
// PyTorch: nothing here tests or clamps a value.

// WG comes from update_walk.rs.
@compute @workgroup_size(WG)
fn sgd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    // The grid is folded into 2-D past 65,535 workgroups: rebuild the linear index.
    let i = (wid.y * dims.groups_x + wid.x) * WG + lid.x;
    if i >= dims.n || step_skip() {
        return;
    }
    let w = p[i];
    var d = g[i];
    if dims.weight_decay != 0.0 {
        d = fma(w, dims.weight_decay, d);
    }
    if dims.momentum != 0.0 {
        var b = d;
        if step[STEP_FIRST] == 0.0 {
            b = fma(d, dims.one_minus_dampening, dims.momentum * buf[i]);
        }
        buf[i] = b;
        if dims.nesterov != 0u {
            d = fma(b, dims.momentum, d);
        } else {
            d = b;
        }
    }
    p[i] = fma(d, dims.neg_lr, w);
}
