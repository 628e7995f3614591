# Copyright 2026 rrto_ros authors. Apache-2.0.
"""What one blocking request costs on each layer of the client node -> server path.

    python bench/transport_costs.py --out bench/results/transport_costs.json

Medians of N requests, the server in its own process (emu backend: no GPU work is timed):
bare ZeroMQ echo (the floor of this transport), a liveness probe (answered by the server's
I/O thread), a no-op CUDA call (through a session's worker thread), and a 12 KiB copy to the
device (the demo's input size).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import shlex
import statistics
import subprocess
import sys
import time
from typing import Callable, Dict

import zmq

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rrto_ros.client.uplink import Uplink  # noqa: E402
from rrto_ros.protocol.messages import PING  # noqa: E402
from rrto_ros.protocol.ops import Op  # noqa: E402
from rrto_ros.stack import free_tcp_port, LocalStack  # noqa: E402

ECHO = """
import sys, zmq
s = zmq.Context().socket(zmq.ROUTER)
s.bind(sys.argv[1])
while True:
    s.send_multipart(s.recv_multipart())
"""


def median_us(fn: Callable[[], object], n: int) -> float:
    for _ in range(n // 10):
        fn()
    t = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        t.append(time.perf_counter() - t0)
    return round(statistics.median(t) * 1e6, 1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--n', type=int, default=3000)
    ap.add_argument('--out', type=pathlib.Path, required=True)
    a = ap.parse_args()
    res: Dict[str, float] = {}
    ctx = zmq.Context.instance()
    payload = b'x' * 12288
    endpoint = f'tcp://127.0.0.1:{free_tcp_port()}'
    echo = subprocess.Popen([sys.executable, '-c', ECHO, endpoint])
    try:
        d = ctx.socket(zmq.DEALER)
        d.connect(endpoint)

        def bare(data: bytes) -> None:
            d.send_multipart([b'h', data])
            d.recv_multipart()
        time.sleep(0.5)
        res['bare_zmq_echo_us'] = median_us(lambda: bare(b''), a.n)
        res['bare_zmq_echo_12k_us'] = median_us(lambda: bare(payload), a.n)
        d.close(0)
    finally:
        echo.kill()
    with LocalStack('emu', 'rpc', server_process=True) as st:
        link = Uplink(ctx, st.endpoint)
        rep = link.call(Op.HELLO, [1])
        link.sid = rep.extra['sid']
        ptr = link.call(Op.MALLOC, [len(payload)]).res[0]
        res['probe_io_thread_us'] = median_us(lambda: link.wait(link.send(PING, [])), a.n)
        res['noop_call_us'] = median_us(lambda: link.call(Op.DEVICE_SYNC, []), a.n)
        res['copy_12k_call_us'] = median_us(
            lambda: link.call(Op.MEMCPY_HTOD, [ptr, 0, 0], [payload]), a.n)
        link.close()
    out = {'command': 'python ' + ' '.join(shlex.quote(x) for x in sys.argv),
           'date': time.strftime('%F'), 'requests': a.n, 'results': res}
    print(json.dumps(out, indent=2))
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(out, indent=2) + '\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
