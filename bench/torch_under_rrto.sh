#!/usr/bin/env bash
# Runs one Python program under the interposer against a local server and client node
# from the README's venv, keeping every log: for finding what a PyTorch model needs.
#   bash bench/torch_under_rrto.sh OUTDIR PROGRAM.py [ARGS...]
# Env: BACKEND (cuda), MODE (pipelined), PORT (5699), LOG (the server's log level, INFO),
# SERVER_ENV (e.g. CUDNN_LOGERR_DBG=1).
set -u
out=$1; shift
mkdir -p "$out"
d=$(mktemp -d /tmp/rrto-run.XXXX); chmod 700 "$d"
py=.venv/bin/python; port=${PORT:-5699}
env ${SERVER_ENV:-} $py -m rrto_ros.cli.server_main --bind tcp://127.0.0.1:$port \
  --backend ${BACKEND:-cuda} --lane-port -1 --security open --log-level ${LOG:-INFO} \
  > "$out/server.log" 2>&1 &
s=$!
$py -m rrto_ros.cli.client_main --server tcp://127.0.0.1:$port --mode ${MODE:-pipelined} \
  --security open --agent-socket "$d/agent.sock" --log-level INFO > "$out/client.log" 2>&1 &
c=$!
trap 'kill $c $s 2>/dev/null; wait 2>/dev/null' EXIT
for _ in $(seq 50); do [ -S "$d/agent.sock" ] && break; sleep 0.2; done
RRTO_AGENT_SOCKET=$d/agent.sock LD_PRELOAD=$PWD/rrto_ros/lib/librrto_cuda.so \
  timeout ${TMO:-300} $py "$@" > "$out/app.log" 2>&1
echo "exit $?" >> "$out/app.log"
