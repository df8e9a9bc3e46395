#!/usr/bin/env bash
# Side-by-side timing of the fast CPU path, numpy/OpenBLAS and matrixmultiply on the workloads of
# docs/CPU.md. The machine is shared and noisy, so the implementations alternate:
# each round runs every implementation once (a fresh process, BUDGET seconds per workload), in
# a rotating order; the summary gives, per workload and implementation, the median of the
# rounds' medians and their range.
#
# Usage: scripts/cpu_fast_compare.sh [ROUNDS=7] [BUDGET=0.7] [extra cpu_fast_bench args...]
# Needs a venv with numpy at $NUMPY_PY (default /work/venv-np/bin/python).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-7}"
budget="${2:-0.7}"
shift 2 || true
py="${NUMPY_PY:-/work/venv-np/bin/python}"
cargo build --quiet --release --example cpu_fast_bench
bench=target/release/examples/cpu_fast_bench
out="$(mktemp)"
impls=(fast numpy mm)
for ((r = 0; r < rounds; r++)); do
  for ((i = 0; i < ${#impls[@]}; i++)); do
    imp="${impls[(i + r) % ${#impls[@]}]}"
    case "$imp" in
      fast) "$bench" --budget "$budget" "$@" ;;
      numpy) "$py" scripts/cpu_fast_numpy.py --budget "$budget" ;;
      mm) "$bench" --impl mm --budget "$budget" ;;
    esac
  done | tee -a "$out" | sed "s/^/round $r: /" >&2
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
python3 - "$out" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    imp, wl, med, lo, hi, n = line.split()
    rows.setdefault(wl, {}).setdefault(imp, []).append(float(med))
order = ["mnist-b1", "mnist-b64", "mnist-b1024", "wide-b1024"]
imps = sorted({i for w in rows.values() for i in w}, key=lambda s: (not s.startswith("fast"), s != "numpy", s))
print("| workload | " + " | ".join(f"{i} median (range) ms" for i in imps) + " | fast / numpy |")
print("| --- | " + " | ".join("---:" for _ in imps) + " | ---: |")
for wl in order:
    if wl not in rows:
        continue
    cells, meds = [], {}
    for i in imps:
        v = rows[wl].get(i)
        if not v:
            cells.append("–")
            continue
        meds[i] = statistics.median(v)
        cells.append(f"{meds[i]:.4g} ({min(v):.4g}–{max(v):.4g})")
    fast = next((meds[i] for i in meds if i.startswith("fast")), None)
    ratio = f"{fast / meds['numpy']:.2f}" if fast and "numpy" in meds else "–"
    print(f"| {wl} | " + " | ".join(cells) + f" | {ratio} |")
PY
rm -f "$out"
