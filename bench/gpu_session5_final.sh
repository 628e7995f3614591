#!/usr/bin/env bash
# Session 5's last GPU run (a short budget), from the README's venv: PyTorch in replay
# (mlp, resnet18 with cuDNN off), the cuDNN convolution probe, the forwarding tests on cuda.
#   bash bench/gpu_session5_final.sh "$OUT" .wheelhouse/whl.tar.xz
set -uo pipefail
out=$1; tarball=$2
mkdir -p "$out" /tmp/wh
export PIP_NO_INDEX=1 PYTHONUNBUFFERED=1
if [ ! -x .venv/bin/python ]; then
  tar -xJf "$tarball" -C /tmp/wh
  PIP_FIND_LINKS=/tmp/wh/.whl make setup > "$out/setup.log" 2>&1 || { tail -30 "$out/setup.log"; exit 1; }
fi
make lib examples > /dev/null 2>&1
echo "# $(date -u +%FT%TZ) $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader)"
timeout 140 .venv/bin/python bench/pytorch_gpu.py --backend cuda --out "$out/pytorch_gpu_replay.json" \
  --configs mlp:32:off,resnet18:224:off --modes local,replay --links loopback -n 10 -w 4 2>&1 |
  grep '^\[pytorch_gpu\]' | cut -c1-300
TMO=40 LOG=DEBUG bash bench/torch_under_rrto.sh "$out/conv" bench/cudnn_conv_probe.py
tail -3 "$out/conv/app.log"; grep -c '\] cudnn' "$out/conv/server.log"
PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 timeout 60 .venv/bin/python -m pytest --backend cuda -q -rfEs \
  test/test_forwarding.py test/test_runtime_coverage.py > "$out/gpu_pytest_cuda.log" 2>&1
tail -4 "$out/gpu_pytest_cuda.log"
