#!/usr/bin/env bash
# Builds the page's wasm module: web/pkg/ (wgpu_mlp_web.js + wgpu_mlp_web_bg.wasm), then
# `python3 -m http.server -d web 8000` serves the page at http://localhost:8000/.
#
# Needs Debian's rustc-web (Rust 1.96 with the std sources, to rebuild std for
# wasm32-unknown-unknown), lld-22 and wasm-bindgen-cli at the version pinned in Cargo.toml:
#   apt-get install -y rustc-web cargo-web rust-web-src lld-22
#   cargo install wasm-bindgen-cli --version 0.2.130 --root ~/.cache/wbcli-0.2.130
# (web/ci.sh installs whatever is missing, then runs the browser tests too.)
set -euo pipefail
cd "$(dirname "$0")"

# Debian's 1.96 ahead of rustup's proxies; it accepts -Zbuild-std with RUSTC_BOOTSTRAP.
export PATH="/usr/bin:$PATH" RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER="${CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER:-wasm-ld-22}"
# Its own target folder: mixing toolchains or linker settings in one gives E0152.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target/wasm}"
WB=$(awk -F'"' '/^wasm-bindgen = /{print $2}' Cargo.toml | tr -d '=')
export PATH="$HOME/.cache/wbcli-$WB/bin:$PATH"
command -v wasm-bindgen >/dev/null || {
  echo "wasm-bindgen $WB not found: cargo install wasm-bindgen-cli --version $WB --root ~/.cache/wbcli-$WB" >&2
  exit 1
}

cargo build --release --lib --target wasm32-unknown-unknown -Zbuild-std=std,panic_abort
# Without the name section (function names: half the .wasm); a panic still reports its message.
wasm-bindgen --target web --no-typescript --remove-name-section --out-dir pkg \
  "$CARGO_TARGET_DIR/wasm32-unknown-unknown/release/wgpu_mlp_web.wasm"
raw=$(stat -c %s pkg/wgpu_mlp_web_bg.wasm)
gz=$(gzip -9 -c pkg/wgpu_mlp_web_bg.wasm | wc -c)
echo "web/pkg/wgpu_mlp_web_bg.wasm: $raw bytes ($((raw / 1024)) KiB), gzip -9: $gz bytes ($((gz / 1024)) KiB)"
