// The windowed Linear kernel (LinearKernel::Windowed, windowed.rs): y = epilogue(x·Wᵀ + b), the
// bias and the step's elementwise epilogue fused into the store step, and optionally a row
// softmax / log-softmax (ROW_OP). The fast kernel on software adapters.
//
// Layouts (all padded with zeros, so the inner loop needs no bounds checks):
//   x  [rows, k4]          vec4 per 4 input features (row stride k4 = ceil(in/4))
//   wt read-only storage texture in panels: the texels of 8 consecutive output
//          vec4s (one SIMD batch of invocations on llvmpipe), step by step through k, stored
//          one after another (src/gpu/pack.rs, PanelLayout): step s, sub-row j of output texel c
//          sits at x = (s mod S)*32 + 8j + c mod 8, y = (c / 8)*panel_rows + s / S, S = tex_w / 32
//   b  [wt_n4]             the bias, padded
//   y  [rows, n4]          vec4 per 4 outputs (row stride n4 = ceil(out/4)); padding written 0
//
// Why this shape (measured on lavapipe, see docs/KERNELS.md): llvmpipe runs invocations as
// SIMD lanes of 8, and any load whose address it cannot prove equal in every lane is emitted lane
// by lane (8 scalar loads and as many shuffles per component); texel fetches load a whole texel
// per lane. So:
// - all invocations of a workgroup share its rows of x. How the rows reach them is the file
//   prepended to this one: windowed_subgroup.wgsl where the device has subgroups (each lane loads
//   one row, subgroupBroadcast hands it to the others: one gather instead of eight; x is the
//   whole activation buffer, one dispatch per layer), else windowed_no_subgroup.wgsl (every
//   invocation loads every row at the same address, on GPUs one constant-cache broadcast,
//   through a 64 KiB uniform window of whole rows that the host binds at a dynamic offset,
//   one dispatch per window).
// - the weight is fetched from a texture (on GPUs: the texture cache; consecutive invocations
//   fetch consecutive texels), laid out so that the k loop of each batch of 8 invocations reads
//   one contiguous stream the CPU prefetches (a row-major [in, out] texture put each step a
//   texture row further on, a new page each time, and llvmpipe stalled on those misses);
// - each invocation computes a ROWS-row × 4-column block (ROWS ≤ 16; invocation i takes output
//   columns 4i..4i+3): per step of 4 in k, ROWS rows of x, 4 texel fetches, 16·ROWS FMAs.
// There is no early return, so every invocation reaches every subgroup operation; rows and
// columns past the end are clamped for loads and skipped for stores.

// Rows per invocation, at most 16: the host picks 1, 4 or 8 for small batches and narrow
// windows. The `if ROWS > i` tests are resolved when the pipeline compiles.
override ROWS: u32 = 16u;
override WG: u32 = 64u;
// A row operation in the store step (row_op, from windowed_subgroup.wgsl): 0 none, 1 softmax,
// 2 log-softmax. The host sets it only where the device has subgroups and WG = 8, so one
// subgroup holds a whole row (at most 32 outputs).
override ROW_OP: u32 = 0u;
override USE_BIAS: bool = true;

// x is the whole activation buffer with subgroups, else a 64 KiB uniform window, with x_hi as a
// second window for inputs of 1,025 to
// 8,192 features, where one window holds fewer than 16 rows: the dispatch then covers two
// windows, rows below HALF from x and the rest from x_hi.
// Rows per window when windows are paired (the dispatch then has a single row block); the
// default, no pairing, makes every `hi` test false when the pipeline compiles.
override HALF: u32 = 0xffffffffu;
// wt, the weight texture, is rgba32float or, for WeightFormat::F16, rgba16float (texel loads
// convert to f32, so the code is the same). A read-only storage texture rather than a sampled
// one: llvmpipe's image loads skip the per-lane mip-level lookups of texel fetches.

// Offset of row `r` of the dispatch in its window, clamped to the last valid row.
fn x_row_offset(r: u32, row0: u32) -> u32 {
    let row = min(row0 + r, dims.rows - 1u);
    let local = select(row, row - HALF, HALF != 0xffffffffu && row >= HALF);
    return local * dims.k4;
}

// a + v·[w0 w1 w2 w3]: one input vec4 of one row against four weight texels.
fn acc(a: vec4<f32>, v: vec4<f32>, w0: vec4<f32>, w1: vec4<f32>, w2: vec4<f32>, w3: vec4<f32>) -> vec4<f32> {
    return fma(vec4<f32>(v.x), w0, fma(vec4<f32>(v.y), w1, fma(vec4<f32>(v.z), w2, fma(vec4<f32>(v.w), w3, a))));
}

// Stores the block's row `row`: every invocation calls it (uniform control flow, for the
// subgroup operations of the softmax), the bounds test only guards the write.
fn store(row: u32, col: u32, v: vec4<f32>) {
    var r = v;
    if ROW_OP != 0u {
        r = row_op(v, col);
    }
    if row < dims.rows && col < dims.n4 {
        y[(dims.row_base + row) * dims.n4 + col] = epilogue(r, col, dims.n_out);
    }
}

@compute @workgroup_size(WG, 1, 1)
fn windowed(ids: Ids) {
    let col = ids.wid.x * WG + ids.lid.x;
    let wc = min(col, dims.wt_n4 - 1u);
    let row0 = ids.wid.y * ROWS;
    var xs = x_source(ids, row0);
    var a0 = vec4<f32>(0.0);
    var a1 = vec4<f32>(0.0);
    var a2 = vec4<f32>(0.0);
    var a3 = vec4<f32>(0.0);
    var a4 = vec4<f32>(0.0);
    var a5 = vec4<f32>(0.0);
    var a6 = vec4<f32>(0.0);
    var a7 = vec4<f32>(0.0);
    var a8 = vec4<f32>(0.0);
    var a9 = vec4<f32>(0.0);
    var a10 = vec4<f32>(0.0);
    var a11 = vec4<f32>(0.0);
    var a12 = vec4<f32>(0.0);
    var a13 = vec4<f32>(0.0);
    var a14 = vec4<f32>(0.0);
    var a15 = vec4<f32>(0.0);

    // This invocation's texels within a step, and its panel's first row; (tx, ty) walk the
    // steps with the same values in every invocation.
    let lane = wc % 8u;
    let panel_y = (wc / 8u) * dims.panel_rows;
    var tx = 0u;
    var ty = 0u;
    for (var k = 0u; k < dims.k4; k = k + 1u) {
        let py = panel_y + ty;
        let w0 = textureLoad(wt, vec2<u32>(tx + lane, py));
        let w1 = textureLoad(wt, vec2<u32>(tx + lane + 8u, py));
        let w2 = textureLoad(wt, vec2<u32>(tx + lane + 16u, py));
        let w3 = textureLoad(wt, vec2<u32>(tx + lane + 24u, py));
        tx = tx + 32u;
        if tx == dims.tex_w {
            tx = 0u;
            ty = ty + 1u;
        }
        let v = x_step(&xs, k);
        a0 = acc(a0, v[0], w0, w1, w2, w3);
        if ROWS > 1u { a1 = acc(a1, v[1], w0, w1, w2, w3); }
        if ROWS > 2u { a2 = acc(a2, v[2], w0, w1, w2, w3); }
        if ROWS > 3u { a3 = acc(a3, v[3], w0, w1, w2, w3); }
        if ROWS > 4u { a4 = acc(a4, v[4], w0, w1, w2, w3); }
        if ROWS > 5u { a5 = acc(a5, v[5], w0, w1, w2, w3); }
        if ROWS > 6u { a6 = acc(a6, v[6], w0, w1, w2, w3); }
        if ROWS > 7u { a7 = acc(a7, v[7], w0, w1, w2, w3); }
        if ROWS > 8u { a8 = acc(a8, v[8], w0, w1, w2, w3); }
        if ROWS > 9u { a9 = acc(a9, v[9], w0, w1, w2, w3); }
        if ROWS > 10u { a10 = acc(a10, v[10], w0, w1, w2, w3); }
        if ROWS > 11u { a11 = acc(a11, v[11], w0, w1, w2, w3); }
        if ROWS > 12u { a12 = acc(a12, v[12], w0, w1, w2, w3); }
        if ROWS > 13u { a13 = acc(a13, v[13], w0, w1, w2, w3); }
        if ROWS > 14u { a14 = acc(a14, v[14], w0, w1, w2, w3); }
        if ROWS > 15u { a15 = acc(a15, v[15], w0, w1, w2, w3); }
    }

    var bias = vec4<f32>(0.0);
    if USE_BIAS {
        bias = b[wc];
    }
    store(row0 + 0u, col, a0 + bias);
    if ROWS > 1u { store(row0 + 1u, col, a1 + bias); }
    if ROWS > 2u { store(row0 + 2u, col, a2 + bias); }
    if ROWS > 3u { store(row0 + 3u, col, a3 + bias); }
    if ROWS > 4u { store(row0 + 4u, col, a4 + bias); }
    if ROWS > 5u { store(row0 + 5u, col, a5 + bias); }
    if ROWS > 6u { store(row0 + 6u, col, a6 + bias); }
    if ROWS > 7u { store(row0 + 7u, col, a7 + bias); }
    if ROWS > 8u { store(row0 + 8u, col, a8 + bias); }
    if ROWS > 9u { store(row0 + 9u, col, a9 + bias); }
    if ROWS > 10u { store(row0 + 10u, col, a10 + bias); }
    if ROWS > 11u { store(row0 + 11u, col, a11 + bias); }
    if ROWS > 12u { store(row0 + 12u, col, a12 + bias); }
    if ROWS > 13u { store(row0 + 13u, col, a13 + bias); }
    if ROWS > 14u { store(row0 + 14u, col, a14 + bias); }
    if ROWS > 15u { store(row0 + 15u, col, a15 + bias); }
}
