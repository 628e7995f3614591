#!/usr/bin/env bash
# Stock PyTorch under the interposer against a local cuda server (issue 10): how far
# `torch.zeros(1, device='cuda')` gets, and which call then fails by name; whether every
# cuBLAS/cuDNN function libtorch_cuda imports is in vendor_api/; what a dlsym costs.
#   bash bench/torch_driver_check.sh
# Needs: python3 with torch, msgpack, numpy, cuda-bindings and pyzmq; gcc; a GPU.
set -uo pipefail
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
d=/tmp/rrto-driver-check
lib=$d/lib
mkdir -p -m 700 "$d"
python3 rrto_ros/interposer/build.py --out "$lib" > /dev/null || exit 1
python3 -m rrto_ros.cli.server_main --bind tcp://127.0.0.1:5599 --backend cuda --lane-port -1 \
  --log-level WARNING > $d/server.log 2>&1 &
server=$!
python3 -m rrto_ros.cli.client_main --server tcp://127.0.0.1:5599 --mode pipelined \
  --agent-socket $d/agent.sock --log-level WARNING \
  > $d/client.log 2>&1 &
client=$!
trap 'kill $client $server 2>/dev/null' EXIT
sleep 4
echo "== torch under the interposer"
RRTO_AGENT_SOCKET=$d/agent.sock LD_PRELOAD="$lib/librrto_cuda.so" \
  timeout 120 python3 -c "
import torch
print('available', torch.cuda.is_available(), torch.cuda.device_count())
x = torch.zeros(1, device='cuda')
print('zeros', x.device, (x + 1).cpu())
" 2>&1 | tail -20
tail -3 $d/server.log $d/client.log
echo "== libtorch_cuda's cuBLAS / cuDNN imports that vendor_api/ lacks"
t=$(python3 -c 'import os, torch; print(os.path.dirname(torch.__file__))')/lib
nm -D --undefined-only "$t"/libtorch_cuda*.so | grep -oE ' (cublas|cudnn)\w+' | tr -d ' ' |
  sort -u > $d/imports.txt
grep -hv '^#' rrto_ros/interposer/vendor_api/*.txt | cut -f1 | sort -u > $d/ours.txt
echo "$(wc -l < $d/imports.txt) imports; missing:" \
  $(comm -23 $d/imports.txt $d/ours.txt)
echo "== ns per dlsym: real driver, then through the interposer"
prog=$d/driver_lookups
gcc -O1 -Wno-deprecated-declarations -o $prog test/c/driver_lookups.c -I /usr/local/cuda/include \
  -L /usr/local/cuda/lib64 -lcudart -ldl -Wl,-rpath,/usr/local/cuda/lib64
for pre in "" "$lib/librrto_cuda.so"; do
  LD_PRELOAD=$pre $prog bench libcuda.so.1 cuCtxGetCurrent
  LD_PRELOAD=$pre $prog bench libm.so.6 cos
done
