#!/usr/bin/env bash
# Side-by-side timing of one training step (the harness's `train` workload) on the fast CPU path
# and in PyTorch on the CPU, alternating: each round runs both (a fresh process each, rotating
# which goes first) and notes the 1-minute load average before each; the summary gives, per
# batch, the median of the rounds' medians and their range. Both run on THREADS threads
# (`bench --threads`, `torch.set_num_threads`), one per core by default.
#
# Usage: scripts/train_compare.sh [ROUNDS=5] [RUNS=20] [THREADS=nproc]
# Needs PyTorch at $TORCH_PY (default /opt/torchvenv/bin/python). Not run in CI.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-5}"
runs="${2:-20}"
py="${TORCH_PY:-/opt/torchvenv/bin/python}"
threads="${3:-$(nproc)}"
cargo build --quiet --release
out="$(mktemp)"
json="$(mktemp)"
"$py" scripts/train_step_torch.py --config --batch 1 --runs 1 --threads "$threads" | grep '^#' >&2
for ((r = 0; r < rounds; r++)); do
  for ((i = 0; i < 2; i++)); do
    load="$(cut -d' ' -f1 /proc/loadavg)"
    if (((i + r) % 2 == 0)); then
      target/release/wgpu-mlp bench --workload train --batch 64,1024 --paths cpu-fast \
        --threads "$threads" --runs "$runs" --json "$json" >/dev/null 2>&1
      python3 - "$json" "$load" <<'PY'
import json, sys
for rec in json.load(open(sys.argv[1]))["records"]:
    print(f"ours train-b{rec['batch']} {rec['median_ms']:.4f} {rec['min_ms']:.4f} "
          f"{rec['max_ms']:.4f} {rec['runs']} {sys.argv[2]}")
PY
    else
      "$py" scripts/train_step_torch.py --threads "$threads" --runs "$runs" | sed "s/\$/ $load/"
    fi
  done | tee -a "$out" | sed "s/^/round $r: /" >&2
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
python3 - "$out" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    imp, wl, med, lo, hi, n, load = line.split()
    rows.setdefault(wl, {}).setdefault(imp, []).append((float(med), float(load)))
print("| step | ours median (range) ms | PyTorch median (range) ms | ours / PyTorch | load avg (range) |")
print("| --- | ---: | ---: | ---: | --- |")
for wl in sorted(rows, key=lambda w: int(w.split("-b")[1])):
    cells, meds = [], {}
    for imp in ("ours", "torch"):
        v = [m for m, _ in rows[wl].get(imp, [])]
        meds[imp] = statistics.median(v) if v else None
        cells.append(f"{meds[imp]:.4g} ({min(v):.4g}–{max(v):.4g})" if v else "–")
    loads = [l for imp in rows[wl].values() for _, l in imp]
    ratio = f"{meds['ours'] / meds['torch']:.2f}" if meds["ours"] and meds["torch"] else "–"
    print(f"| {wl} | {cells[0]} | {cells[1]} | {ratio} | {min(loads):.2f}–{max(loads):.2f} |")
PY
rm -f "$out" "$json"
