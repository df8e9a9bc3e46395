// matmul.wgsl's rows of A on devices without subgroups (llvmpipe through GL): every lane loads
// all 32 rows itself (on a GPU the same address across a workgroup is one cached load; on
// llvmpipe it is a load per lane, which is why GL is the slower software adapter here too).

struct Ids {
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
}

// Where each of the block's 32 rows starts in A (clamped to the last row).
struct ASource {
    row: array<u32, 32>,
}

fn a_source(ids: Ids, r0: u32) -> ASource {
    var s: ASource;
    let last = dims.m - 1u;
    for (var i = 0u; i < 32u; i++) {
        s.row[i] = min(r0 + i, last) * dims.sam;
    }
    return s;
}

fn a4(row: u32, k: u32) -> vec4<f32> {
    return vec4<f32>(a[row + k * dims.sak], a[row + (k + 1u) * dims.sak],
                     a[row + (k + 2u) * dims.sak], a[row + (k + 3u) * dims.sak]);
}

fn a_rows4(s: ASource, k: u32) -> array<vec4<f32>, 32> {
    return array<vec4<f32>, 32>(
        a4(s.row[0], k), a4(s.row[1], k), a4(s.row[2], k), a4(s.row[3], k),
        a4(s.row[4], k), a4(s.row[5], k), a4(s.row[6], k), a4(s.row[7], k),
        a4(s.row[8], k), a4(s.row[9], k), a4(s.row[10], k), a4(s.row[11], k),
        a4(s.row[12], k), a4(s.row[13], k), a4(s.row[14], k), a4(s.row[15], k),
        a4(s.row[16], k), a4(s.row[17], k), a4(s.row[18], k), a4(s.row[19], k),
        a4(s.row[20], k), a4(s.row[21], k), a4(s.row[22], k), a4(s.row[23], k),
        a4(s.row[24], k), a4(s.row[25], k), a4(s.row[26], k), a4(s.row[27], k),
        a4(s.row[28], k), a4(s.row[29], k), a4(s.row[30], k), a4(s.row[31], k));
}

fn a_rows1(s: ASource, k: u32) -> array<f32, 32> {
    var r: array<f32, 32>;
    for (var i = 0u; i < 32u; i++) {
        r[i] = a[s.row[i] + k * dims.sak];
    }
    return r;
}
