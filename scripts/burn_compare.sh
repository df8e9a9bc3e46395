#!/usr/bin/env bash
# Side-by-side timing of one training step (the harness's `train` workload: 784 → 512 → 512 → 10,
# ReLU, cross entropy, SGD with momentum 0.9, batch uploaded and loss read back each step) in
# our GPU path (gpu-e2e and gpu-resident) and in burn 0.22's wgpu backend
# (scripts/burn-train-step), on the same adapter, alternating: each round runs both (a fresh
# process each, rotating which goes first) and notes the 1-minute load average before each.
# The summary gives, per batch, the median of the rounds' medians and their range.
#
# Usage: scripts/burn_compare.sh [ROUNDS=3] [RUNS=10]
#   OURS_BIN     our release binary (default target/release/wgpu-mlp; build it with
#                `cargo build --release --bin wgpu-mlp`)
#   BURN_BIN     the burn binary (default $BURN_TARGET/release/burn-train-step, built here
#                when missing, with CARGO_TARGET_DIR=$BURN_TARGET, outside the repository)
#   BURN_TARGET  default /work/scratch/burn-target
#   WGPU_BACKEND vulkan (default: lavapipe) or gl (llvmpipe; MESA_SHADER_CACHE_DISABLE=true is set)
#   BATCHES      default 64,1024
# Both sides run RUNS timed steps per batch (ours with --budget 0, so none is cut short) after
# their warm-up (ours --warmup 2 plus the harness's 0.3 s minimum; burn 3, which covers its
# autotuning: the warm-up steps are printed). Not run in CI.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-3}"
runs="${2:-10}"
ours="${OURS_BIN:-target/release/wgpu-mlp}"
burn_target="${BURN_TARGET:-/work/scratch/burn-target}"
burn="${BURN_BIN:-$burn_target/release/burn-train-step}"
batches="${BATCHES:-64,1024}"
export WGPU_BACKEND="${WGPU_BACKEND:-vulkan}"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
if [[ "$WGPU_BACKEND" == gl ]]; then export MESA_SHADER_CACHE_DISABLE=true; fi
if [[ ! -x "$ours" ]]; then
  echo "no binary at $ours: cargo build --release --bin wgpu-mlp (or set OURS_BIN)" >&2
  exit 1
fi
if [[ ! -x "$burn" ]]; then
  CARGO_TARGET_DIR="$burn_target" cargo build --quiet --release \
    --manifest-path scripts/burn-train-step/Cargo.toml
fi
out="$(mktemp)"
json="$(mktemp)"
trap 'rm -f "$out" "$json"' EXIT
echo "# $WGPU_BACKEND; ours: $ours; burn: $burn; $rounds rounds of $runs timed runs" >&2
for ((r = 0; r < rounds; r++)); do
  for ((i = 0; i < 2; i++)); do
    load="$(cut -d' ' -f1 /proc/loadavg)"
    if (((i + r) % 2 == 0)); then
      "$burn" --batch "$batches" --runs "$runs" --warmup 3 2> >(grep '^#' | sed 's/^/  burn /' >&2) |
        python3 -c '
import json, sys
for line in sys.stdin:
    r = json.loads(line)
    print("burn b%d %.4f %.4f %.4f %d %s" % (r["batch"], r["median_ms"], r["min_ms"], r["max_ms"], r["runs"], sys.argv[1]))
' "$load"
    else
      "$ours" bench --workload train --batch "$batches" --paths gpu-e2e,gpu-resident \
        --runs "$runs" --warmup 2 --budget 0 --json "$json" >/dev/null 2>&1
      python3 - "$json" "$load" <<'PY'
import json, sys
for rec in json.load(open(sys.argv[1]))["records"]:
    if rec.get("error"):
        sys.exit(f"ours {rec['path']} b{rec['batch']}: {rec['error']}")
    print(f"{rec['path']} b{rec['batch']} {rec['median_ms']:.4f} {rec['min_ms']:.4f} "
          f"{rec['max_ms']:.4f} {rec['runs']} {sys.argv[2]}")
PY
    fi
  done | tee -a "$out" | sed "s/^/round $r: /" >&2
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
python3 - "$out" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    imp, batch, med, lo, hi, n, load = line.split()
    rows.setdefault(batch, {}).setdefault(imp, []).append((float(med), float(load)))
print("| step | ours gpu-e2e ms: median (range) | ours gpu-resident | burn-wgpu | burn / ours e2e | load avg (range) |")
print("| --- | ---: | ---: | ---: | ---: | --- |")
for batch in sorted(rows, key=lambda b: int(b[1:])):
    cells, meds = [], {}
    for imp in ("gpu-e2e", "gpu-resident", "burn"):
        v = [m for m, _ in rows[batch].get(imp, [])]
        meds[imp] = statistics.median(v) if v else None
        cells.append(f"{meds[imp]:.4g} ({min(v):.4g}–{max(v):.4g})" if v else "–")
    loads = [l for imp in rows[batch].values() for _, l in imp]
    e2e, b = meds["gpu-e2e"], meds["burn"]
    ratio = f"{b / e2e:.2f}" if e2e and b else "–"
    print(f"| {batch} | {' | '.join(cells)} | {ratio} | {min(loads):.2f}–{max(loads):.2f} |")
PY
