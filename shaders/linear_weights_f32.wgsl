// linear.wgsl's weight texture for WeightFormat::F32. A read-only storage texture rather than a
// sampled one: llvmpipe's image loads skip the per-lane mip-level lookups of texel fetches (gemm
// 1024 on lavapipe ≈ 1.25× faster, docs/PERFORMANCE.md). The F16 twin is linear_weights_f16.wgsl.
@group(0) @binding(2) var wt: texture_storage_2d<rgba32float, read>;
