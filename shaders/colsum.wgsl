// Column sums (colsum.rs): out[c] = Σ_r x[r, c], a Linear bias's gradient (the column sums of
// dZ). One workgroup per column: each invocation sums every WG-th row in order, then a tree
// over workgroup memory in a fixed order. No atomics: a run repeats bit for bit.

const WG: u32 = 64u;

var<workgroup> part: array<f32, 64>;

@compute @workgroup_size(WG)
fn colsum(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let col = wid.y * dims.groups_x + wid.x;
    var s = 0.0;
    if col < dims.cols {
        for (var r = lid.x; r < dims.rows; r += WG) {
            s = s + x[r * dims.cols + col];
        }
    }
    part[lid.x] = s;
    workgroupBarrier();
    for (var w = WG / 2u; w > 0u; w = w / 2u) {
        if lid.x < w {
            part[lid.x] = part[lid.x] + part[lid.x + w];
        }
        workgroupBarrier();
    }
    if lid.x == 0u && col < dims.cols {
        out[col] = part[0];
    }
}
