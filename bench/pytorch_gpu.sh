#!/usr/bin/env bash
# Stock PyTorch on the accelerator machine from the README's venv (built from a carried
# wheelhouse: that machine reaches no package index), and the cuda-backend tests of the
# library forwarding. Logs under $1.
#   bash bench/pytorch_gpu.sh "$OUT" .wheelhouse/whl.tar.xz [PART]
# PART: torch (bench/pytorch_gpu.py over CONFIGS x MODES x LINKS, and the cuDNN probe),
# tests (the pytest files in TESTS), or both (the default).
# The wheelhouse: python3.12 -m pip wheel -w .whl -r requirements.txt pip, then
# tar -cf - .whl | xz -T1 -6 > .wheelhouse/whl.tar.xz (carried paths: 64 MiB at most).
# pytorch_gpu.json: CONFIGS=resnet18:224:off LINKS=loopback,edge;
# pytorch_gpu_replay.json: CONFIGS=mlp:32:off,resnet18:224:off MODES=local,replay N=10 W=4.
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
  timeout ${TORCH_TIMEOUT:-400} .venv/bin/python bench/pytorch_gpu.py --backend cuda \
    --out "$out/pytorch_gpu.json" --configs ${CONFIGS:-resnet18:224:off,resnet18:224:on} \
    --modes ${MODES:-local,pipelined,replay} --links ${LINKS:-loopback,edge} \
    -n ${N:-8} -w ${W:-3} 2>&1 | grep '^\[pytorch_gpu\]' | cut -c1-300
  .venv/bin/python bench/cudnn_libs_check.py > "$out/cudnn_libs.log" 2>&1
  TMO=40 LOG=DEBUG bash bench/torch_under_rrto.sh "$out/conv" bench/cudnn_conv_probe.py
  tail -3 "$out/conv/app.log"; grep -m5 "cuDNN needs" "$out/conv/server.log"
fi
if [ "$part" != torch ]; then
  PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 timeout ${TEST_TIMEOUT:-300} .venv/bin/python -m pytest \
    --backend cuda -q -rfEs ${TESTS:-test/test_forwarding.py test/test_runtime_coverage.py} \
    > "$out/gpu_pytest_cuda.log" 2>&1
  tail -4 "$out/gpu_pytest_cuda.log"
fi
