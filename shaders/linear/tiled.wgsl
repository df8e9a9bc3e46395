// The tiled Linear kernel (LinearKernel::Tiled64 / Tiled128, tiled.rs), for hardware GPUs:
// y = epilogue(x·Wᵀ + b) with both operands staged through workgroup memory. Same layouts as
// blocked.wgsl.
//
// A workgroup of TILE × TILE invocations computes an output tile of 8·TILE rows × 8·TILE columns
// and walks k in steps of TILE. Each step it copies a [8·TILE, TILE] slab of x (transposed, so
// rows are contiguous per k) and a [TILE, 8·TILE] slab of wt into workgroup memory, two vec4
// loads of each per invocation, then every invocation multiplies 8 rows by 8 columns out of
// workgroup memory: per k, 4 vec4 loads for 64 FMAs. The next step's global loads are issued
// before the current step's arithmetic, so their latency hides behind it.
//
// An invocation's rows are 4·ty..4·ty+3 and 4·TILE+4·ty..+3 of the tile, its columns the vec4s
// tx and TILE+tx: within a warp the x reads hit at most two addresses (broadcast) and the wt
// reads are consecutive vec4s, so workgroup memory serves them without bank conflicts.
//
// Bounds, which make this module safe to build without wgpu's runtime checks (see kernels/mod.rs):
// - x: rows past the end are clamped to the last row (read, never stored); k past the end is
//   skipped (zero);
// - wt: the host pads the packed weight to whole tiles (rows to a multiple of 16, columns to a
//   multiple of 128), so every slab load is inside it;
// - workgroup arrays: indices are built from local ids below the array sizes;
// - y and b: only columns below n4 and rows below `rows` are touched.

// Invocations per side of the workgroup; 8 or 16 (the host's tile sizes 64 and 128).
override USE_BIAS: bool = true;
override TILE: u32 = 16u;
// Slab buffers in workgroup memory: 1, or 2 (double buffering: the next slab is written into the
// other buffer while this one is read, one barrier per step instead of two; needs 32 KiB of
// workgroup memory for TILE 16, so the host picks it only where the device allows that).
override STAGES: u32 = 1u;


// [k][row] and [k][col] slabs in vec4s along rows/cols: TILE · 8·TILE / 4 each, per stage.
var<workgroup> xs: array<vec4<f32>, STAGES * 2u * TILE * TILE>;
var<workgroup> ws: array<vec4<f32>, STAGES * 2u * TILE * TILE>;

fn load_x(row: u32, k: u32) -> vec4<f32> {
    if k < dims.k4 {
        return x[row * dims.k4 + k];
    }
    return vec4<f32>(0.0);
}

// Writes one vec4 of x (4 consecutive k of row r of the tile) transposed into the xs slab at
// `base`.
fn stash_x(base: u32, r: u32, kq: u32, v: vec4<f32>) {
    let stride = 2u * TILE; // vec4s per k in xs
    let i = base + kq * 4u * stride + r / 4u;
    let lane = r % 4u;
    xs[i][lane] = v.x;
    xs[i + stride][lane] = v.y;
    xs[i + 2u * stride][lane] = v.z;
    xs[i + 3u * stride][lane] = v.w;
}

fn store(row: u32, col: u32, v: vec4<f32>, bias: vec4<f32>) {
    if row < dims.rows && col < dims.n4 {
        y[row * dims.n4 + col] = epilogue(v + bias, col, dims.n_out);
    }
}

@compute @workgroup_size(TILE, TILE, 1)
fn tiled(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let stride = 2u * TILE;   // vec4s per k in a slab (8·TILE values)
    let q = TILE / 4u;        // vec4s of x per row per step
    let row0 = wid.y * 8u * TILE;
    let col0 = wid.x * stride; // first vec4 column of the tile
    let last = dims.rows - 1u;
    let wn = dims.wt_n4;

    // This invocation's two x loads (row r, vec4 kq of the step) and two wt loads (k row kr,
    // vec4 column c of the tile) per step.
    let i1 = li + TILE * TILE;
    let xr0 = li / q;
    let xk0 = li % q;
    let xr1 = i1 / q;
    let xk1 = i1 % q;
    let xg0 = min(row0 + xr0, last);
    let xg1 = min(row0 + xr1, last);
    let tx = lid.x;
    let ty = lid.y;
    let wr0 = li / stride;
    let wc0 = li % stride;
    let wr1 = i1 / stride;
    let wc1 = i1 % stride;

    var c00 = vec4<f32>(0.0); var c01 = vec4<f32>(0.0);
    var c10 = vec4<f32>(0.0); var c11 = vec4<f32>(0.0);
    var c20 = vec4<f32>(0.0); var c21 = vec4<f32>(0.0);
    var c30 = vec4<f32>(0.0); var c31 = vec4<f32>(0.0);
    var c40 = vec4<f32>(0.0); var c41 = vec4<f32>(0.0);
    var c50 = vec4<f32>(0.0); var c51 = vec4<f32>(0.0);
    var c60 = vec4<f32>(0.0); var c61 = vec4<f32>(0.0);
    var c70 = vec4<f32>(0.0); var c71 = vec4<f32>(0.0);

    let steps = (dims.k4 + q - 1u) / q;
    var px0 = load_x(xg0, xk0);
    var px1 = load_x(xg1, xk1);
    var pw0 = wt[wr0 * wn + col0 + wc0];
    var pw1 = wt[wr1 * wn + col0 + wc1];
    let slab = 2u * TILE * TILE; // vec4s per stage
    stash_x(0u, xr0, xk0, px0);
    stash_x(0u, xr1, xk1, px1);
    ws[wr0 * stride + wc0] = pw0;
    ws[wr1 * stride + wc1] = pw1;
    workgroupBarrier();
    for (var s = 0u; s < steps; s = s + 1u) {
        let more = s + 1u < steps;
        if more {
            let k = (s + 1u) * q;
            let kr = (s + 1u) * TILE;
            px0 = load_x(xg0, k + xk0);
            px1 = load_x(xg1, k + xk1);
            pw0 = wt[(kr + wr0) * wn + col0 + wc0];
            pw1 = wt[(kr + wr1) * wn + col0 + wc1];
        }
        let cur = (s % STAGES) * slab;
        for (var kk = 0u; kk < TILE; kk = kk + 1u) {
            let a0 = xs[cur + kk * stride + ty];
            let a1 = xs[cur + kk * stride + TILE + ty];
            let b0 = ws[cur + kk * stride + tx];
            let b1 = ws[cur + kk * stride + TILE + tx];
            c00 = fma(vec4<f32>(a0.x), b0, c00); c01 = fma(vec4<f32>(a0.x), b1, c01);
            c10 = fma(vec4<f32>(a0.y), b0, c10); c11 = fma(vec4<f32>(a0.y), b1, c11);
            c20 = fma(vec4<f32>(a0.z), b0, c20); c21 = fma(vec4<f32>(a0.z), b1, c21);
            c30 = fma(vec4<f32>(a0.w), b0, c30); c31 = fma(vec4<f32>(a0.w), b1, c31);
            c40 = fma(vec4<f32>(a1.x), b0, c40); c41 = fma(vec4<f32>(a1.x), b1, c41);
            c50 = fma(vec4<f32>(a1.y), b0, c50); c51 = fma(vec4<f32>(a1.y), b1, c51);
            c60 = fma(vec4<f32>(a1.z), b0, c60); c61 = fma(vec4<f32>(a1.z), b1, c61);
            c70 = fma(vec4<f32>(a1.w), b0, c70); c71 = fma(vec4<f32>(a1.w), b1, c71);
        }
        // With one stage, everyone must be done reading it before it is overwritten. With two,
        // the stage written here was last read in the previous step, which the barrier at the
        // end of that step closed.
        if STAGES == 1u {
            workgroupBarrier();
        }
        if more {
            let next = ((s + 1u) % STAGES) * slab;
            stash_x(next, xr0, xk0, px0);
            stash_x(next, xr1, xk1, px1);
            ws[next + wr0 * stride + wc0] = pw0;
            ws[next + wr1 * stride + wc1] = pw1;
        }
        workgroupBarrier();
    }

    let ca = col0 + tx;
    let cb = col0 + TILE + tx;
    var ba = vec4<f32>(0.0);
    var bb = vec4<f32>(0.0);
    if USE_BIAS {
        if ca < dims.n4 { ba = b[ca]; }
        if cb < dims.n4 { bb = b[cb]; }
    }
    let ra = row0 + 4u * ty;
    let rb = row0 + 4u * TILE + 4u * ty;
    store(ra, ca, c00, ba);      store(ra, cb, c01, bb);
    store(ra + 1u, ca, c10, ba); store(ra + 1u, cb, c11, bb);
    store(ra + 2u, ca, c20, ba); store(ra + 2u, cb, c21, bb);
    store(ra + 3u, ca, c30, ba); store(ra + 3u, cb, c31, bb);
    store(rb, ca, c40, ba);      store(rb, cb, c41, bb);
    store(rb + 1u, ca, c50, ba); store(rb + 1u, cb, c51, bb);
    store(rb + 2u, ca, c60, ba); store(rb + 2u, cb, c61, bb);
    store(rb + 3u, ca, c70, ba); store(rb + 3u, cb, c71, bb);
}
