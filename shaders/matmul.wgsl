// The training plan's matrix product (matmul.rs): C[M, N] = A·B (+ bias[n]) on plain row-major
// f32 buffers, A[m, k] read at m·sam + k·sak and B[k, n] at k·sbk + n·sbn, so either may be a
// transposed view:
//   forward  Z = X·Wᵀ + b   (A = X [rows, in], B = W [out, in] read transposed)
//   dX       = dZ·W         (A = dZ [rows, out], B = W [out, in])
//   dW       = dZᵀ·X        (A = dZ [rows, out] read transposed, B = X [rows, in])
//
// The shape follows llvmpipe's cost model (docs/KERNELS.md, "Why: llvmpipe's cost model"), as
// the windowed inference kernel does: every storage load whose address differs between lanes is
// emitted lane by lane, so what counts is loads per multiply-add. A workgroup is one row of WG
// invocations; invocation i computes output columns 4i..4i+3 for ROWS (32) rows. Per step of 4
// in k it loads 16 values of B and the ROWS × 4 values of A the prepended file provides (with
// subgroups each lane loads 4 of the 32 rows and subgroupBroadcast shares them), then does
// 16·ROWS multiply-adds. 32 rows rather than 16: a fifth less time per step on lavapipe, as each
// loaded value of B serves twice the rows; 64 gained little more (docs/LOG.md, 2026-12-07).
// No workgroup memory and no barriers (the 16×16 tiled form was 5.5× slower on software
// adapters; docs/LOG.md, 2026-12-07).
//
// Each output is one fma chain over k in increasing order: no atomics, so a run repeats bit for
// bit, and the bits do not depend on the blocking. Rows and columns past the edge load the last
// row or column (always in the buffers) and are not stored, so no value outside the matrices
// reaches a result. The k loop's bounds are uniform, so every lane reaches every broadcast.

override WG: u32 = 64u;

// One row's next 4 steps: acc + a.x·b0 + a.y·b1 + a.z·b2 + a.w·b3, in that order.
fn step4(acc: vec4<f32>, a: vec4<f32>, b0: vec4<f32>, b1: vec4<f32>, b2: vec4<f32>, b3: vec4<f32>) -> vec4<f32> {
    return fma(vec4<f32>(a.w), b3, fma(vec4<f32>(a.z), b2, fma(vec4<f32>(a.y), b1, fma(vec4<f32>(a.x), b0, acc))));
}

// B[k, n0..n0+3] (columns clamped to the last).
fn b_row(k: u32, nb: vec4<u32>) -> vec4<f32> {
    let o = k * dims.sbk;
    return vec4<f32>(b[o + nb.x], b[o + nb.y], b[o + nb.z], b[o + nb.w]);
}

fn store_row(m: u32, n0: u32, v: vec4<f32>) {
    if m >= dims.m {
        return;
    }
    for (var j = 0u; j < 4u; j++) {
        let n = n0 + j;
        if n < dims.n {
            var x = v[j];
            if dims.has_bias != 0u {
                x = x + bias[n];
            }
            c[m * dims.n + n] = x;
        }
    }
}

@compute @workgroup_size(WG)
fn matmul(ids: Ids) {
    let r0 = ids.wid.y * ROWS;
    let n0 = (ids.wid.x * WG + ids.lid.x) * 4u;
    let src = a_source(ids, r0);
    let nb = min(vec4<u32>(n0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(dims.n - 1u)) * dims.sbn;
    // ROWS (32) accumulators, each written out below: constant indices keep them out of memory
    // indexed at run time (llvmpipe still spills most of them to the stack, cheaply).
    var acc: array<vec4<f32>, 32>;
    var k = 0u;
    for (; k + 4u <= dims.k; k += 4u) {
        let x = a_rows4(src, k);
        let b0 = b_row(k, nb);
        let b1 = b_row(k + 1u, nb);
        let b2 = b_row(k + 2u, nb);
        let b3 = b_row(k + 3u, nb);
        acc[0] = step4(acc[0], x[0], b0, b1, b2, b3);
        acc[1] = step4(acc[1], x[1], b0, b1, b2, b3);
        acc[2] = step4(acc[2], x[2], b0, b1, b2, b3);
        acc[3] = step4(acc[3], x[3], b0, b1, b2, b3);
        acc[4] = step4(acc[4], x[4], b0, b1, b2, b3);
        acc[5] = step4(acc[5], x[5], b0, b1, b2, b3);
        acc[6] = step4(acc[6], x[6], b0, b1, b2, b3);
        acc[7] = step4(acc[7], x[7], b0, b1, b2, b3);
        acc[8] = step4(acc[8], x[8], b0, b1, b2, b3);
        acc[9] = step4(acc[9], x[9], b0, b1, b2, b3);
        acc[10] = step4(acc[10], x[10], b0, b1, b2, b3);
        acc[11] = step4(acc[11], x[11], b0, b1, b2, b3);
        acc[12] = step4(acc[12], x[12], b0, b1, b2, b3);
        acc[13] = step4(acc[13], x[13], b0, b1, b2, b3);
        acc[14] = step4(acc[14], x[14], b0, b1, b2, b3);
        acc[15] = step4(acc[15], x[15], b0, b1, b2, b3);
        acc[16] = step4(acc[16], x[16], b0, b1, b2, b3);
        acc[17] = step4(acc[17], x[17], b0, b1, b2, b3);
        acc[18] = step4(acc[18], x[18], b0, b1, b2, b3);
        acc[19] = step4(acc[19], x[19], b0, b1, b2, b3);
        acc[20] = step4(acc[20], x[20], b0, b1, b2, b3);
        acc[21] = step4(acc[21], x[21], b0, b1, b2, b3);
        acc[22] = step4(acc[22], x[22], b0, b1, b2, b3);
        acc[23] = step4(acc[23], x[23], b0, b1, b2, b3);
        acc[24] = step4(acc[24], x[24], b0, b1, b2, b3);
        acc[25] = step4(acc[25], x[25], b0, b1, b2, b3);
        acc[26] = step4(acc[26], x[26], b0, b1, b2, b3);
        acc[27] = step4(acc[27], x[27], b0, b1, b2, b3);
        acc[28] = step4(acc[28], x[28], b0, b1, b2, b3);
        acc[29] = step4(acc[29], x[29], b0, b1, b2, b3);
        acc[30] = step4(acc[30], x[30], b0, b1, b2, b3);
        acc[31] = step4(acc[31], x[31], b0, b1, b2, b3);
    }
    // The last k mod 4 steps, one at a time.
    for (; k < dims.k; k++) {
        let x = a_rows1(src, k);
        let b0 = b_row(k, nb);
        acc[0] = fma(vec4<f32>(x[0]), b0, acc[0]);
        acc[1] = fma(vec4<f32>(x[1]), b0, acc[1]);
        acc[2] = fma(vec4<f32>(x[2]), b0, acc[2]);
        acc[3] = fma(vec4<f32>(x[3]), b0, acc[3]);
        acc[4] = fma(vec4<f32>(x[4]), b0, acc[4]);
        acc[5] = fma(vec4<f32>(x[5]), b0, acc[5]);
        acc[6] = fma(vec4<f32>(x[6]), b0, acc[6]);
        acc[7] = fma(vec4<f32>(x[7]), b0, acc[7]);
        acc[8] = fma(vec4<f32>(x[8]), b0, acc[8]);
        acc[9] = fma(vec4<f32>(x[9]), b0, acc[9]);
        acc[10] = fma(vec4<f32>(x[10]), b0, acc[10]);
        acc[11] = fma(vec4<f32>(x[11]), b0, acc[11]);
        acc[12] = fma(vec4<f32>(x[12]), b0, acc[12]);
        acc[13] = fma(vec4<f32>(x[13]), b0, acc[13]);
        acc[14] = fma(vec4<f32>(x[14]), b0, acc[14]);
        acc[15] = fma(vec4<f32>(x[15]), b0, acc[15]);
        acc[16] = fma(vec4<f32>(x[16]), b0, acc[16]);
        acc[17] = fma(vec4<f32>(x[17]), b0, acc[17]);
        acc[18] = fma(vec4<f32>(x[18]), b0, acc[18]);
        acc[19] = fma(vec4<f32>(x[19]), b0, acc[19]);
        acc[20] = fma(vec4<f32>(x[20]), b0, acc[20]);
        acc[21] = fma(vec4<f32>(x[21]), b0, acc[21]);
        acc[22] = fma(vec4<f32>(x[22]), b0, acc[22]);
        acc[23] = fma(vec4<f32>(x[23]), b0, acc[23]);
        acc[24] = fma(vec4<f32>(x[24]), b0, acc[24]);
        acc[25] = fma(vec4<f32>(x[25]), b0, acc[25]);
        acc[26] = fma(vec4<f32>(x[26]), b0, acc[26]);
        acc[27] = fma(vec4<f32>(x[27]), b0, acc[27]);
        acc[28] = fma(vec4<f32>(x[28]), b0, acc[28]);
        acc[29] = fma(vec4<f32>(x[29]), b0, acc[29]);
        acc[30] = fma(vec4<f32>(x[30]), b0, acc[30]);
        acc[31] = fma(vec4<f32>(x[31]), b0, acc[31]);
    }
    store_row(r0 + 0u, n0, acc[0]);
    store_row(r0 + 1u, n0, acc[1]);
    store_row(r0 + 2u, n0, acc[2]);
    store_row(r0 + 3u, n0, acc[3]);
    store_row(r0 + 4u, n0, acc[4]);
    store_row(r0 + 5u, n0, acc[5]);
    store_row(r0 + 6u, n0, acc[6]);
    store_row(r0 + 7u, n0, acc[7]);
    store_row(r0 + 8u, n0, acc[8]);
    store_row(r0 + 9u, n0, acc[9]);
    store_row(r0 + 10u, n0, acc[10]);
    store_row(r0 + 11u, n0, acc[11]);
    store_row(r0 + 12u, n0, acc[12]);
    store_row(r0 + 13u, n0, acc[13]);
    store_row(r0 + 14u, n0, acc[14]);
    store_row(r0 + 15u, n0, acc[15]);
    store_row(r0 + 16u, n0, acc[16]);
    store_row(r0 + 17u, n0, acc[17]);
    store_row(r0 + 18u, n0, acc[18]);
    store_row(r0 + 19u, n0, acc[19]);
    store_row(r0 + 20u, n0, acc[20]);
    store_row(r0 + 21u, n0, acc[21]);
    store_row(r0 + 22u, n0, acc[22]);
    store_row(r0 + 23u, n0, acc[23]);
    store_row(r0 + 24u, n0, acc[24]);
    store_row(r0 + 25u, n0, acc[25]);
    store_row(r0 + 26u, n0, acc[26]);
    store_row(r0 + 27u, n0, acc[27]);
    store_row(r0 + 28u, n0, acc[28]);
    store_row(r0 + 29u, n0, acc[29]);
    store_row(r0 + 30u, n0, acc[30]);
    store_row(r0 + 31u, n0, acc[31]);
}
