#!/usr/bin/env bash
# The Python package in CI (called by .ci/run): builds the abi3 wheel with maturin, installs it
# into a fresh venv with the test requirements, and runs pytest against the installed wheel on
# lavapipe (Vulkan), then the GPU-running tests again on llvmpipe (GL). pytest's exit 5 (no test
# collected) is a failure, as is a wheel that is not the one imported.
#
# No --locked: python/Cargo.lock follows the main crate, whose dependencies other branches change.
# Cached between runs where CI keeps $HOME/.cache: maturin's venv and the Cargo target folder
# (the dev profile: tests need correctness, not speed, and it builds in a fraction of release's
# time; python/README.md has the measured figures).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/wgpu-mlp-python"
export CARGO_TARGET_DIR="$cache/target"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
MATURIN=1.16.0
REQS=(numpy==2.4.6 pytest==9.2.0 "dask[distributed]==2026.8.0")

t0=$SECONDS
step() { echo "== python: $* (at $((SECONDS - t0)) s)"; }

tools="$cache/maturin-$MATURIN"
if [ ! -x "$tools/bin/maturin" ]; then
  step "maturin $MATURIN into $tools (cached from now on)"
  python3 -m venv "$tools"
  "$tools/bin/pip" install -q "maturin==$MATURIN"
fi

step "maturin build (dev profile)"
wheels="$cache/wheels"
rm -rf "$wheels"
"$tools/bin/maturin" build -q --profile dev --strip --out "$wheels" -m "$here/Cargo.toml"
wheel=$(ls "$wheels"/wgpu_mlp-*-abi3-*.whl)
echo "built $(basename "$wheel") ($(du -k "$wheel" | cut -f1) KiB)"

step "a fresh venv with the wheel and ${REQS[*]}"
venv="$(mktemp -d)/venv"
trap 'rm -rf "$(dirname "$venv")"' EXIT
python3 -m venv "$venv"
"$venv/bin/pip" install -q "$wheel" "${REQS[@]}"
# The tests must import the installed wheel, never the source tree.
where=$(cd / && "$venv/bin/python" -c 'import wgpu_mlp, os; print(os.path.dirname(wgpu_mlp.__file__))')
case "$where" in
  "$venv"/*) echo "wgpu_mlp imported from $where" ;;
  *) echo "FAIL: wgpu_mlp imported from $where, not the venv"; exit 1 ;;
esac

run_pytest() {
  local rc=0
  (cd "$here" && "$venv/bin/python" -m pytest -q -p no:cacheprovider "$@") || rc=$?
  if [ "$rc" -eq 5 ]; then
    echo "FAIL: pytest collected no tests ($*)"
    exit 1
  fi
  [ "$rc" -eq 0 ] || { echo "FAIL: pytest exited $rc ($*)"; exit "$rc"; }
}

step "pytest on lavapipe (Vulkan)"
WGPU_BACKEND=vulkan run_pytest tests

step "the tests that run kernels, on llvmpipe (GL)"
WGPU_BACKEND=gl run_pytest tests/test_load.py tests/test_inputs.py tests/test_from_torch.py -k "gpu or structures or outputs"
# Threads sharing one device, and a lost device replaced: GL serialises its contexts differently.
WGPU_BACKEND=gl run_pytest tests/test_threads.py

step "done"
