// What windowed.wgsl does on devices without subgroup operations (the twin of
// windowed_subgroup.wgsl). x source: every invocation loads
// every row at the same, workgroup-uniform address (on GPUs a constant-cache broadcast; on
// llvmpipe eight scalar loads per component, which windowed_subgroup.wgsl avoids).

// x and x_hi are 64 KiB windows of rows at dynamic offsets, one dispatch each: a
// uniform-address load is one load and a broadcast on GPUs.

// Element `k` of the row at `row_offset` in the x window, or in x_hi when `hi` (rows at or past
// HALF of a paired dispatch).
fn x_at(hi: bool, row_offset: u32, k: u32) -> vec4<f32> {
    if hi {
        return x_hi[row_offset + k];
    }
    return x[row_offset + k];
}

// Whether row `r` of the dispatch lives in the second window.
fn x_in_hi(r: u32) -> bool {
    return HALF != 0xffffffffu && r >= HALF;
}

struct Ids {
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
}

// Each row's offset in its window.
struct XSource {
    offsets: array<u32, 16>,
}

fn x_source(ids: Ids, row0: u32) -> XSource {
    return XSource(array<u32, 16>(
        x_row_offset(0u, row0), x_row_offset(1u, row0), x_row_offset(2u, row0), x_row_offset(3u, row0),
        x_row_offset(4u, row0), x_row_offset(5u, row0), x_row_offset(6u, row0), x_row_offset(7u, row0),
        x_row_offset(8u, row0), x_row_offset(9u, row0), x_row_offset(10u, row0), x_row_offset(11u, row0),
        x_row_offset(12u, row0), x_row_offset(13u, row0), x_row_offset(14u, row0), x_row_offset(15u, row0)));
}

// Step `k` of rows 0..ROWS-1 (the rest stay zero and unused).
fn x_step(xs: ptr<function, XSource>, k: u32) -> array<vec4<f32>, 16> {
    let s = *xs;
    var v: array<vec4<f32>, 16>;
    v[0] = x_at(x_in_hi(0u), s.offsets[0], k);
    if ROWS > 1u { v[1] = x_at(x_in_hi(1u), s.offsets[1], k); }
    if ROWS > 2u { v[2] = x_at(x_in_hi(2u), s.offsets[2], k); }
    if ROWS > 3u { v[3] = x_at(x_in_hi(3u), s.offsets[3], k); }
    if ROWS > 4u { v[4] = x_at(x_in_hi(4u), s.offsets[4], k); }
    if ROWS > 5u { v[5] = x_at(x_in_hi(5u), s.offsets[5], k); }
    if ROWS > 6u { v[6] = x_at(x_in_hi(6u), s.offsets[6], k); }
    if ROWS > 7u { v[7] = x_at(x_in_hi(7u), s.offsets[7], k); }
    if ROWS > 8u { v[8] = x_at(x_in_hi(8u), s.offsets[8], k); }
    if ROWS > 9u { v[9] = x_at(x_in_hi(9u), s.offsets[9], k); }
    if ROWS > 10u { v[10] = x_at(x_in_hi(10u), s.offsets[10], k); }
    if ROWS > 11u { v[11] = x_at(x_in_hi(11u), s.offsets[11], k); }
    if ROWS > 12u { v[12] = x_at(x_in_hi(12u), s.offsets[12], k); }
    if ROWS > 13u { v[13] = x_at(x_in_hi(13u), s.offsets[13], k); }
    if ROWS > 14u { v[14] = x_at(x_in_hi(14u), s.offsets[14], k); }
    if ROWS > 15u { v[15] = x_at(x_in_hi(15u), s.offsets[15], k); }
    return v;
}

// Without subgroups the host never sets ROW_OP (a separate row pass runs instead); this stands
// in for windowed_subgroup.wgsl's version so the module compiles.
fn row_op(v: vec4<f32>, col: u32) -> vec4<f32> {
    return v;
}
