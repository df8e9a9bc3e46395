// What the two Linear kernels (linear.wgsl, linear_wide.wgsl) share: the per-dispatch dimensions,
// the bias and output bindings, and the fused epilogue. Prepended to each on the host, after
// activation.wgsl.

struct Dims {
    rows: u32,     // valid rows (in this window, for linear.wgsl)
    row_base: u32, // first row of the window in y (0 for linear_wide.wgsl)
    k4: u32,       // vec4s per row of x
    n4: u32,       // vec4s per row of y
    n_out: u32,    // real output width (lanes at or past it are padding)
    wt_n4: u32,    // vec4s per row of wt
    tex_w: u32,      // linear.wgsl: texels per row of the weight texture (32·steps per row)
    panel_rows: u32, // linear.wgsl: texture rows per panel of 8 output texels
}

override USE_BIAS: bool = true;

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(3) var<storage, read> b: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> y: array<vec4<f32>>;

// Activation of a pre-activation vec4 of columns 4·col4.., with lanes past the real width set to
// 0, so padding never carries NaN or inf into the next layer.
fn epilogue(v: vec4<f32>, col4: u32) -> vec4<f32> {
    var r = vec4<f32>(activate(v.x), activate(v.y), activate(v.z), activate(v.w));
    let c = col4 * 4u;
    if c + 4u > dims.n_out {
        let lane = vec4<u32>(c, c + 1u, c + 2u, c + 3u);
        r = select(vec4<f32>(0.0), r, lane < vec4<u32>(dims.n_out));
    }
    return r;
}
