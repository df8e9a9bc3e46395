// What windowed.wgsl does with subgroup operations, on devices that have them (subgroups of at
// least 8): share x, and fuse a row softmax or log-softmax.
//
// x source: lane l of each subgroup loads rows l and l + 8 of the workgroup's block, and
// subgroupBroadcast hands each row to every lane. On llvmpipe a subgroup is one 8-wide SIMD
// batch and the broadcast is one register permute, so a step costs 2 gathered loads instead of
// 16 (x addresses that are uniform only by divergence analysis are still loaded lane by lane
// there; measured in docs/KERNELS.md). Every invocation runs every step (windowed.wgsl has no
// early return), so lanes 0..7 are active at each broadcast.
//
// As each lane loads its own rows, x need not be a uniform window: the host binds the whole
// activation buffer and runs each layer as one dispatch (per-lane storage loads cost llvmpipe
// no more than per-lane uniform ones, and each window was a dispatch). No pairing, so HALF
// keeps its default.

struct Ids {
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(subgroup_invocation_id) lane: u32,
}

// This lane's two rows (l and l + 8): their offsets in x.
// With ROWS = 1 (a GEMV) every lane reads row 0 instead, 8 steps ahead: lane l holds step
// k + l of the current group of 8 in `ahead`, and each step is shuffled out of it, so one
// gathered load serves 8 steps instead of 1.
struct XSource {
    lo: u32,
    hi: u32,
    lane: u32,
    ahead: vec4<f32>,
}

fn x_source(ids: Ids, row0: u32) -> XSource {
    let lane = ids.lane % 8u;
    let l = select(lane, 0u, ROWS == 1u);
    return XSource(x_row_offset(l, row0), x_row_offset(l + 8u, row0), lane, vec4<f32>(0.0));
}

// Step `k` of rows 0..15 (rows 8..15 only when ROWS > 8).
fn x_step(xs: ptr<function, XSource>, k: u32) -> array<vec4<f32>, 16> {
    if ROWS == 1u {
        let j = k & 7u;
        if j == 0u {
            // Clamped at the row's end; the steps past it are never shuffled out.
            (*xs).ahead = x[(*xs).lo + min(k + (*xs).lane, dims.k4 - 1u)];
        }
        var one: array<vec4<f32>, 16>;
        one[0] = subgroupShuffle((*xs).ahead, j);
        return one;
    }
    let a = x[(*xs).lo + k];
    var b = vec4<f32>(0.0);
    if ROWS > 8u {
        b = x[(*xs).hi + k];
    }
    return array<vec4<f32>, 16>(
        subgroupBroadcast(a, 0u), subgroupBroadcast(a, 1u), subgroupBroadcast(a, 2u),
        subgroupBroadcast(a, 3u), subgroupBroadcast(a, 4u), subgroupBroadcast(a, 5u),
        subgroupBroadcast(a, 6u), subgroupBroadcast(a, 7u),
        subgroupBroadcast(b, 0u), subgroupBroadcast(b, 1u), subgroupBroadcast(b, 2u),
        subgroupBroadcast(b, 3u), subgroupBroadcast(b, 4u), subgroupBroadcast(b, 5u),
        subgroupBroadcast(b, 6u), subgroupBroadcast(b, 7u));
}

// Softmax (ROW_OP 1) or log-softmax (ROW_OP 2) of one row, whose vec4 columns the invocations
// of one subgroup hold (`col` is this invocation's): row.wgsl's algorithm and its PyTorch edge
// cases (a NaN, a +inf, or all −inf give an all-NaN row), with subgroup reductions instead of
// workgroup memory. Columns at or past n_out are left out (the epilogue zeroes them).
fn row_op(v: vec4<f32>, col: u32) -> vec4<f32> {
    let c = col * 4u;
    let valid = vec4<u32>(c, c + 1u, c + 2u, c + 3u) < vec4<u32>(dims.n_out);
    let ninf = -wm_inf();
    let m4 = select(vec4<f32>(ninf), v, valid);
    // subgroupMax's NaN handling is the implementation's choice: NaN is tracked separately.
    let nan = subgroupAny(any(valid & wm_is_nan4(v)));
    var m = subgroupMax(max(max(m4.x, m4.y), max(m4.z, m4.w)));
    if nan {
        m = wm_nan();
    }
    let e = select(vec4<f32>(0.0), exp(v - m), valid);
    let sum = subgroupAdd(e.x + e.y + e.z + e.w);
    if ROW_OP == 2u {
        return (v - m) - wm_log(sum);
    }
    return e * (1.0 / sum);
}
