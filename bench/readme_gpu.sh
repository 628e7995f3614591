#!/usr/bin/env bash
# The README's two commands on the accelerator machine, from a fresh clone, with a carried
# wheelhouse instead of a package index (that machine reaches none), then the end-to-end
# tests on the cuda backend from the same venv. Writes logs to $1.
#   bash bench/readme_gpu.sh "$OUT" WHEELHOUSE_TAR_XZ
# The wheelhouse: python3.12 -m pip wheel -w .whl -r requirements.txt, packed with
# tar -cJf (carried paths are limited to 64 MiB).
set -uo pipefail
out=$1; tarball=$2
mkdir -p "$out" /tmp/wh
tar -xJf "$tarball" -C /tmp/wh
src=$PWD
rm -rf /tmp/fresh && mkdir /tmp/fresh
# A fresh copy of the tree as it travelled (the machine's .git may be older than the tree):
# nothing that a build or an earlier run left behind.
tar -C "$src" --exclude=./.git --exclude=./.venv --exclude=./build --exclude=./.wheelhouse \
  --exclude=./.whl --exclude=./rrto_ros/lib --exclude='*.egg-info' --exclude=__pycache__ \
  -cf - . | tar -C /tmp/fresh -xf -
cd /tmp/fresh
export PIP_FIND_LINKS=/tmp/wh/.whl PIP_NO_INDEX=1 PYTHONUNBUFFERED=1
{ echo "# $(date -u +%FT%TZ) $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader)"
  echo "# fresh copy of the tree at ${RRTO_COMMIT:-?} (no venv, no build),"\
       "PIP_FIND_LINKS=<wheelhouse> PIP_NO_INDEX=1, python3 = $(command -v python3)"
  echo '$ make demo'; make demo 2>&1; echo "# make demo exit code $?"
  echo '$ make test'; make test > "$out/readme_test_gpu.log" 2>&1; echo "# make test exit code $?"
  grep -E '^(FAILED|ERROR|SKIPPED|[0-9]+ (passed|failed))' "$out/readme_test_gpu.log"
} > "$out/readme_demo_gpu.log"
tail -30 "$out/readme_demo_gpu.log"
shift 2
if [ $# -gt 0 ]; then   # more tests on the cuda backend, from the README's venv
  PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 timeout 400 .venv/bin/python -m pytest --backend cuda -q -rs \
    "$@" 2>&1 | tee "$out/gpu_pytest_cuda.log" | tail -15
fi
if [ -n "${RRTO_TORCH_CHECK:-}" ]; then   # stock PyTorch under the interposer (issue 10)
  site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  PYTHONPATH="$site" timeout 300 bash bench/torch_driver_check.sh 2>&1 |
    tee "$out/torch_driver_check.log" | tail -20
fi
