//! The `wgpu-mlp` command line. (Stub.)
fn main() {}
