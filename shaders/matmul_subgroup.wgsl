// matmul.wgsl's rows of A on devices with subgroups (of at least 8): lane l of each subgroup
// loads rows l and l + 8 of the workgroup's block, and subgroupBroadcast hands each to every
// lane (one register permute on llvmpipe): 2 rows loaded per lane instead of 16, as the
// windowed kernel shares x (docs/KERNELS.md).

struct Ids {
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(subgroup_invocation_id) lane: u32,
}

// Where this lane's two rows start in A (clamped to the last row).
struct ASource {
    lo: u32,
    hi: u32,
}

fn a_source(ids: Ids, r0: u32) -> ASource {
    let l = ids.lane % 8u;
    let last = dims.m - 1u;
    return ASource(min(r0 + l, last) * dims.sam, min(r0 + l + 8u, last) * dims.sam);
}

fn a4(row: u32, k: u32) -> vec4<f32> {
    return vec4<f32>(a[row + k * dims.sak], a[row + (k + 1u) * dims.sak],
                     a[row + (k + 2u) * dims.sak], a[row + (k + 3u) * dims.sak]);
}

// Steps k..k+3 of the block's 16 rows.
fn a_rows4(s: ASource, k: u32) -> array<vec4<f32>, 16> {
    let lo = a4(s.lo, k);
    let hi = a4(s.hi, k);
    return array<vec4<f32>, 16>(
        subgroupBroadcast(lo, 0u), subgroupBroadcast(lo, 1u), subgroupBroadcast(lo, 2u),
        subgroupBroadcast(lo, 3u), subgroupBroadcast(lo, 4u), subgroupBroadcast(lo, 5u),
        subgroupBroadcast(lo, 6u), subgroupBroadcast(lo, 7u),
        subgroupBroadcast(hi, 0u), subgroupBroadcast(hi, 1u), subgroupBroadcast(hi, 2u),
        subgroupBroadcast(hi, 3u), subgroupBroadcast(hi, 4u), subgroupBroadcast(hi, 5u),
        subgroupBroadcast(hi, 6u), subgroupBroadcast(hi, 7u));
}

// Step k of the block's 16 rows.
fn a_rows1(s: ASource, k: u32) -> array<f32, 16> {
    let lo = a[s.lo + k * dims.sak];
    let hi = a[s.hi + k * dims.sak];
    return array<f32, 16>(
        subgroupBroadcast(lo, 0u), subgroupBroadcast(lo, 1u), subgroupBroadcast(lo, 2u),
        subgroupBroadcast(lo, 3u), subgroupBroadcast(lo, 4u), subgroupBroadcast(lo, 5u),
        subgroupBroadcast(lo, 6u), subgroupBroadcast(lo, 7u),
        subgroupBroadcast(hi, 0u), subgroupBroadcast(hi, 1u), subgroupBroadcast(hi, 2u),
        subgroupBroadcast(hi, 3u), subgroupBroadcast(hi, 4u), subgroupBroadcast(hi, 5u),
        subgroupBroadcast(hi, 6u), subgroupBroadcast(hi, 7u));
}
