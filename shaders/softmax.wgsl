// Row-wise softmax over a [rows, n4] vec4 matrix, in place, with PyTorch's CPU algorithm:
// m = max (NaN-propagating), e = exp(x − m), y = e · (1/Σe). One workgroup per row; the max and
// the sum are tree reductions in workgroup memory. Rows with +inf or NaN, or all −inf, come out
// all NaN, as in PyTorch. Padding lanes (at or past n_out) are excluded and written 0.

struct Dims {
    rows: u32,
    n4: u32,
    n_out: u32,
    groups_x: u32, // workgroups along x; the row grid is folded into 2-D past 65,535 rows
}

override WG: u32 = 64u;

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;

var<workgroup> red: array<f32, WG>;

fn is_nan_f32(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u;
}

fn nan_max(a: f32, b: f32) -> f32 {
    if is_nan_f32(a) || is_nan_f32(b) {
        return bitcast<f32>(0x7fc00000u);
    }
    return max(a, b);
}

@compute @workgroup_size(WG)
fn softmax(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    // Uniform control flow: every invocation of the workgroup reaches each barrier, so the row
    // check only guards memory accesses.
    let row = wid.y * dims.groups_x + wid.x;
    let live = row < dims.rows;
    let base = row * dims.n4 * 4u;
    let t = lid.x;

    var m = bitcast<f32>(0xff800000u); // -inf
    if live {
        for (var c = t; c < dims.n_out; c = c + WG) {
            m = nan_max(m, y[base + c]);
        }
    }
    red[t] = m;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s = s / 2u) {
        if t < s {
            red[t] = nan_max(red[t], red[t + s]);
        }
        workgroupBarrier();
    }
    m = red[0];
    workgroupBarrier();

    var sum = 0.0;
    if live {
        for (var c = t; c < dims.n_out; c = c + WG) {
            sum = sum + exp(y[base + c] - m);
        }
    }
    red[t] = sum;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s = s / 2u) {
        if t < s {
            red[t] = red[t] + red[t + s];
        }
        workgroupBarrier();
    }
    let inv = 1.0 / red[0];

    if live {
        for (var c = t; c < dims.n4 * 4u; c = c + WG) {
            if c < dims.n_out {
                y[base + c] = exp(y[base + c] - m) * inv;
            } else {
                y[base + c] = 0.0;
            }
        }
    }
}
