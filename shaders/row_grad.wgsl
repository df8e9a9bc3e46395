// The training plan's row-wise modules (row_grad.rs): softmax and log-softmax, LayerNorm and
// PReLU, forward into a tensor of their own and backward, in f32 with the CPU reference's
// formulas (train/activation_grad.rs, train/norm_grad.rs, train/backward.rs):
//   softmax'     gx = y·(gy − Σ gy·y)          log_softmax'  gx = gy − exp(y)·Σ gy
//   LayerNorm    x̂ = (x − μ)·r, r = 1/√(var + eps) (biased variance), y = x̂·γ + β;
//                gx = r·(ĝ − mean(ĝ) − x̂·mean(ĝ·x̂)) with ĝ = gy·γ; dγ = Σ gy·x̂, dβ = Σ gy
//   PReLU        y = x > 0 ? x : a·x;  gx = x > 0 ? gy : a·gy;  da = Σ (x > 0 ? 0 : x·gy)
//   Dropout      y = x·mask, gx = gy·mask (the scaled mask drawn on the host: mul)
// The row statistics are recomputed in the backward (the same code, so the same bits) rather
// than kept: a kernel binds at most four storage buffers. The column sums (dγ, dβ, da) are the
// colsum kernel's, over per-element products these kernels write. Each entry point below is a
// section of its own (a line `// ENTRY` and its name): a pipeline's module holds its entry's bindings only.

const WG: u32 = 64u;

fn index(wid: vec3<u32>, lid: vec3<u32>) -> u32 {
    return (wid.y * dims.groups_x + wid.x) * WG + lid.x;
}

fn wm_finite_max(a: f32, b: f32) -> f32 {
    return select(max(a, b), a, wm_is_nan(a));
}

// ENTRY softmax_forward
@compute @workgroup_size(WG)
fn softmax_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let r = index(wid, lid);
    if r >= dims.rows {
        return;
    }
    let c = dims.width;
    let base = r * c;
    var m = x[base];
    for (var j = 1u; j < c; j++) {
        m = wm_finite_max(m, x[base + j]);
    }
    var s = 0.0;
    for (var j = 0u; j < c; j++) {
        s = s + exp(x[base + j] - m);
    }
    if dims.op == 1u {
        let lse = m + wm_log(s);
        for (var j = 0u; j < c; j++) {
            y[base + j] = x[base + j] - lse;
        }
    } else {
        for (var j = 0u; j < c; j++) {
            y[base + j] = exp(x[base + j] - m) / s;
        }
    }
}

// ENTRY softmax_backward
@compute @workgroup_size(WG)
fn softmax_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let r = index(wid, lid);
    if r >= dims.rows {
        return;
    }
    let c = dims.width;
    let base = r * c;
    var s = 0.0;
    if dims.op == 1u {
        for (var j = 0u; j < c; j++) {
            s = s + gy[base + j];
        }
        for (var j = 0u; j < c; j++) {
            gx[base + j] = gy[base + j] - exp(y[base + j]) * s;
        }
    } else {
        for (var j = 0u; j < c; j++) {
            s = s + gy[base + j] * y[base + j];
        }
        for (var j = 0u; j < c; j++) {
            gx[base + j] = y[base + j] * (gy[base + j] - s);
        }
    }
}

// ENTRY layernorm_stats (included with every layernorm_ entry)
fn row_stats(base: u32) -> vec2<f32> {
    let c = dims.width;
    var s = 0.0;
    for (var j = 0u; j < c; j++) {
        s = s + x[base + j];
    }
    let mean = s / f32(c);
    var v = 0.0;
    for (var j = 0u; j < c; j++) {
        let d = x[base + j] - mean;
        v = v + d * d;
    }
    return vec2<f32>(mean, 1.0 / wm_sqrt(v / f32(c) + dims.eps));
}

// ENTRY layernorm_forward
@compute @workgroup_size(WG)
fn layernorm_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let r = index(wid, lid);
    if r >= dims.rows {
        return;
    }
    let base = r * dims.width;
    let st = row_stats(base);
    for (var j = 0u; j < dims.width; j++) {
        var v = (x[base + j] - st.x) * st.y;
        if dims.op != 0u {
            v = v * gamma[j] + beta[j];
        }
        y[base + j] = v;
    }
}

// ENTRY layernorm_backward
@compute @workgroup_size(WG)
fn layernorm_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let r = index(wid, lid);
    if r >= dims.rows {
        return;
    }
    let c = dims.width;
    let base = r * c;
    let st = row_stats(base);
    var a = 0.0;
    var b = 0.0;
    for (var j = 0u; j < c; j++) {
        let gh = select(gy[base + j], gy[base + j] * gamma[j], dims.op != 0u);
        a = a + gh;
        b = b + gh * ((x[base + j] - st.x) * st.y);
    }
    a = a / f32(c);
    b = b / f32(c);
    for (var j = 0u; j < c; j++) {
        let gh = select(gy[base + j], gy[base + j] * gamma[j], dims.op != 0u);
        let xh = (x[base + j] - st.x) * st.y;
        gx[base + j] = st.y * (gh - a - xh * b);
    }
}

// ENTRY layernorm_gxhat
@compute @workgroup_size(WG)
fn layernorm_gxhat(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let r = index(wid, lid);
    if r >= dims.rows {
        return;
    }
    let base = r * dims.width;
    let st = row_stats(base);
    for (var j = 0u; j < dims.width; j++) {
        t[base + j] = gy[base + j] * ((x[base + j] - st.x) * st.y);
    }
}

// ENTRY prelu_forward
@compute @workgroup_size(WG)
fn prelu_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = index(wid, lid);
    if i >= dims.rows * dims.width {
        return;
    }
    let s = a[select(i % dims.width, 0u, dims.op == 0u)];
    let v = x[i];
    y[i] = select(s * v, v, v > 0.0);
}

// ENTRY prelu_backward
@compute @workgroup_size(WG)
fn prelu_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = index(wid, lid);
    if i >= dims.rows * dims.width {
        return;
    }
    let s = a[select(i % dims.width, 0u, dims.op == 0u)];
    gx[i] = select(s * gy[i], gy[i], x[i] > 0.0);
}

// ENTRY prelu_gslope
@compute @workgroup_size(WG)
fn prelu_gslope(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = index(wid, lid);
    if i >= dims.rows * dims.width {
        return;
    }
    t[i] = select(x[i] * gy[i], 0.0, x[i] > 0.0);
}

// ENTRY mul
// t = x·gy elementwise: Dropout's forward (x · its scaled mask) and backward (gy · the mask).
@compute @workgroup_size(WG)
fn mul(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = index(wid, lid);
    if i >= dims.rows * dims.width {
        return;
    }
    t[i] = x[i] * gy[i];
}
