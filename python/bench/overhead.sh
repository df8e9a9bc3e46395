#!/usr/bin/env bash
# The binding's overhead: overhead.rs (the Rust API) and overhead.py (the same calls from Python
# through the installed wheel) in fresh processes, alternated ROUNDS times, on the adapter
# WGPU_BACKEND picks. Needs a release wheel installed in PYTHON's environment:
#   maturin build --release -m python/Cargo.toml && pip install python/target/wheels/wgpu_mlp-*.whl
# Usage: python/bench/overhead.sh [ROUNDS] [CALLS] (defaults 3, 200).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
rounds="${1:-3}"
calls="${2:-200}"
PYTHON="${PYTHON:-python3}"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
model="$(mktemp -d)/mnist.safetensors"
(cd "$here/.." && cargo build -q --release --example overhead)
rust="${CARGO_TARGET_DIR:-$here/../target}/release/examples/overhead"
for r in $(seq "$rounds"); do
  echo "# round $r"
  "$rust" "$model" "$calls"
  "$PYTHON" "$here/overhead.py" "$model" "$calls"
done
