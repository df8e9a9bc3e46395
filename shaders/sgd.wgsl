// The SGD update (sgd.rs): PyTorch's torch.optim.SGD step on one parameter tensor, in the
// order of its single-tensor path (_single_tensor_sgd), one value per invocation:
//   d = g + weight_decay·p                  (when weight_decay ≠ 0)
//   buf = d on the first step, else momentum·buf + (1 − dampening)·d   (when momentum ≠ 0)
//   d = d + momentum·buf (nesterov) or buf  (when momentum ≠ 0)
//   p = p − lr·d
// 1 − dampening is rounded on the host from f64, as PyTorch passes it (a Python float) as the
// scalar of add_. NaN and inf propagate as in PyTorch: nothing here tests or clamps a value.

const WG: u32 = 64u;

@compute @workgroup_size(WG)
fn sgd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    // The grid is folded into 2-D past 65,535 workgroups: rebuild the linear index.
    let i = (wid.y * dims.groups_x + wid.x) * WG + lid.x;
    if i >= dims.n {
        return;
    }
    let w = p[i];
    var d = g[i];
    if dims.weight_decay != 0.0 {
        d = d + dims.weight_decay * w;
    }
    if dims.momentum != 0.0 {
        var b = d;
        if dims.first == 0u {
            b = dims.momentum * buf[i] + dims.one_minus_dampening * d;
        }
        buf[i] = b;
        if dims.nesterov != 0u {
            d = d + dims.momentum * b;
        } else {
            d = b;
        }
    }
    p[i] = w - dims.lr * d;
}
