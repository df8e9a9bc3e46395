#!/usr/bin/env bash
# Checks that src/cpu_fast builds (and lints clean) for wasm32-unknown-unknown, without threads
# or x86 intrinsics. The crate as a whole does not build for wasm32 yet (getrandom needs its
# wasm_js feature), so this compiles the module alone in a scratch crate, with a stand-in for
# crate::Linear. Needs `rustup target add wasm32-unknown-unknown`.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
dir="${TMPDIR:-/tmp}/cpu-fast-wasm-check"
mkdir -p "$dir/src"
cat > "$dir/Cargo.toml" <<'TOML'
[package]
name = "cpu-fast-wasm-check"
version = "0.0.0"
edition = "2024"
rust-version = "1.85" # as the crate's Cargo.toml, so clippy applies the same lints
publish = false
[lib]
path = "src/lib.rs"
[workspace]
TOML
cat > "$dir/src/lib.rs" <<RS
//! Scratch crate: src/cpu_fast of wgpu-mlp with a stand-in Linear.
#![warn(missing_docs)]
/// Stand-in for wgpu_mlp::Linear.
pub struct Linear { k: usize, n: usize, w: Vec<f32>, b: Option<Vec<f32>> }
impl Linear {
    /// As wgpu_mlp::Linear::new.
    pub fn new(k: usize, n: usize, w: Vec<f32>, b: Option<Vec<f32>>) -> Result<Self, String> {
        Ok(Linear { k, n, w, b })
    }
    /// Input width.
    pub fn in_features(&self) -> usize { self.k }
    /// Output width.
    pub fn out_features(&self) -> usize { self.n }
    /// Weight [out, in].
    pub fn weight(&self) -> &[f32] { &self.w }
    /// Bias.
    pub fn bias(&self) -> Option<&[f32]> { self.b.as_deref() }
}
/// Doc links to the real crate's reference path resolve here.
pub mod cpu {}
#[path = "$repo/src/cpu_fast/mod.rs"]
pub mod cpu_fast;
RS
cd "$dir"
for flags in "" "-Ctarget-feature=+simd128"; do
  echo "== wasm32-unknown-unknown ${flags:-(no simd128)}"
  RUSTFLAGS="$flags -Dwarnings" cargo clippy --quiet --target wasm32-unknown-unknown --all-targets
  RUSTFLAGS="$flags -Dwarnings" cargo build --quiet --release --target wasm32-unknown-unknown
done
echo "== host: the module's tests in the scratch crate"
cargo test --quiet --release --lib 2>&1 | tail -3
