#!/usr/bin/env bash
# The browser part of CI (called at the end of .ci/run; runs on its own too, as root on Debian):
# installs what is missing, builds the page's wasm module, runs the wasm-bindgen tests in
# headless Chromium on WebGPU, then the end-to-end page tests (the page, and the training panel
# against the native trajectories in e2e/fixtures/), and prints the .wasm size.
# A missing browser or no WebGPU is a failure, never a skip.
#
# Cached between runs where CI keeps $HOME/.cache and ~/.cargo: wasm-bindgen-cli, installed in
# ~/.cache/wbcli-$VERSION (rebuilt only when the pinned version changes), and the cargo registry.
set -euo pipefail
cd "$(dirname "$0")"
web=$PWD
root=$(cd .. && pwd)
t0=$(date +%s)
step() { echo "== web: $* ($(($(date +%s) - t0)) s)"; }

# ---------------------------------------------------------------- packages
need=()
for p in rustc-web cargo-web rust-web-src lld-22 chromium chromium-driver; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
if [ ${#need[@]} -gt 0 ]; then
  step "apt-get install ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi
[ -x /usr/bin/chromium ] || { echo "FAIL: no /usr/bin/chromium"; exit 1; }
[ -x /usr/bin/chromedriver ] || { echo "FAIL: no /usr/bin/chromedriver"; exit 1; }

# ---------------------------------------------------------------- wasm-bindgen-cli (cached)
WB=$(awk -F'"' '/^wasm-bindgen = /{print $2}' Cargo.toml | tr -d '=')
locked=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/version = |"/,""); print}' Cargo.lock)
[ "$WB" = "$locked" ] || { echo "FAIL: Cargo.toml pins wasm-bindgen $WB, Cargo.lock has $locked"; exit 1; }
WBROOT="$HOME/.cache/wbcli-$WB"
if [ "$("$WBROOT/bin/wasm-bindgen" --version 2>/dev/null)" != "wasm-bindgen $WB" ]; then
  step "cargo install wasm-bindgen-cli $WB (cached in $WBROOT from now on)"
  # Not --locked: its lock pins a crate version the registry lacks (see the recipe).
  cargo install -q wasm-bindgen-cli --version "$WB" --root "$WBROOT"
fi

# ---------------------------------------------------------------- the native CLI (for the summaries)
export WGPU_MLP_CLI="${WGPU_MLP_CLI:-$root/target/debug/wgpu-mlp}"
if [ ! -x "$WGPU_MLP_CLI" ]; then
  step "cargo build (the native CLI)"
  (cd "$root" && cargo build -q --bin wgpu-mlp)
fi

# ---------------------------------------------------------------- the wasm build and its tests
# Debian's Rust 1.96 rebuilds std for wasm32 (-Zbuild-std, allowed by RUSTC_BOOTSTRAP); its own
# target folder, apart from the native one (mixing them gives E0152).
export PATH="/usr/bin:$WBROOT/bin:$PATH" RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=wasm-ld-22
export CARGO_TARGET_DIR="$web/target/wasm"
F=(--release --target wasm32-unknown-unknown -Zbuild-std=std,panic_abort)

step "build the page (web/build.sh)"
./build.sh

step "wasm-bindgen tests in headless Chromium (chromedriver, webdriver.json)"
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner
export CHROMEDRIVER=/usr/bin/chromedriver
# SwiftShader compiles every kernel variant on the CPU: allow more than the default 20 s a test.
export WASM_BINDGEN_TEST_TIMEOUT=300
cargo test "${F[@]}"

step "web/message.js (node --test)"
node --test "$web/tests/message.test.mjs"

step "end-to-end page test (playwright-core, /usr/bin/chromium)"
cd e2e
if [ ! -d node_modules/playwright-core ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
node page.test.mjs
step "end-to-end training panel test (train.test.mjs: the native trajectory, fixtures/)"
node train.test.mjs
cd ..

raw=$(stat -c %s pkg/wgpu_mlp_web_bg.wasm)
gz=$(gzip -9 -c pkg/wgpu_mlp_web_bg.wasm | wc -c)
step "done: web/pkg/wgpu_mlp_web_bg.wasm is $raw bytes ($((raw / 1024)) KiB), $gz gzipped ($((gz / 1024)) KiB)"
