#!/usr/bin/env bash
# GPU checks on a lent NVIDIA machine (the workplace's `device` tool), in one call well under
# 10 minutes. That machine has no Rust toolchain and no network, so everything is built here and
# carried:
#
#   here:   scripts/gpu-check.sh prepare
#           (release binary + GPU test executables into .gpucheck/, Vulkan/EGL loader .debs into .gl/)
#   there:  run with carry [".gpucheck", ".gl"] and the command
#           bash scripts/gpu-check.sh run
#           It prints the adapters and the card's cuBLAS f32 ceiling (PyTorch, TF32 off), runs
#           tests/gpu.rs, reliability.rs, app.rs (own device, encode, async) and models.rs (real
#           PyTorch models) on the NVIDIA adapter, the full benchmark plus
#           gemm 4096 with the default kernels, then each kernel alone (`--kernel`) and the tiled
#           kernel with runtime checks; JSON, the plot, the sweep and the logs land in $OUT.
#           About 2 minutes on an H100 (110 s measured), plus the machine's start.
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
  # Test executables: cargo prints their paths as JSON; copy the GPU suites (≈ 10 MiB each once
  # stripped: four of them, the binary and the loaders stay under the 64 MiB the tool carries).
  cargo test --release --no-run --test gpu --test reliability --test app --test models \
    --message-format=json 2>/dev/null |
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
  bin=./.gpucheck/wgpu-mlp
  nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv | tee "$out/gpu.txt"
  nproc | sed 's/^/host threads: /' | tee -a "$out/gpu.txt"
  $bin adapters | tee -a "$out/gpu.txt"
  # The card's practical FP32 ceiling: PyTorch's f32 matmul with TF32 off (cuBLAS SGEMM).
  timeout 60 python3 - <<'PY' 2>&1 | tee -a "$out/gpu.txt" || true
import torch
torch.backends.cuda.matmul.allow_tf32 = False
for n in (2048, 4096):
    a = torch.randn(n, n, device="cuda"); b = torch.randn(n, n, device="cuda")
    for _ in range(3): a @ b
    torch.cuda.synchronize()
    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    ts = []
    for _ in range(20):
        s.record(); a @ b; e.record(); torch.cuda.synchronize(); ts.append(s.elapsed_time(e))
    ts.sort(); m = ts[len(ts) // 2]
    print(f"torch fp32 (no tf32) gemm {n}: median {m:.3f} ms = {2 * n**3 / m / 1e9:.1f} TFLOP/s")
PY
  # The test executables find tests/data through the CARGO_MANIFEST_DIR baked in at build time:
  # point that path at this copy of the tree.
  baked=$(cat .gpucheck/manifest_dir)
  if [ ! -e "$baked" ]; then mkdir -p "$(dirname "$baked")"; ln -s "$PWD" "$baked"; fi
  # The CLI tests run the binary from its baked target path.
  mkdir -p target/release && cp "$bin" target/release/wgpu-mlp
  for t in .gpucheck/test-*; do
    timeout 150 "$t" 2>&1 | tail -n 30 | tee -a "$out/tests.log" || true
  done
  # The default (auto) kernels: the full benchmark against the CPU baseline on all host threads,
  # and gemm 4096.
  timeout 200 $bin bench --full --budget 3 --paths cpu-fast,gpu-e2e,gpu-resident \
    --json "$out/bench-gpu.json" --plot "$out/throughput-gpu.svg" > "$out/bench.md" 2>&1 || true
  timeout 90 $bin bench --workload gemm --sizes 4096 --paths cpu-fast,gpu-e2e,gpu-resident \
    --budget 3 --json "$out/gemm4096.json" >> "$out/bench.md" 2>&1 || true
  # Each kernel on its own, resident (the kernels' speed without transfers), then the tiled
  # kernel built with wgpu's runtime checks, for what they cost.
  sweep="$out/sweep.md"
  bench() { # title, then bench arguments
    echo "## $1" >> "$sweep"; shift
    timeout 60 $bin bench --paths gpu-resident --budget 2 --warmup 2 "$@" 2>&1 |
      grep -E '^\| (gemm|mnist|wide)' >> "$sweep" || echo "(failed)" >> "$sweep"
  }
  for k in gemv tiled64 tiled128 blocked windowed; do
    bench "$k" --kernel $k --workload gemm,mnist,wide --sizes 1024,4096 --batch 1,64,1024
  done
  export WGPU_MLP_RUNTIME_CHECKS=1
  bench "tiled64, runtime checks on" --kernel tiled64 --workload gemm --sizes 4096
  unset WGPU_MLP_RUNTIME_CHECKS
  cat "$sweep"
  grep -E '^\| |^- GPU' "$out/bench.md" | grep -v -- '---' | head -n 50
  ;;
*)
  echo "usage: scripts/gpu-check.sh prepare|run" >&2
  exit 2
  ;;
esac
