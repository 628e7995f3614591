# Copyright 2026 rrto_ros authors. Apache-2.0.
"""Where the time of one replayed inference goes, stage by stage, as deployed: the server in
its own process, the link emulator in its own, the client core in this one.

    python bench/replay_stages.py --backend cuda --links loopback,edge \\
        --out bench/results/replay_stages.json

Two paths are compared: the interposer's own replay lane to the server (the default), and
the relay through the client node and ZeroMQ (``replay_lane`` off, what a server without a
lane gets). Every process stamps CLOCK_MONOTONIC (one clock on one machine) where a replay
request passes: the client node (relay only) reading it from the app's socket, handing it
to ZeroMQ, getting the reply, writing it back; the server receiving it, executing it,
sending the reply. Per inference (replay steady state) the app's own latency then splits
into:

- ``app_side`` (relay): the interposer and the UNIX socket, both ways (app latency minus
  the client's read-to-written time);
- ``client_request`` / ``client_reply`` (relay): the client node's work on the way out /
  back;
- ``network``: relay: client send to server receive plus server send to client receive,
  i.e. both ZeroMQ stacks and the link; lane: everything outside the server (the
  interposer, both TCP stacks, the link). Nominal: ``link_nominal``; ``network_excess``
  is the rest;
- ``server_read`` (lane): reading the request off the socket; ``server_decode``: the
  request to its execution; ``server_execute`` (the replay itself: copies, graph,
  kernels); ``server_reply``.

An inference with more calls than the interposer's frontier batch (16) sends its first
ranges ahead without waiting (quiet REPLAY_RUNs); only the last one is a round trip. The
server's time on the quiet ones is ``server_quiet_ranges``: on the ``cuda`` backend a graph
launch, on ``emu`` the kernels themselves, which then delay the last request (it shows in
``network``).

For reference, echoes of the same sizes (12 KiB up, 64 B down) over the same link with the
same idle gap between requests as the app's own host work: raw TCP sockets and ZeroMQ
DEALER/ROUTER (both ends Python), i.e. what the transport costs before rrto adds anything.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import pathlib
import shlex
import socket
import statistics
import subprocess
import sys
import time
from typing import Dict, List, Optional, Tuple

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rrto_ros.bench.link import get_profile  # noqa: E402
from rrto_ros.bench.link import LinkProcess  # noqa: E402
from rrto_ros.client import session as client_session  # noqa: E402
from rrto_ros.client import uplink as client_uplink  # noqa: E402
from rrto_ros.client.config import ClientConfig  # noqa: E402
from rrto_ros.client.core import ClientCore  # noqa: E402
from rrto_ros.client.launcher import interposed_env  # noqa: E402
from rrto_ros.protocol.ops import Op  # noqa: E402
from rrto_ros.stack import free_tcp_port  # noqa: E402

now = time.monotonic_ns
Stamp = Tuple[str, int, int]     # (event, op, ns)
UP_BYTES, DOWN_BYTES = 12288, 64


# ----------------------------------------------------------------- server process
def _server_process(port: int, lane_port: int, backend: str, out: str, stop) -> None:
    from rrto_ros.server import lanes as server_lanes
    from rrto_ros.server import server as server_mod
    from rrto_ros.server import session as server_session
    stamps: List[Stamp] = []
    handle = server_mod.Server._dispatch
    serve_lane = server_mod.Server._serve_lane
    lane_read = server_lanes.ServerLane.read
    reply = server_mod.Server._reply
    execute = server_session.ServerSession._execute

    def _dispatch(self, ident, body):
        stamps.append(('s_in', -1, now()))
        return handle(self, ident, body)

    def _serve_lane(self, lane, events):
        stamps.append(('s_in', -1, now()))
        return serve_lane(self, lane, events)

    def read(self):
        got = lane_read(self)
        if got:
            stamps.append(('s_read', -1, now()))
        return got

    def _reply(self, ident, rep):
        r = reply(self, ident, rep)
        stamps.append(('s_out', -1, now()))
        return r

    def _execute(self, req):
        t = now()
        r = execute(self, req)
        op = req.op if isinstance(req.op, int) else -1
        stamps.append(('s_exec', op, t))
        stamps.append(('s_exec_end', op, now()))
        return r

    server_mod.Server._dispatch = _dispatch
    server_mod.Server._serve_lane = _serve_lane
    server_lanes.ServerLane.read = read
    server_mod.Server._reply = _reply
    server_session.ServerSession._execute = _execute
    srv = server_mod.Server(server_mod.ServerConfig(f'tcp://127.0.0.1:{port}', backend,
                                                    module_cache_dir=None,
                                                    lane_port=lane_port)).start()
    stop.wait()
    srv.stop()
    pathlib.Path(out).write_text(json.dumps(stamps))


# ----------------------------------------------------------------- client stamps
class ClientStamps:
    """The client core's stamps (its functions are wrapped once, on first use)."""
    stamps: List[Stamp] = []
    _wrapped = False

    def __init__(self) -> None:
        self.stamps.clear()
        if ClientStamps._wrapped:
            return
        ClientStamps._wrapped = True
        wire = client_session.wire
        read, reply = wire.read_request, wire.send_reply
        send, recv = client_uplink.Uplink.send, client_uplink.Uplink._recv
        st = self.stamps

        def read_request(sock):
            r = read(sock)
            st.append(('c_read', r.op, now()))
            return r

        def send_reply(*a, **k):
            reply(*a, **k)
            st.append(('c_written', -1, now()))

        def up_send(self_, op, *a, **k):
            r = send(self_, op, *a, **k)
            st.append(('c_sent', op if isinstance(op, int) else -1, now()))
            return r

        def up_recv(self_):
            r = recv(self_)
            st.append(('c_recv', -1, now()))
            return r
        wire.read_request, wire.send_reply = read_request, send_reply
        client_uplink.Uplink.send, client_uplink.Uplink._recv = up_send, up_recv


def _events(stamps: List[Stamp], start: str) -> List[List[Stamp]]:
    """The stamps cut into one list per request (each starts with a ``start`` event)."""
    out: List[List[Stamp]] = []
    for s in stamps:
        if s[0] == start:
            out.append([])
        if out:
            out[-1].append(s)
    return out


def replay_records(client: List[Stamp], server: List[Stamp]) -> List[Dict[str, int]]:
    """One record per blocking REPLAY_RUN (the one an inference waits for), stamps of both
    processes side by side (only the server's when the interposer sent it on the lane: the
    client node is not on that path). Quiet REPLAY_RUNs (frontier flushes while the app is
    still issuing calls: no reply) are not round trips and are left out."""
    recs = []
    for ev in _events(client, 'c_read'):
        names = {e[0]: e[2] for e in reversed(ev)}     # the first of each kind
        if ev[0][1] == Op.REPLAY_RUN and 'c_recv' in names and 'c_written' in names:
            recs.append({k: names[k] for k in ('c_read', 'c_sent', 'c_recv', 'c_written')})
    runs = []
    quiet = 0       # server time on the inference's earlier, quiet ranges
    for ev in _events(server, 's_in'):
        names = {e[0]: e[2] for e in reversed(ev)}
        ops = {e[1] for e in ev if e[0] == 's_exec'}
        if Op.REPLAY_RUN not in ops or 's_exec_end' not in names:
            continue
        if 's_out' not in names:
            quiet += names['s_exec_end'] - names['s_exec']
            continue
        runs.append({k: names[k] for k in ('s_in', 's_read', 's_exec', 's_exec_end', 's_out')
                     if k in names})
        runs[-1]['quiet'] = quiet
        quiet = 0
    if not recs:
        return runs
    n = min(len(recs), len(runs))
    return [dict(c, **s) for c, s in zip(recs[len(recs) - n:], runs[len(runs) - n:])]


def run_app(backend: str, link: Optional[str], inferences: int, tmp: str,
            use_lane: bool = True) -> dict:
    port, lane_port = free_tcp_port(), free_tcp_port()
    mp = multiprocessing.get_context('fork')   # no ZeroMQ context or CUDA here yet
    stop = mp.Event()
    out = os.path.join(tmp, f'server-{link}-{use_lane}.json')
    proc = mp.Process(target=_server_process, args=(port, lane_port, backend, out, stop))
    proc.start()
    endpoint = f'tcp://127.0.0.1:{port}'
    emu = None
    lane = f'tcp://127.0.0.1:{lane_port}'
    if link is not None:
        lane_via = free_tcp_port()
        emu = LinkProcess(link, endpoint, free_tcp_port(),
                          also=[(lane[len('tcp://'):], lane_via)]).start()
        endpoint, lane = emu.endpoint, f'tcp://127.0.0.1:{lane_via}'
    stamps = ClientStamps()
    sock = os.path.join(tmp, f'agent-{link}-{use_lane}.sock')
    core = ClientCore(ClientConfig(endpoint, sock, 'replay', connect_timeout_s=30.0,
                                   replay_lane=use_lane,
                                   lane_endpoint=lane)).start()
    try:
        env = interposed_env(sock)
        env['CNN_INFER_TIMING'] = '1'
        r = subprocess.run([str(ROOT / 'build' / 'examples' / 'cnn_infer'), str(inferences)],
                           env=env, capture_output=True, text=True, timeout=600)
        core.wait_idle(5.0)
    finally:
        core.stop()
        stop.set()
        proc.join(30)
        if emu is not None:
            emu.stop()
    if r.returncode != 0:
        raise RuntimeError(f'cnn_infer failed: {r.stderr[-2000:]}')
    app_us = [float(ln.split()[4]) for ln in r.stderr.splitlines()
              if ln.startswith('cnn_infer: timing')]
    recs = replay_records(stamps.stamps, json.loads(pathlib.Path(out).read_text()))
    steady = min(len(recs), inferences * 4 // 5)
    recs, app_us = recs[-steady:], app_us[-steady:]
    relayed = not use_lane      # through the client node (its stamps exist), or not
    absent = ('server_read',) if relayed else ('app_side', 'client_request', 'client_reply')
    stages: Dict[str, List[float]] = {k: [] for k in (
        'app_latency', 'app_side', 'client_request', 'network', 'server_read',
        'server_decode', 'server_execute', 'server_reply', 'client_reply',
        'server_quiet_ranges') if k not in absent}
    for rec, app in zip(recs, app_us):
        us = {k: v / 1e3 for k, v in rec.items()}
        stages['app_latency'].append(app)
        if relayed:
            stages['app_side'].append(app - (us['c_written'] - us['c_read']))
            stages['client_request'].append(us['c_sent'] - us['c_read'])
            stages['network'].append((us['s_in'] - us['c_sent']) + (us['c_recv'] - us['s_out']))
            stages['client_reply'].append(us['c_written'] - us['c_recv'])
        else:   # the interposer and both directions of the link: all outside the server
            stages['network'].append(app - (us['s_out'] - us['s_in']))
            stages['server_read'].append(us['s_read'] - us['s_in'])
        stages['server_decode'].append(us['s_exec'] - us.get('s_read', us['s_in']))
        stages['server_execute'].append(us['s_exec_end'] - us['s_exec'])
        stages['server_reply'].append(us['s_out'] - us['s_exec_end'])
        stages['server_quiet_ranges'].append(us['quiet'])
    p = get_profile(link or 'loopback')
    nominal = (p.rtt_s + p.serialisation_s(UP_BYTES) + p.serialisation_s(DOWN_BYTES)) * 1e6
    res = {'link': link or 'direct', 'replay_lane': use_lane,
           'inferences_measured': steady,
           'link_nominal_us': round(nominal, 1),
           'p50_us': {k: round(statistics.median(v), 1) for k, v in stages.items()}}
    res['p50_us']['network_excess'] = round(res['p50_us']['network'] - nominal, 1)
    return res


# ----------------------------------------------------------------- transport references
TCP_ECHO = """
import socket, sys
ls = socket.socket(); ls.bind(('127.0.0.1', int(sys.argv[1]))); ls.listen(1)
print('ready', flush=True)
c, _ = ls.accept(); c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
up, down, spin = int(sys.argv[2]), b'd' * int(sys.argv[3]), sys.argv[4] == '1'
c.setblocking(not spin)
while True:
    got = 0
    while got < up:
        try:
            b = c.recv(65536)
        except BlockingIOError:
            continue
        if not b:
            sys.exit(0)
        got += len(b)
    c.sendall(down)
"""
ZMQ_ECHO = """
import sys, zmq
s = zmq.Context().socket(zmq.ROUTER); s.bind('tcp://127.0.0.1:' + sys.argv[1])
print('ready', flush=True)
down, flags = b'd' * int(sys.argv[3]), zmq.NOBLOCK if sys.argv[4] == '1' else 0
while True:
    try:
        ident, _ = s.recv_multipart(flags)
    except zmq.Again:
        continue
    s.send_multipart([ident, down])
"""


def echo_reference(kind: str, link: Optional[str], n: int, gap_s: float,
                   spin: bool = False) -> float:
    """Median round trip of ``kind`` (tcp or zmq); ``spin``: both ends busy-poll instead of
    sleeping in the kernel while they wait (what thread wake-ups cost)."""
    import zmq
    port = free_tcp_port()
    srv = subprocess.Popen([sys.executable, '-c', TCP_ECHO if kind == 'tcp' else ZMQ_ECHO,
                            str(port), str(UP_BYTES), str(DOWN_BYTES), str(int(spin))],
                           stdout=subprocess.PIPE, text=True)
    emu = None
    try:
        srv.stdout.readline()
        target = f'127.0.0.1:{port}'
        if link is not None:
            emu = LinkProcess(link, target, free_tcp_port()).start()
            target = f'127.0.0.1:{emu.port}'
        up = b'u' * UP_BYTES
        if kind == 'tcp':
            host, _, p = target.rpartition(':')
            s = socket.create_connection((host, int(p)))
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def once() -> None:
                s.sendall(up)
                got = 0
                while got < DOWN_BYTES:
                    try:
                        got += len(s.recv(65536, socket.MSG_DONTWAIT if spin else 0))
                    except BlockingIOError:
                        pass
        else:
            z = zmq.Context.instance().socket(zmq.DEALER)
            z.connect('tcp://' + target)

            def once() -> None:
                z.send(up)
                while True:
                    try:
                        z.recv(zmq.NOBLOCK if spin else 0)
                        return
                    except zmq.Again:
                        pass
        t: List[float] = []
        for i in range(n + n // 10):
            time.sleep(gap_s)
            t0 = time.perf_counter()
            once()
            if i >= n // 10:
                t.append(time.perf_counter() - t0)
        return round(statistics.median(t) * 1e6, 1)
    finally:
        if emu is not None:
            emu.stop()
        srv.kill()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--backend', choices=('cuda', 'emu'), default='cuda')
    ap.add_argument('--links', default='direct,edge',
                    help='comma-separated: direct (no emulator), loopback, edge, cloud')
    ap.add_argument('--inferences', type=int, default=300)
    ap.add_argument('--echoes', type=int, default=500)
    ap.add_argument('--gap-ms', type=float, default=1.5,
                    help='idle time between echoes (the app does host work between inferences)')
    ap.add_argument('--repeat', type=int, default=1,
                    help='run every configuration this many times, interleaved')
    ap.add_argument('--spin', action='store_true',
                    help='also echoes whose ends busy-poll (the cost of thread wake-ups)')
    ap.add_argument('--out', type=pathlib.Path, required=True)
    a = ap.parse_args()
    import tempfile
    result: dict = {'command': 'python ' + ' '.join(shlex.quote(x) for x in sys.argv),
                    'date': time.strftime('%F %H:%M'), 'backend': a.backend,
                    'program': f'cnn_infer {a.inferences}', 'stages': [], 'echo_us_p50': {}}
    with tempfile.TemporaryDirectory(prefix='rrto-stages-') as tmp:
        for link in a.links.split(','):
            lk = None if link == 'direct' else link
            # Through the client node (ZeroMQ), then on the interposer's lane (the default)
            for rep in range(a.repeat):          # interleaved: drifts hit every config
                for use_lane in (False, True):
                    res = run_app(a.backend, lk, a.inferences, tmp, use_lane)
                    res['repeat'] = rep
                    print(json.dumps(res), flush=True)
                    result['stages'].append(res)
            for kind in ('tcp', 'zmq'):
                for spin in (False, True) if a.spin else (False,):
                    name = f'{kind}{"-spin" if spin else ""} {link}'
                    us = echo_reference(kind, lk, a.echoes, a.gap_ms / 1e3, spin)
                    result['echo_us_p50'][name] = us
                    print(f'echo {name}: {us} us', flush=True)
    summary: Dict[str, List[float]] = {}
    for res in result['stages']:
        name = f"{res['link']} {'interposer lane' if res['replay_lane'] else 'client node relay'}"
        summary.setdefault(name, []).append(res['p50_us']['app_latency'])
    result['app_latency_p50_us_by_config'] = {
        k: {'runs': v, 'median': round(statistics.median(v), 1)} for k, v in summary.items()}
    print(json.dumps(result['app_latency_p50_us_by_config'], indent=1))
    result['echo_note'] = (f'{UP_BYTES} B up, {DOWN_BYTES} B down, {a.gap_ms} ms idle before '
                           'each request, Python at both ends')
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=2) + '\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
