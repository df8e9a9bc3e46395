// BatchNorm1d in train mode (batchnorm.rs), as the CPU's train/norm_grad.rs and PyTorch: each
// column (feature) normalised by the batch's mean and biased variance, x̂ = (x − μ)·r with
// r = 1/√(var + eps), y = x̂·γ + β; running statistics (1 − m)·running + m·stat with the unbiased
// variance (n/(n − 1)), updated after the loss (skipped with the update when the loss is not
// finite, or on a gradients-only step). Backward, with S = Σ g and T = Σ g·x̂ per column
// (which are dβ and dγ): gx = r·γ·(g − S/n − x̂·T/n). Column reductions take one workgroup per
// column, each invocation every WG-th row in order, then a fixed tree: no atomics. A kernel binds
// at most four storage buffers, hence the passes: stats, normalize, affine, sums, param_grads,
// coef, dx, running. Sections as row_grad.wgsl's (a line `// ENTRY` and its name).

const WG: u32 = 64u;

// Column sums are compensated (each a (hi, lo) pair through TwoSum): PyTorch's CPU batch norm
// accumulates its statistics in double, and an f32 sum of a column moved a trained bias by 7
// times PyTorch's own float32 drift on the BatchNorm fixture.
var<workgroup> part: array<vec4<f32>, 64>;

// a + b as (hi, lo) exactly (Knuth's TwoSum; no fused or reassociated arithmetic in WGSL).
fn two_sum(a: f32, b: f32) -> vec2<f32> {
    let s = a + b;
    let bb = s - a;
    return vec2<f32>(s, (a - (s - bb)) + (b - bb));
}

// (hi, lo) + v.
fn acc(p: vec2<f32>, v: f32) -> vec2<f32> {
    let t = two_sum(p.x, v);
    return vec2<f32>(t.x, t.y + p.y);
}

// (hi, lo) + (hi, lo).
fn add2(p: vec2<f32>, q: vec2<f32>) -> vec2<f32> {
    let t = two_sum(p.x, q.x);
    return vec2<f32>(t.x, t.y + p.y + q.y);
}

fn elem(wid: vec3<u32>, lid: vec3<u32>) -> u32 {
    return (wid.y * dims.groups_x + wid.x) * WG + lid.x;
}

fn column(wid: vec3<u32>) -> u32 {
    return wid.y * dims.groups_x + wid.x;
}

// The fixed-order tree over `part` (two compensated sums per slot); every invocation of the
// workgroup calls it. Returns the two sums, each rounded once.
fn tree(lid: u32) -> vec2<f32> {
    workgroupBarrier();
    for (var w = WG / 2u; w > 0u; w = w / 2u) {
        if lid < w {
            let a = part[lid];
            let b = part[lid + w];
            part[lid] = vec4<f32>(add2(a.xy, b.xy), add2(a.zw, b.zw));
        }
        workgroupBarrier();
    }
    let r = part[0];
    return vec2<f32>(r.x + r.y, r.z + r.w);
}

// ENTRY stats
@compute @workgroup_size(WG)
fn stats(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let c = column(wid);
    let cols = dims.cols;
    let n = f32(dims.rows);
    var s = vec2<f32>(0.0, 0.0);
    if c < cols {
        for (var r = lid.x; r < dims.rows; r += WG) {
            s = acc(s, x[r * cols + c]);
        }
    }
    part[lid.x] = vec4<f32>(s, 0.0, 0.0);
    let mean = tree(lid.x).x / n;
    workgroupBarrier();
    var v = vec2<f32>(0.0, 0.0);
    if c < cols {
        for (var r = lid.x; r < dims.rows; r += WG) {
            let d = x[r * cols + c] - mean;
            v = acc(v, d * d);
        }
    }
    part[lid.x] = vec4<f32>(v, 0.0, 0.0);
    let ss = tree(lid.x).x;
    if lid.x == 0u && c < cols {
        st[c] = mean;
        st[cols + c] = 1.0 / wm_sqrt(ss / n + dims.eps);
        st[2u * cols + c] = ss / (n - 1.0);
    }
}

// ENTRY normalize
@compute @workgroup_size(WG)
fn normalize(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = elem(wid, lid);
    if i >= dims.rows * dims.cols {
        return;
    }
    let c = i % dims.cols;
    xhat[i] = (x[i] - st[c]) * st[dims.cols + c];
}

// ENTRY affine
@compute @workgroup_size(WG)
fn affine(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = elem(wid, lid);
    if i >= dims.rows * dims.cols {
        return;
    }
    let c = i % dims.cols;
    y[i] = xhat[i] * gamma[c] + beta[c];
}

// ENTRY sums
@compute @workgroup_size(WG)
fn sums(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let c = column(wid);
    let cols = dims.cols;
    var sg = vec2<f32>(0.0, 0.0);
    var sgx = vec2<f32>(0.0, 0.0);
    if c < cols {
        for (var r = lid.x; r < dims.rows; r += WG) {
            let gv = g[r * cols + c];
            sg = acc(sg, gv);
            sgx = acc(sgx, gv * xhat[r * cols + c]);
        }
    }
    part[lid.x] = vec4<f32>(sg, sgx);
    let total = tree(lid.x);
    if lid.x == 0u && c < cols {
        sum[c] = total.x;
        sum[cols + c] = total.y;
    }
}

// ENTRY param_grads
@compute @workgroup_size(WG)
fn param_grads(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let c = elem(wid, lid);
    if c >= dims.cols {
        return;
    }
    gbeta[c] = sum[c];
    ggamma[c] = sum[dims.cols + c];
}

// ENTRY coef
@compute @workgroup_size(WG)
fn coef(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let c = elem(wid, lid);
    let cols = dims.cols;
    if c >= cols {
        return;
    }
    let n = f32(dims.rows);
    let g0 = select(1.0, gamma[c], dims.affine != 0u);
    k[c] = st[cols + c] * g0;
    k[cols + c] = sum[c] / n;
    k[2u * cols + c] = sum[cols + c] / n;
}

// ENTRY dx
@compute @workgroup_size(WG)
fn dx(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = elem(wid, lid);
    let cols = dims.cols;
    if i >= dims.rows * cols {
        return;
    }
    let c = i % cols;
    gx[i] = k[c] * (g[i] - k[cols + c] - xhat[i] * k[2u * cols + c]);
}

// ENTRY running
@compute @workgroup_size(WG)
fn running(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let c = elem(wid, lid);
    let cols = dims.cols;
    if c >= cols || step_skip() {
        return;
    }
    let m = dims.momentum;
    rmean[c] = (1.0 - m) * rmean[c] + m * st[c];
    rvar[c] = (1.0 - m) * rvar[c] + m * st[2u * cols + c];
}
