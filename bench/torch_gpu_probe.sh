#!/usr/bin/env bash
# Builds the README's venv from a carried wheelhouse (no index on the accelerator machine),
# then runs bench/pytorch_gpu.py from it. Writes $1/pytorch_gpu.json and the log.
#   bash bench/torch_gpu_probe.sh "$OUT" .wheelhouse/whl.tar.xz [pytorch_gpu.py options]
set -uo pipefail
out=$1; tarball=$2; shift 2
mkdir -p "$out" /tmp/wh
tar -xJf "$tarball" -C /tmp/wh
export PIP_FIND_LINKS=/tmp/wh/.whl PIP_NO_INDEX=1 PYTHONUNBUFFERED=1
make setup lib > "$out/setup.log" 2>&1 || { tail -30 "$out/setup.log"; exit 1; }
.venv/bin/python -c 'import torch, torchvision; print("torch", torch.__version__, torchvision.__version__)'
.venv/bin/python bench/pytorch_gpu.py --backend cuda --out "$out/pytorch_gpu.json" "$@" 2>&1 |
  tee "$out/pytorch_gpu.log" | grep -v '^\[rrto-server\] session .*LIBCALL failed' | tail -60
