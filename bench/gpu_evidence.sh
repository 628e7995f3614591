#!/usr/bin/env bash
# Everything the accelerator machine has to show, in one run: the test suite on the cuda
# backend and the benchmarks. Writes logs and results to $1 (default bench/results/gpu).
#   bash bench/gpu_evidence.sh "$OUT" [all|tests|bench]
# (tests: test suite, node demo, forwarding; bench: the other benchmarks.)
# Needs: python3 with numpy, msgpack, cuda-bindings, pyzmq, pytest; nvcc; a GPU. With the
# ROS 2 wheels installed (rclpy...), the node tests and the node-based demo run too.
set -uo pipefail
out=${1:-bench/results/gpu}
part=${2:-all}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$out/gpu.txt"
python3 rrto_ros/interposer/build.py --out rrto_ros/lib > /dev/null
make -s -C examples OUT="$PWD/build/examples"
step() { echo "== $*"; }
want() { [ "$part" = all ] || [ "$part" = "$1" ]; }
ros_ignore=()
python3 -c 'import rclpy' 2>/dev/null ||
  ros_ignore=(--ignore=test/test_nodes.py --ignore=test/test_launch_demo.py)
if want tests; then
step tests
timeout 900 python3 -m pytest test -v --backend cuda -p no:cacheprovider "${ros_ignore[@]}" \
  2>&1 | tee "$out/pytest_cuda.log" | tail -5
if [ ${#ros_ignore[@]} -eq 0 ]; then
  step demo
  timeout 300 python3 -m rrto_ros.demo 2>&1 | tee "$out/demo_cuda.log" | tail -12
fi
step forwarding
timeout 600 python3 bench/forwarding.py --backend cuda --out "$out/forwarding_gpu.json" \
  > "$out/forwarding.log" 2>&1; tail -3 "$out/forwarding.log"
fi
if want bench; then
step modes
timeout 900 python3 bench/modes.py --backend cuda --inferences 200 --no-plot \
  --out "$out/replay_gpu.json" \
  > "$out/modes.log" 2>&1; tail -25 "$out/modes.log"
step replay server cost
timeout 600 python3 bench/replay_server_cost.py --backend cuda \
  --out "$out/replay_server_cost.json" 2>&1 | grep -v '^\[rrto' | tail -3
step replay stages
timeout 600 python3 bench/replay_stages.py --backend cuda --links direct,edge --repeat 3 \
  --out "$out/replay_stages.json" 2>&1 | grep -v '^\[rrto' | grep -v '^{"link' | tail -40
step link accuracy
timeout 300 python3 bench/link_accuracy.py --out "$out/link_accuracy.json" 2>&1 | tail -4
step transport costs
timeout 300 python3 bench/transport_costs.py --out "$out/transport_costs.json" 2>&1 \
  | grep -v '^\[rrto' | tail -9
fi
