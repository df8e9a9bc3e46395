// The training plan's matrix product (matmul.rs): C[M, N] = op(A)·op(B) (+ bias[n]), with A
// stored [M, K] or, transposed, [K, M], and B stored [K, N] or, transposed, [N, K]:
//   forward  Z = X·Wᵀ + b   (A = X [rows, in], B = W [out, in] transposed)
//   dX       = dZ·W         (A = dZ [rows, out], B = W [out, in])
//   dW       = dZᵀ·X        (A = dZ [rows, out] transposed, B = X [rows, in])
// Plain f32 storage. Each invocation computes a 4×4 block of C from registers, reading A and B
// straight from storage: no workgroup memory and no barriers, which software adapters (lavapipe,
// llvmpipe) run as loop splits and make slow (docs/LOG.md, 2026-12-07: the 16×16 tiled form
// took 5.5× as long per training step on lavapipe and llvmpipe). Each output is one fma chain over k in increasing order (a
// vec4 fma is four scalar ones): no atomics, so a run repeats bit for bit, and the bits do not
// depend on the blocking. Rows and columns past the edge read the last row or column (always in
// the buffers) and their results are not stored, so no value outside the matrices reaches a
// result.

/// Outputs per invocation along each side (`BLOCK` in matmul.rs).
const R: u32 = 4u;

@compute @workgroup_size(8, 8)
fn matmul(@builtin(global_invocation_id) gid: vec3<u32>) {
    let m0 = gid.y * R;
    let n0 = gid.x * R;
    if m0 >= dims.m || n0 >= dims.n {
        return;
    }
    // A[m, k] is at m·sam + k·sak, B[k, n] at k·sbk + n·sbn.
    var sam = dims.k;
    var sak = 1u;
    if dims.trans_a != 0u {
        sam = 1u;
        sak = dims.m;
    }
    var sbk = dims.n;
    var sbn = 1u;
    if dims.trans_b != 0u {
        sbk = 1u;
        sbn = dims.k;
    }
    let last_m = vec4<u32>(dims.m - 1u);
    let last_n = vec4<u32>(dims.n - 1u);
    let ma = min(vec4<u32>(m0) + vec4<u32>(0u, 1u, 2u, 3u), last_m) * sam;
    let nb = min(vec4<u32>(n0) + vec4<u32>(0u, 1u, 2u, 3u), last_n) * sbn;
    var c0 = vec4<f32>(0.0);
    var c1 = vec4<f32>(0.0);
    var c2 = vec4<f32>(0.0);
    var c3 = vec4<f32>(0.0);
    for (var k = 0u; k < dims.k; k++) {
        let ka = k * sak;
        let kb = k * sbk;
        let bv = vec4<f32>(b[kb + nb.x], b[kb + nb.y], b[kb + nb.z], b[kb + nb.w]);
        c0 = fma(vec4<f32>(a[ma.x + ka]), bv, c0);
        c1 = fma(vec4<f32>(a[ma.y + ka]), bv, c1);
        c2 = fma(vec4<f32>(a[ma.z + ka]), bv, c2);
        c3 = fma(vec4<f32>(a[ma.w + ka]), bv, c3);
    }
    store_row(m0, n0, c0);
    store_row(m0 + 1u, n0, c1);
    store_row(m0 + 2u, n0, c2);
    store_row(m0 + 3u, n0, c3);
}

fn store_row(m: u32, n0: u32, v: vec4<f32>) {
    if m >= dims.m {
        return;
    }
    for (var j = 0u; j < R; j++) {
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
