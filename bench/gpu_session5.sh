#!/usr/bin/env bash
# Session 5's GPU evidence from the README's venv (built from a carried wheelhouse): the
# cuDNN library check, stock PyTorch models (bench/pytorch_gpu.py), and the cuda-backend
# end-to-end tests of what this session merged. Logs under $1.
#   bash bench/gpu_session5.sh "$OUT" .wheelhouse/whl.tar.xz PART
# PART: torch (the models) or tests (the pytest subset) or both.
set -uo pipefail
out=$1; tarball=$2; part=${3:-both}
mkdir -p "$out" /tmp/wh
export PIP_NO_INDEX=1 PYTHONUNBUFFERED=1
if [ ! -x .venv/bin/python ] || [ requirements.txt -nt .venv/.installed ]; then
  tar -xJf "$tarball" -C /tmp/wh
  PIP_FIND_LINKS=/tmp/wh/.whl make setup > "$out/setup.log" 2>&1 || { tail -30 "$out/setup.log"; exit 1; }
fi
make lib examples > /dev/null 2>&1
echo "# $(date -u +%FT%TZ) $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader)"
if [ "$part" != tests ]; then
  .venv/bin/python bench/cudnn_libs_check.py > "$out/cudnn_libs.log" 2>&1
  grep -c FAILS "$out/cudnn_libs.log"; grep -m3 "missing: \['" "$out/cudnn_libs.log"
  LOG=DEBUG bash bench/torch_under_rrto.sh "$out/conv" bench/cudnn_conv_probe.py
  tail -2 "$out/conv/app.log"; grep -m5 "cuDNN needs" "$out/conv/server.log"
  .venv/bin/python bench/pytorch_gpu.py --backend cuda --out "$out/pytorch_gpu.json" \
    --configs ${CONFIGS:-resnet18:224:off,resnet18:224:on} --modes ${MODES:-local,pipelined,replay} \
    --links ${LINKS:-loopback,edge} -n ${N:-8} -w ${W:-3} 2>&1 | grep '^\[pytorch_gpu\]' | cut -c1-300
fi
if [ "$part" != torch ]; then
  PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 timeout ${TEST_TIMEOUT:-300} .venv/bin/python -m pytest \
    --backend cuda -q -rfEs ${TESTS:-test/test_forwarding.py test/test_examples_e2e.py test/test_device_output.py} \
    > "$out/gpu_pytest_cuda.log" 2>&1
  tail -8 "$out/gpu_pytest_cuda.log"
fi
