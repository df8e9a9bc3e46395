// The Linear layer kernel: y = act(x·Wᵀ + b), bias and activation fused into the store step.
// With USE_BIAS = false and ACT = 0 it is the plain matmul x·Wᵀ.
//
// Layouts (all padded with zeros, so the inner loop needs no bounds checks):
//   x  [rows, k4]          vec4 per 4 input features (row stride k4 = ceil(in/4))
//   wt texture [k4*4, wt_n4] rgba32float: the weight transposed to [in, out], out padded to 8
//   b  [wt_n4]             the bias, padded
//   y  [rows, n4]          vec4 per 4 outputs (row stride n4 = ceil(out/4)); padding written 0
//
// Why this shape (measured on lavapipe, see docs/PERFORMANCE.md): llvmpipe runs invocations as
// SIMD lanes and emits storage-buffer loads lane by lane, one component at a time, each behind a
// bounds check. Uniform-buffer loads at a workgroup-uniform address are one load and a broadcast,
// and texel fetches are SIMD gathers. So:
// - x is read through a 64 KiB uniform window of whole rows (the host binds it at a dynamic offset
//   and dispatches once per window); all invocations of a workgroup share the rows, so every x
//   load has a uniform address (on GPUs: served from the constant cache);
// - the weight is fetched from a texture (on GPUs: the texture cache; consecutive invocations
//   fetch consecutive texels);
// - each invocation computes a ROWS-row × 4-column block (ROWS ≤ 16; invocation i takes output
//   columns 4i..4i+3): per step of 4 in k, ROWS shared x loads, 4 texel fetches, 16·ROWS FMAs.
// There is no early return, so the x addresses stay provably uniform; rows and columns past the
// end are clamped for loads and skipped for stores.

// Rows per invocation, at most 16: the host picks 1 or 4 for small batches so a GEMV does not
// compute 16 copies of one row. The `if ROWS > i` tests are resolved when the pipeline compiles.
override ROWS: u32 = 16u;
override WG: u32 = 64u;

@group(0) @binding(1) var<uniform> x: array<vec4<f32>, 4096>;
// A second window for inputs of 1,025 to 8,192 features, where one 64 KiB window holds fewer than
// 16 rows: the dispatch then covers two windows, rows below HALF from x and the rest from x_hi.
@group(0) @binding(5) var<uniform> x_hi: array<vec4<f32>, 4096>;
// Rows per window when windows are paired (the dispatch then has a single row block); the
// default, no pairing, makes every `hi` test below false when the pipeline compiles.
override HALF: u32 = 0xffffffffu;
@group(0) @binding(2) var wt: texture_2d<f32>;

fn store(row: u32, col: u32, v: vec4<f32>) {
    if row < dims.rows && col < dims.n4 {
        y[(dims.row_base + row) * dims.n4 + col] = epilogue(v, col);
    }
}

@compute @workgroup_size(WG, 1, 1)
fn linear(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let col = wid.x * WG + lid.x;
    let wc = min(col, dims.wt_n4 - 1u);
    let row0 = wid.y * ROWS;
    let last = dims.rows - 1u;
    let k4 = dims.k4;
    let wn = dims.wt_n4;
    let r0 = min(row0 + 0u, last);
    let hi0 = HALF != 0xffffffffu && 0u >= HALF;
    let x0 = select(r0, select(0u, r0 - HALF, r0 >= HALF), hi0) * k4;
    let r1 = min(row0 + 1u, last);
    let hi1 = HALF != 0xffffffffu && 1u >= HALF;
    let x1 = select(r1, select(0u, r1 - HALF, r1 >= HALF), hi1) * k4;
    let r2 = min(row0 + 2u, last);
    let hi2 = HALF != 0xffffffffu && 2u >= HALF;
    let x2 = select(r2, select(0u, r2 - HALF, r2 >= HALF), hi2) * k4;
    let r3 = min(row0 + 3u, last);
    let hi3 = HALF != 0xffffffffu && 3u >= HALF;
    let x3 = select(r3, select(0u, r3 - HALF, r3 >= HALF), hi3) * k4;
    let r4 = min(row0 + 4u, last);
    let hi4 = HALF != 0xffffffffu && 4u >= HALF;
    let x4 = select(r4, select(0u, r4 - HALF, r4 >= HALF), hi4) * k4;
    let r5 = min(row0 + 5u, last);
    let hi5 = HALF != 0xffffffffu && 5u >= HALF;
    let x5 = select(r5, select(0u, r5 - HALF, r5 >= HALF), hi5) * k4;
    let r6 = min(row0 + 6u, last);
    let hi6 = HALF != 0xffffffffu && 6u >= HALF;
    let x6 = select(r6, select(0u, r6 - HALF, r6 >= HALF), hi6) * k4;
    let r7 = min(row0 + 7u, last);
    let hi7 = HALF != 0xffffffffu && 7u >= HALF;
    let x7 = select(r7, select(0u, r7 - HALF, r7 >= HALF), hi7) * k4;
    let r8 = min(row0 + 8u, last);
    let hi8 = HALF != 0xffffffffu && 8u >= HALF;
    let x8 = select(r8, select(0u, r8 - HALF, r8 >= HALF), hi8) * k4;
    let r9 = min(row0 + 9u, last);
    let hi9 = HALF != 0xffffffffu && 9u >= HALF;
    let x9 = select(r9, select(0u, r9 - HALF, r9 >= HALF), hi9) * k4;
    let r10 = min(row0 + 10u, last);
    let hi10 = HALF != 0xffffffffu && 10u >= HALF;
    let x10 = select(r10, select(0u, r10 - HALF, r10 >= HALF), hi10) * k4;
    let r11 = min(row0 + 11u, last);
    let hi11 = HALF != 0xffffffffu && 11u >= HALF;
    let x11 = select(r11, select(0u, r11 - HALF, r11 >= HALF), hi11) * k4;
    let r12 = min(row0 + 12u, last);
    let hi12 = HALF != 0xffffffffu && 12u >= HALF;
    let x12 = select(r12, select(0u, r12 - HALF, r12 >= HALF), hi12) * k4;
    let r13 = min(row0 + 13u, last);
    let hi13 = HALF != 0xffffffffu && 13u >= HALF;
    let x13 = select(r13, select(0u, r13 - HALF, r13 >= HALF), hi13) * k4;
    let r14 = min(row0 + 14u, last);
    let hi14 = HALF != 0xffffffffu && 14u >= HALF;
    let x14 = select(r14, select(0u, r14 - HALF, r14 >= HALF), hi14) * k4;
    let r15 = min(row0 + 15u, last);
    let hi15 = HALF != 0xffffffffu && 15u >= HALF;
    let x15 = select(r15, select(0u, r15 - HALF, r15 >= HALF), hi15) * k4;
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

    for (var k = 0u; k < k4; k = k + 1u) {
        let kr = k * 4u;
        let w0 = textureLoad(wt, vec2<u32>(wc, kr), 0);
        let w1 = textureLoad(wt, vec2<u32>(wc, kr + 1u), 0);
        let w2 = textureLoad(wt, vec2<u32>(wc, kr + 2u), 0);
        let w3 = textureLoad(wt, vec2<u32>(wc, kr + 3u), 0);
        let v0 = select(x[x0 + k], x_hi[x0 + k], hi0);
        a0 = fma(vec4<f32>(v0.x), w0, fma(vec4<f32>(v0.y), w1, fma(vec4<f32>(v0.z), w2, fma(vec4<f32>(v0.w), w3, a0))));
        if ROWS > 1u {
            let v1 = select(x[x1 + k], x_hi[x1 + k], hi1);
            a1 = fma(vec4<f32>(v1.x), w0, fma(vec4<f32>(v1.y), w1, fma(vec4<f32>(v1.z), w2, fma(vec4<f32>(v1.w), w3, a1))));
        }
        if ROWS > 2u {
            let v2 = select(x[x2 + k], x_hi[x2 + k], hi2);
            a2 = fma(vec4<f32>(v2.x), w0, fma(vec4<f32>(v2.y), w1, fma(vec4<f32>(v2.z), w2, fma(vec4<f32>(v2.w), w3, a2))));
        }
        if ROWS > 3u {
            let v3 = select(x[x3 + k], x_hi[x3 + k], hi3);
            a3 = fma(vec4<f32>(v3.x), w0, fma(vec4<f32>(v3.y), w1, fma(vec4<f32>(v3.z), w2, fma(vec4<f32>(v3.w), w3, a3))));
        }
        if ROWS > 4u {
            let v4 = select(x[x4 + k], x_hi[x4 + k], hi4);
            a4 = fma(vec4<f32>(v4.x), w0, fma(vec4<f32>(v4.y), w1, fma(vec4<f32>(v4.z), w2, fma(vec4<f32>(v4.w), w3, a4))));
        }
        if ROWS > 5u {
            let v5 = select(x[x5 + k], x_hi[x5 + k], hi5);
            a5 = fma(vec4<f32>(v5.x), w0, fma(vec4<f32>(v5.y), w1, fma(vec4<f32>(v5.z), w2, fma(vec4<f32>(v5.w), w3, a5))));
        }
        if ROWS > 6u {
            let v6 = select(x[x6 + k], x_hi[x6 + k], hi6);
            a6 = fma(vec4<f32>(v6.x), w0, fma(vec4<f32>(v6.y), w1, fma(vec4<f32>(v6.z), w2, fma(vec4<f32>(v6.w), w3, a6))));
        }
        if ROWS > 7u {
            let v7 = select(x[x7 + k], x_hi[x7 + k], hi7);
            a7 = fma(vec4<f32>(v7.x), w0, fma(vec4<f32>(v7.y), w1, fma(vec4<f32>(v7.z), w2, fma(vec4<f32>(v7.w), w3, a7))));
        }
        if ROWS > 8u {
            let v8 = select(x[x8 + k], x_hi[x8 + k], hi8);
            a8 = fma(vec4<f32>(v8.x), w0, fma(vec4<f32>(v8.y), w1, fma(vec4<f32>(v8.z), w2, fma(vec4<f32>(v8.w), w3, a8))));
        }
        if ROWS > 9u {
            let v9 = select(x[x9 + k], x_hi[x9 + k], hi9);
            a9 = fma(vec4<f32>(v9.x), w0, fma(vec4<f32>(v9.y), w1, fma(vec4<f32>(v9.z), w2, fma(vec4<f32>(v9.w), w3, a9))));
        }
        if ROWS > 10u {
            let v10 = select(x[x10 + k], x_hi[x10 + k], hi10);
            a10 = fma(vec4<f32>(v10.x), w0, fma(vec4<f32>(v10.y), w1, fma(vec4<f32>(v10.z), w2, fma(vec4<f32>(v10.w), w3, a10))));
        }
        if ROWS > 11u {
            let v11 = select(x[x11 + k], x_hi[x11 + k], hi11);
            a11 = fma(vec4<f32>(v11.x), w0, fma(vec4<f32>(v11.y), w1, fma(vec4<f32>(v11.z), w2, fma(vec4<f32>(v11.w), w3, a11))));
        }
        if ROWS > 12u {
            let v12 = select(x[x12 + k], x_hi[x12 + k], hi12);
            a12 = fma(vec4<f32>(v12.x), w0, fma(vec4<f32>(v12.y), w1, fma(vec4<f32>(v12.z), w2, fma(vec4<f32>(v12.w), w3, a12))));
        }
        if ROWS > 13u {
            let v13 = select(x[x13 + k], x_hi[x13 + k], hi13);
            a13 = fma(vec4<f32>(v13.x), w0, fma(vec4<f32>(v13.y), w1, fma(vec4<f32>(v13.z), w2, fma(vec4<f32>(v13.w), w3, a13))));
        }
        if ROWS > 14u {
            let v14 = select(x[x14 + k], x_hi[x14 + k], hi14);
            a14 = fma(vec4<f32>(v14.x), w0, fma(vec4<f32>(v14.y), w1, fma(vec4<f32>(v14.z), w2, fma(vec4<f32>(v14.w), w3, a14))));
        }
        if ROWS > 15u {
            let v15 = select(x[x15 + k], x_hi[x15 + k], hi15);
            a15 = fma(vec4<f32>(v15.x), w0, fma(vec4<f32>(v15.y), w1, fma(vec4<f32>(v15.z), w2, fma(vec4<f32>(v15.w), w3, a15))));
        }
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
