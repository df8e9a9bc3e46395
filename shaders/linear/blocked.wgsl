// The blocked Linear kernel (LinearKernel::Blocked, blocked.rs): y = epilogue(x·Wᵀ + b) with x
// and the weight read from storage buffers. Software adapters run it for layers the windowed
// kernel cannot take (inputs over 8,192 features, weights past the texture size). Weight layout:
// [in, out] transposed and padded (pack.rs).
//
// Each invocation computes a 4-row × 8-column block in registers: per step of 4 in k it loads
// 4 vec4 of x and 8 vec4 of wt and does 128 multiply-adds.

override USE_BIAS: bool = true;
override WG_X: u32 = 8u;
override WG_Y: u32 = 8u;


@compute @workgroup_size(WG_X, WG_Y, 1)
fn blocked(@builtin(global_invocation_id) gid: vec3<u32>) {
    let col8 = gid.x;            // block of 8 output columns
    let row0 = gid.y * 4u;       // first of 4 rows
    let c0 = col8 * 2u;          // first vec4 column of the block
    if row0 >= dims.rows || c0 >= dims.n4 {
        return;
    }
    // Rows past the end re-read the last row (never stored): keeps loads in bounds with no
    // per-step checks.
    let last = dims.rows - 1u;
    let xr0 = min(row0, last) * dims.k4;
    let xr1 = min(row0 + 1u, last) * dims.k4;
    let xr2 = min(row0 + 2u, last) * dims.k4;
    let xr3 = min(row0 + 3u, last) * dims.k4;

    var a00 = vec4<f32>(0.0); var a01 = vec4<f32>(0.0);
    var a10 = vec4<f32>(0.0); var a11 = vec4<f32>(0.0);
    var a20 = vec4<f32>(0.0); var a21 = vec4<f32>(0.0);
    var a30 = vec4<f32>(0.0); var a31 = vec4<f32>(0.0);

    let wn = dims.wt_n4;
    for (var k = 0u; k < dims.k4; k = k + 1u) {
        let x0 = x[xr0 + k];
        let x1 = x[xr1 + k];
        let x2 = x[xr2 + k];
        let x3 = x[xr3 + k];
        let wbase = k * 4u * wn + c0;
        let w00 = wt[wbase];            let w01 = wt[wbase + 1u];
        let w10 = wt[wbase + wn];       let w11 = wt[wbase + wn + 1u];
        let w20 = wt[wbase + 2u * wn];  let w21 = wt[wbase + 2u * wn + 1u];
        let w30 = wt[wbase + 3u * wn];  let w31 = wt[wbase + 3u * wn + 1u];

        a00 = fma(vec4<f32>(x0.x), w00, a00); a01 = fma(vec4<f32>(x0.x), w01, a01);
        a00 = fma(vec4<f32>(x0.y), w10, a00); a01 = fma(vec4<f32>(x0.y), w11, a01);
        a00 = fma(vec4<f32>(x0.z), w20, a00); a01 = fma(vec4<f32>(x0.z), w21, a01);
        a00 = fma(vec4<f32>(x0.w), w30, a00); a01 = fma(vec4<f32>(x0.w), w31, a01);

        a10 = fma(vec4<f32>(x1.x), w00, a10); a11 = fma(vec4<f32>(x1.x), w01, a11);
        a10 = fma(vec4<f32>(x1.y), w10, a10); a11 = fma(vec4<f32>(x1.y), w11, a11);
        a10 = fma(vec4<f32>(x1.z), w20, a10); a11 = fma(vec4<f32>(x1.z), w21, a11);
        a10 = fma(vec4<f32>(x1.w), w30, a10); a11 = fma(vec4<f32>(x1.w), w31, a11);

        a20 = fma(vec4<f32>(x2.x), w00, a20); a21 = fma(vec4<f32>(x2.x), w01, a21);
        a20 = fma(vec4<f32>(x2.y), w10, a20); a21 = fma(vec4<f32>(x2.y), w11, a21);
        a20 = fma(vec4<f32>(x2.z), w20, a20); a21 = fma(vec4<f32>(x2.z), w21, a21);
        a20 = fma(vec4<f32>(x2.w), w30, a20); a21 = fma(vec4<f32>(x2.w), w31, a21);

        a30 = fma(vec4<f32>(x3.x), w00, a30); a31 = fma(vec4<f32>(x3.x), w01, a31);
        a30 = fma(vec4<f32>(x3.y), w10, a30); a31 = fma(vec4<f32>(x3.y), w11, a31);
        a30 = fma(vec4<f32>(x3.z), w20, a30); a31 = fma(vec4<f32>(x3.z), w21, a31);
        a30 = fma(vec4<f32>(x3.w), w30, a30); a31 = fma(vec4<f32>(x3.w), w31, a31);
    }

    var b0 = vec4<f32>(0.0);
    var b1 = vec4<f32>(0.0);
    if USE_BIAS {
        b0 = b[c0];
        b1 = b[c0 + 1u];
    }
    let has1 = c0 + 1u < dims.n4;
    let n4 = dims.n4;
    // Row 0 is always valid (checked above); the others are stored only when they exist.
    y[row0 * n4 + c0] = epilogue(a00 + b0, c0, dims.n_out);
    if has1 { y[row0 * n4 + c0 + 1u] = epilogue(a01 + b1, c0 + 1u, dims.n_out); }
    if row0 + 1u < dims.rows {
        y[(row0 + 1u) * n4 + c0] = epilogue(a10 + b0, c0, dims.n_out);
        if has1 { y[(row0 + 1u) * n4 + c0 + 1u] = epilogue(a11 + b1, c0 + 1u, dims.n_out); }
    }
    if row0 + 2u < dims.rows {
        y[(row0 + 2u) * n4 + c0] = epilogue(a20 + b0, c0, dims.n_out);
        if has1 { y[(row0 + 2u) * n4 + c0 + 1u] = epilogue(a21 + b1, c0 + 1u, dims.n_out); }
    }
    if row0 + 3u < dims.rows {
        y[(row0 + 3u) * n4 + c0] = epilogue(a30 + b0, c0, dims.n_out);
        if has1 { y[(row0 + 3u) * n4 + c0 + 1u] = epilogue(a31 + b1, c0 + 1u, dims.n_out); }
    }
}
