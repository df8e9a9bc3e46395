#!/usr/bin/env bash
# GPU checks on a lent NVIDIA machine (the workplace's `device` tool), in one call well under
# 10 minutes. That machine has no Rust toolchain and no network, so everything is built here and
# carried:
#
#   here:   scripts/gpu-check.sh prepare
#           (release binary + GPU test executables into .gpucheck/, Vulkan/EGL loader .debs into .gl/)
#   there:  run with carry [".gpucheck", ".gl"] and the command
#           bash scripts/gpu-check.sh run
#           It prints the adapters, runs tests/gpu.rs and tests/reliability.rs on the NVIDIA
#           adapter, the full benchmark plus gemm 4096, and leaves JSON, the plot and the logs
#           in $OUT.
set -euo pipefail
cd "$(dirname "$0")/.."

case "${1:-}" in
prepare)
  mkdir -p .gpucheck .gl
  grep -qx '/.gpucheck/' .git/info/exclude 2>/dev/null || echo '/.gpucheck/' >> .git/info/exclude
  grep -qx '/.gl/' .git/info/exclude 2>/dev/null || echo '/.gl/' >> .git/info/exclude
  cargo build --release --bin wgpu-mlp
  cp target/release/wgpu-mlp .gpucheck/
  pwd > .gpucheck/manifest_dir   # the test executables look for tests/data under this path
  # Test executables: cargo prints their paths as JSON; copy the two GPU suites.
  cargo test --release --no-run --test gpu --test reliability --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] == ["test"]:
        print(m["target"]["name"], m["executable"])' |
    while read -r name exe; do cp "$exe" ".gpucheck/test-$name"; done
  # The tests read fixtures from tests/data relative to the crate root: that folder travels with
  # the working tree. Vulkan and EGL loaders for the device image (see the device tool's README).
  o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
  mkdir -p /tmp/amd64/partial
  apt-get $o update -qq
  (cd .gl && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
  # The device tool carries at most 64 MiB: strip the debug info (≈ 44 MiB → ≈ 10 MiB each).
  strip .gpucheck/wgpu-mlp .gpucheck/test-*
  du -ch .gpucheck .gl | tail -n 1
  ;;
run)
  for f in .gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
  export VK_DRIVER_FILES="${VK_DRIVER_FILES:-/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json}"
  export WGPU_BACKEND=vulkan
  out="${OUT:-/tmp/gpucheck-out}"
  mkdir -p "$out"
  nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv | tee "$out/gpu.txt"
  ./.gpucheck/wgpu-mlp adapters | tee -a "$out/gpu.txt"
  # The test executables find tests/data through the CARGO_MANIFEST_DIR baked in at build time:
  # point that path at this copy of the tree.
  baked=$(cat .gpucheck/manifest_dir)
  if [ ! -e "$baked" ]; then mkdir -p "$(dirname "$baked")"; ln -s "$PWD" "$baked"; fi
  for t in .gpucheck/test-*; do
    timeout 240 "$t" --test-threads 1 2>&1 | tail -n 30 | tee -a "$out/tests.log"
  done
  timeout 300 ./.gpucheck/wgpu-mlp bench --full --budget 10 \
    --json "$out/bench-gpu.json" --plot "$out/throughput-gpu.svg" | tee "$out/bench.md"
  timeout 120 ./.gpucheck/wgpu-mlp bench --workload gemm --sizes 4096 --paths gpu-e2e,gpu-resident,cpu-fast \
    --json "$out/gemm4096.json" | tee -a "$out/bench.md"
  ;;
*)
  echo "usage: scripts/gpu-check.sh prepare|run" >&2
  exit 2
  ;;
esac
