// The training plan's matrix product (matmul.rs): C[M, N] = op(A)·op(B) (+ bias[n]), with A
// stored [M, K] or, transposed, [K, M], and B stored [K, N] or, transposed, [N, K]:
//   forward  Z = X·Wᵀ + b   (A = X [rows, in], B = W [out, in] transposed)
//   dX       = dZ·W         (A = dZ [rows, out], B = W [out, in])
//   dW       = dZᵀ·X        (A = dZ [rows, out] transposed, B = X [rows, in])
// Plain f32 storage, 16×16 output tiles through workgroup memory. Each output is one fma chain
// over k in increasing order: no atomics, so a run repeats bit for bit. Loads outside the
// matrices read 0, and 0·0 adds nothing, so no value outside them reaches a result.

const T: u32 = 16u;

var<workgroup> tile_a: array<array<f32, 16>, 16>;
var<workgroup> tile_b: array<array<f32, 16>, 16>;

fn load_a(m: u32, k: u32) -> f32 {
    if m >= dims.m || k >= dims.k {
        return 0.0;
    }
    if dims.trans_a != 0u {
        return a[k * dims.m + m];
    }
    return a[m * dims.k + k];
}

fn load_b(k: u32, n: u32) -> f32 {
    if k >= dims.k || n >= dims.n {
        return 0.0;
    }
    if dims.trans_b != 0u {
        return b[n * dims.k + k];
    }
    return b[k * dims.n + n];
}

@compute @workgroup_size(16, 16)
fn matmul(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let m = wid.y * T + lid.y;
    let n = wid.x * T + lid.x;
    var acc = 0.0;
    for (var k0 = 0u; k0 < dims.k; k0 += T) {
        tile_a[lid.y][lid.x] = load_a(m, k0 + lid.x);
        tile_b[lid.y][lid.x] = load_b(k0 + lid.y, n);
        workgroupBarrier();
        for (var kk = 0u; kk < T; kk++) {
            acc = fma(tile_a[lid.y][kk], tile_b[kk][lid.x], acc);
        }
        workgroupBarrier();
    }
    if m < dims.m && n < dims.n {
        var v = acc;
        if dims.has_bias != 0u {
            v = v + bias[n];
        }
        c[m * dims.n + n] = v;
    }
}
