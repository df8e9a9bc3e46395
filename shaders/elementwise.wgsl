// Standalone elementwise kernels on a [rows, n4] vec4 matrix: the bias add and the activation,
// each its own pass. The forward pass fuses both into linear.wgsl; these exist so each step can be
// run and checked on its own (and as the unfused path). activation.wgsl is prepended on the host.

struct Dims {
    rows: u32,
    n4: u32,      // vec4s per row
    n_out: u32,   // real width
    groups_x: u32, // workgroups along x in the dispatch (the grid is folded into 2-D)
}

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> b: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> y: array<vec4<f32>>;

const WG: u32 = 64u;

// The linear vec4 index of this invocation, rebuilt from the folded 2-D grid.
fn flat_index(wid: vec3<u32>, lid: vec3<u32>) -> u32 {
    return (wid.y * dims.groups_x + wid.x) * WG + lid.x;
}

fn keep_padding_zero(v: vec4<f32>, i: u32) -> vec4<f32> {
    let c = (i % dims.n4) * 4u;
    if c + 4u > dims.n_out {
        let lane = vec4<u32>(c, c + 1u, c + 2u, c + 3u);
        return select(vec4<f32>(0.0), v, lane < vec4<u32>(dims.n_out));
    }
    return v;
}

@compute @workgroup_size(WG)
fn bias_add(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat_index(wid, lid);
    if i >= dims.rows * dims.n4 {
        return;
    }
    y[i] = keep_padding_zero(y[i] + b[i % dims.n4], i);
}

@compute @workgroup_size(WG)
fn activation(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat_index(wid, lid);
    if i >= dims.rows * dims.n4 {
        return;
    }
    let v = y[i];
    y[i] = keep_padding_zero(vec4<f32>(activate(v.x), activate(v.y), activate(v.z), activate(v.w)), i);
}
