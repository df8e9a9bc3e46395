// matmul.wgsl's rows of A on devices with subgroups (of at least 8): lane l of each subgroup
// loads rows l, l + 8, l + 16 and l + 24 of the workgroup's block, and subgroupBroadcast hands
// each to every lane (one register permute on llvmpipe): 4 rows loaded per lane instead of 32,
// as the windowed kernel shares x (docs/KERNELS.md).

struct Ids {
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(subgroup_invocation_id) lane: u32,
}

// Where this lane's four rows start in A (clamped to the last row).
struct ASource {
    row: vec4<u32>,
}

fn a_source(ids: Ids, r0: u32) -> ASource {
    let first = vec4<u32>(r0 + ids.lane % 8u) + vec4<u32>(0u, 8u, 16u, 24u);
    return ASource(min(first, vec4<u32>(dims.m - 1u)) * dims.sam);
}

fn a4(row: u32, k: u32) -> vec4<f32> {
    return vec4<f32>(a[row + k * dims.sak], a[row + (k + 1u) * dims.sak],
                     a[row + (k + 2u) * dims.sak], a[row + (k + 3u) * dims.sak]);
}

// Steps k..k+3 of the block's 32 rows.
fn a_rows4(s: ASource, k: u32) -> array<vec4<f32>, 32> {
    let q0 = a4(s.row.x, k);
    let q1 = a4(s.row.y, k);
    let q2 = a4(s.row.z, k);
    let q3 = a4(s.row.w, k);
    return array<vec4<f32>, 32>(
        subgroupBroadcast(q0, 0u), subgroupBroadcast(q0, 1u), subgroupBroadcast(q0, 2u), subgroupBroadcast(q0, 3u),
        subgroupBroadcast(q0, 4u), subgroupBroadcast(q0, 5u), subgroupBroadcast(q0, 6u), subgroupBroadcast(q0, 7u),
        subgroupBroadcast(q1, 0u), subgroupBroadcast(q1, 1u), subgroupBroadcast(q1, 2u), subgroupBroadcast(q1, 3u),
        subgroupBroadcast(q1, 4u), subgroupBroadcast(q1, 5u), subgroupBroadcast(q1, 6u), subgroupBroadcast(q1, 7u),
        subgroupBroadcast(q2, 0u), subgroupBroadcast(q2, 1u), subgroupBroadcast(q2, 2u), subgroupBroadcast(q2, 3u),
        subgroupBroadcast(q2, 4u), subgroupBroadcast(q2, 5u), subgroupBroadcast(q2, 6u), subgroupBroadcast(q2, 7u),
        subgroupBroadcast(q3, 0u), subgroupBroadcast(q3, 1u), subgroupBroadcast(q3, 2u), subgroupBroadcast(q3, 3u),
        subgroupBroadcast(q3, 4u), subgroupBroadcast(q3, 5u), subgroupBroadcast(q3, 6u), subgroupBroadcast(q3, 7u));
}

// Step k of the block's 32 rows.
fn a_rows1(s: ASource, k: u32) -> array<f32, 32> {
    let q0 = a[s.row.x + k * dims.sak];
    let q1 = a[s.row.y + k * dims.sak];
    let q2 = a[s.row.z + k * dims.sak];
    let q3 = a[s.row.w + k * dims.sak];
    return array<f32, 32>(
        subgroupBroadcast(q0, 0u), subgroupBroadcast(q0, 1u), subgroupBroadcast(q0, 2u), subgroupBroadcast(q0, 3u),
        subgroupBroadcast(q0, 4u), subgroupBroadcast(q0, 5u), subgroupBroadcast(q0, 6u), subgroupBroadcast(q0, 7u),
        subgroupBroadcast(q1, 0u), subgroupBroadcast(q1, 1u), subgroupBroadcast(q1, 2u), subgroupBroadcast(q1, 3u),
        subgroupBroadcast(q1, 4u), subgroupBroadcast(q1, 5u), subgroupBroadcast(q1, 6u), subgroupBroadcast(q1, 7u),
        subgroupBroadcast(q2, 0u), subgroupBroadcast(q2, 1u), subgroupBroadcast(q2, 2u), subgroupBroadcast(q2, 3u),
        subgroupBroadcast(q2, 4u), subgroupBroadcast(q2, 5u), subgroupBroadcast(q2, 6u), subgroupBroadcast(q2, 7u),
        subgroupBroadcast(q3, 0u), subgroupBroadcast(q3, 1u), subgroupBroadcast(q3, 2u), subgroupBroadcast(q3, 3u),
        subgroupBroadcast(q3, 4u), subgroupBroadcast(q3, 5u), subgroupBroadcast(q3, 6u), subgroupBroadcast(q3, 7u));
}
