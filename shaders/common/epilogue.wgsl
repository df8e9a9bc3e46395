// The epilogue every kernel applies to the values it stores: `ep_value(x, c)`, the step's
// elementwise expression generated from Rust (src/gpu/kernels/epilogue.rs, prepended above this
// file), on each lane of a vec4 of columns 4·col4.., and lanes at or past the real width set to
// 0, so padding never carries NaN or inf into the next layer. Its parameters are in `ep`.

fn epilogue(v: vec4<f32>, col4: u32, n_out: u32) -> vec4<f32> {
    let c = col4 * 4u;
    var r = vec4<f32>(ep_value(v.x, c), ep_value(v.y, c + 1u), ep_value(v.z, c + 2u), ep_value(v.w, c + 3u));
    if c + 4u > n_out {
        let lane = vec4<u32>(c, c + 1u, c + 2u, c + 3u);
        r = select(vec4<f32>(0.0), r, lane < vec4<u32>(n_out));
    }
    return r;
}
