// The elementwise kernel (elementwise.rs): the step's epilogue applied in place to a [rows, n4]
// vec4 matrix, one vec4 per invocation. It runs the elementwise modules that have no kernel
// before them to fuse into (a BatchNorm or activation before the first Linear layer) and, in
// KernelMode::Separate, the bias add and the epilogue as passes of their own.

const WG: u32 = 64u;

@compute @workgroup_size(WG)
fn elementwise(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    // The grid is folded into 2-D past 65,535 workgroups: rebuild the linear index.
    let i = (wid.y * dims.groups_x + wid.x) * WG + lid.x;
    if i >= dims.rows * dims.n4 {
        return;
    }
    y[i] = epilogue(y[i], i % dims.n4, dims.n_out);
}
