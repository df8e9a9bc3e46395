// The copy kernels (copy.rs): between an application's buffers of plain rows ([rows, cols] f32,
// row-major, no padding) and the workspace's padded rows ([rows, stride] with stride = 4·ceil(cols/4),
// zeros in the padding), so GpuMlp::encode can read and write the caller's buffers inside the
// caller's command encoder. `row0` is the chunk's first row in the plain buffer.

const WG: u32 = 64u;

fn flat(wid: vec3<u32>, lid: vec3<u32>) -> u32 {
    return (wid.y * dims.groups_x + wid.x) * WG + lid.x;
}

// plain (src) → padded (dst), padding written 0.
@compute @workgroup_size(WG)
fn pack(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat(wid, lid);
    if i >= dims.rows * dims.stride {
        return;
    }
    let r = i / dims.stride;
    let c = i % dims.stride;
    var v = 0.0;
    if c < dims.cols {
        v = src[(dims.row0 + r) * dims.cols + c];
    }
    dst[i] = v;
}

// padded (src) → plain (dst).
@compute @workgroup_size(WG)
fn unpack(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat(wid, lid);
    if i >= dims.rows * dims.cols {
        return;
    }
    let r = i / dims.cols;
    let c = i % dims.cols;
    dst[(dims.row0 + r) * dims.cols + c] = src[r * dims.stride + c];
}
