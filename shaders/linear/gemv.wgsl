// The GEMV Linear kernel (LinearKernel::Gemv, gemv.rs), for small batches on hardware GPUs (a
// GEMV, batched up to 4 rows): y = epilogue(x·Wᵀ + b). Same layouts as blocked.wgsl.
//
// With one row there are only `out` dot products, far too few to fill a large GPU when each is
// one invocation's loop over k (that is what the blocked and windowed kernels do). Here a
// workgroup of COLS4 × SLICES invocations owns COLS4 vec4 columns and splits k among SLICES
// slices: slice s takes the k vec4s s, s + SLICES, … and the slices' partial sums are added in
// workgroup memory at the end. Each invocation keeps 4 rows (rows past the end re-read the last
// row and are not stored), so a weight vec4 loaded once feeds 16 FMAs. Across a warp the weight
// loads are COLS4 consecutive vec4s of a few wt rows: coalesced.
//
// Bounds, which make this module safe to build without wgpu's runtime checks (see kernels/mod.rs):
// x rows are clamped below `rows` and k vec4s stay below k4; wt rows stay below 4·k4 and columns
// below the grid's width, both inside the packed weight (rows padded to 16, columns to 128 ≥ the
// grid's COLS4-column blocks); workgroup indices come from local ids; y and b only below n4.

override USE_BIAS: bool = true;
override COLS4: u32 = 8u;
override SLICES: u32 = 32u;


// Partial sums of one row: [slice][column].
var<workgroup> partial: array<vec4<f32>, COLS4 * SLICES>;

// The product of x's 4 values at one k vec4 with the 4 wt rows under them.
fn dot4(v: vec4<f32>, w0: vec4<f32>, w1: vec4<f32>, w2: vec4<f32>, w3: vec4<f32>,
        acc: vec4<f32>) -> vec4<f32> {
    return fma(vec4<f32>(v.w), w3, fma(vec4<f32>(v.z), w2,
        fma(vec4<f32>(v.y), w1, fma(vec4<f32>(v.x), w0, acc))));
}

// Adds the slices' partial sums of one row; invocations of slice 0 get the total.
fn reduce(li: u32, c: u32, s: u32, v: vec4<f32>) -> vec4<f32> {
    workgroupBarrier(); // the previous row's sums have been read
    partial[li] = v;
    workgroupBarrier();
    var total = v;
    if s == 0u {
        for (var j = 1u; j < SLICES; j = j + 1u) {
            total = total + partial[j * COLS4 + c];
        }
    }
    return total;
}

@compute @workgroup_size(COLS4 * SLICES, 1, 1)
fn gemv(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let c = li % COLS4;
    let s = li / COLS4;
    let col = wid.x * COLS4 + c;
    let row0 = wid.y * 4u;
    let last = dims.rows - 1u;
    let k4 = dims.k4;
    let wn = dims.wt_n4;
    let x0 = min(row0, last) * k4;
    let x1 = min(row0 + 1u, last) * k4;
    let x2 = min(row0 + 2u, last) * k4;
    let x3 = min(row0 + 3u, last) * k4;

    var a0 = vec4<f32>(0.0);
    var a1 = vec4<f32>(0.0);
    var a2 = vec4<f32>(0.0);
    var a3 = vec4<f32>(0.0);
    for (var k = s; k < k4; k = k + SLICES) {
        let w = 4u * k * wn + col;
        let w0 = wt[w];
        let w1 = wt[w + wn];
        let w2 = wt[w + 2u * wn];
        let w3 = wt[w + 3u * wn];
        a0 = dot4(x[x0 + k], w0, w1, w2, w3, a0);
        a1 = dot4(x[x1 + k], w0, w1, w2, w3, a1);
        a2 = dot4(x[x2 + k], w0, w1, w2, w3, a2);
        a3 = dot4(x[x3 + k], w0, w1, w2, w3, a3);
    }

    // Every invocation takes part in every barrier; only slice 0 stores.
    let t0 = reduce(li, c, s, a0);
    let t1 = reduce(li, c, s, a1);
    let t2 = reduce(li, c, s, a2);
    let t3 = reduce(li, c, s, a3);
    if s != 0u || col >= dims.n4 {
        return;
    }
    var bias = vec4<f32>(0.0);
    if USE_BIAS {
        bias = b[col];
    }
    let n4 = dims.n4;
    y[row0 * n4 + col] = epilogue(t0 + bias, col, dims.n_out);
    if row0 + 1u < dims.rows { y[(row0 + 1u) * n4 + col] = epilogue(t1 + bias, col, dims.n_out); }
    if row0 + 2u < dims.rows { y[(row0 + 2u) * n4 + col] = epilogue(t2 + bias, col, dims.n_out); }
    if row0 + 3u < dims.rows { y[(row0 + 3u) * n4 + col] = epilogue(t3 + bias, col, dims.n_out); }
}
