# Copyright 2026 rrto_ros authors. Apache-2.0.
"""Link emulator: a loopback TCP proxy that makes a connection behave like a robot's link.

Inserted between the client core and the server (``LocalStack(link='edge')``), it forwards
bytes unchanged, so it works for any protocol (ZeroMQ's ZMTP, the offload baseline's raw
floats). Each direction is modelled as a serialising bottleneck followed by a propagation
delay, as in a real link:

    start      = max(arrival, time the previous byte left the bottleneck)
    leaves     = start + 8 * nbytes / bandwidth        (bytes queue behind each other)
    delivered  = leaves + rtt / 2

Data are read in chunks of up to 64 KiB and each chunk is delivered when its last byte would
have arrived, so the last byte of a message arrives when it would on the real link. A chunk's
arrival is the time the kernel received it (SO_TIMESTAMPNS), not the time the emulator woke
up to read it, and a delivery starts early by what a send call costs (``_SendCost``): the
emulator's own wake-ups and system calls must not lengthen the emulated link.
Several connections (e.g. a session's ZeroMQ connection and its replay lane, each proxied
from a listening port of its own, see ``also``) share one bottleneck per direction, as
they would share a radio. Not modelled: loss, jitter, TCP slow start, the reverse path's
ACKs. ``bench/link_accuracy.py``
measures how close the achieved round trip time and throughput come to the targets.

Bounded by construction: it listens on 127.0.0.1 only, forwards only to a loopback
target, serves a limited number of connections, keeps at most ``max_queued_bytes`` per
direction in flight, and stops by itself after ``max_lifetime_s`` (the process form also
stops when its parent closes its stdin, e.g. by dying).

    python -m rrto_ros.bench.link --profile edge --target 127.0.0.1:5555
"""

from __future__ import annotations

import argparse
import collections
import ctypes
from dataclasses import dataclass
from dataclasses import field
import json
import select
import socket
import struct
import subprocess
import sys
import threading
import time
from typing import Deque, Dict, List, Optional, Sequence, Tuple, Union

CHUNK = 65536
SO_TIMESTAMPNS = getattr(socket, 'SO_TIMESTAMPNS', 35)   # 35 on Linux; absent from Python
ANCILLARY = socket.CMSG_SPACE(16)                         # one struct timespec
SPIN_S = 200e-6   # the last this much before a delivery is busy-waited, not slept
MAX_LEAD_S = 50e-6   # the most a delivery starts before its due time (see _SendCost)
LOOPBACK_HOSTS = ('127.0.0.1', 'localhost')


@dataclass(frozen=True)
class LinkProfile:
    name: str
    rtt_s: float                 # round trip time added (both one-way delays)
    bandwidth_bps: float = 0.0   # bits per second, each direction; 0 means unlimited

    @property
    def one_way_s(self) -> float:
        return self.rtt_s / 2.0

    def serialisation_s(self, nbytes: int) -> float:
        return 8.0 * nbytes / self.bandwidth_bps if self.bandwidth_bps > 0 else 0.0

    def describe(self) -> dict:
        return {'name': self.name, 'rtt_ms': self.rtt_s * 1e3,
                'bandwidth_mbit_s': self.bandwidth_bps / 1e6 if self.bandwidth_bps else None}


# The links of the paper's evaluation (Section VI): Wi-Fi 6 to an edge PC, the Internet to
# a cloud GPU server. ``loopback`` adds nothing (it measures the proxy itself).
PROFILES = {
    'loopback': LinkProfile('loopback', 0.0, 0.0),
    'edge': LinkProfile('edge', 2.6e-3, 450e6),
    'cloud': LinkProfile('cloud', 20e-3, 160e6),
}


def get_profile(profile: Union[str, LinkProfile]) -> LinkProfile:
    if isinstance(profile, LinkProfile):
        return profile
    try:
        return PROFILES[profile]
    except KeyError:
        raise ValueError(f'unknown link profile {profile!r}; known: '
                         f'{", ".join(PROFILES)}') from None


def parse_target(target: str) -> Tuple[str, int]:
    """``tcp://127.0.0.1:5555`` or ``127.0.0.1:5555`` -> (host, port); loopback only."""
    hostport = target[len('tcp://'):] if target.startswith('tcp://') else target
    host, sep, port = hostport.rpartition(':')
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f'link target {target!r} is not host:port')
    if host not in LOOPBACK_HOSTS:
        raise ValueError(f'link target {target!r}: the emulator forwards to 127.0.0.1 only')
    return '127.0.0.1', int(port)


def _precise_timers() -> None:
    """Make this thread's sleeps end on time: Linux lets a sleep overrun by its timer slack
    (50 us by default), a visible error on a 1.3 ms one-way delay. Best effort."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(29, 1, 0, 0, 0)   # PR_SET_TIMERSLACK, 1 ns
    except (OSError, AttributeError):
        pass


def arrival_time(ancillary: list, now: float) -> float:
    """The kernel's receive time of the data just read (monotonic clock), from its
    SO_TIMESTAMPNS message; ``now`` when there is none."""
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= 16:
            sec, nsec = struct.unpack_from('qq', data)
            realtime_minus_monotonic = time.time_ns() - time.monotonic_ns()
            return min(now, (sec * 1_000_000_000 + nsec - realtime_minus_monotonic) / 1e9)
    return now


def stamp_arrivals(sock: socket.socket) -> None:
    """Ask the kernel for receive timestamps (best effort: without them, arrivals are
    stamped when read)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    except OSError:
        pass


@dataclass
class LinkStats:
    connections: int = 0
    refused: int = 0
    bytes_up: int = 0      # accepted side (client) -> target (server)
    bytes_down: int = 0
    # How late chunks left the proxy after their due time (recent ones), in seconds.
    lateness_s: Deque[float] = field(default_factory=lambda: collections.deque(maxlen=20000))

    def lateness_us(self) -> dict:
        late = sorted(self.lateness_s)
        if not late:
            return {}
        return {'samples': len(late), 'p50': round(late[len(late) // 2] * 1e6, 1),
                'p95': round(late[int(len(late) * 0.95)] * 1e6, 1),
                'max': round(late[-1] * 1e6, 1)}


class _Bottleneck:
    """One direction of the link, shared by every connection through the emulator."""

    def __init__(self) -> None:
        self.free = 0.0          # when it has sent every byte taken in so far
        self.lock = threading.Lock()


class _SendCost:
    """How long handing data on takes (the send call, which on loopback also wakes the
    receiver): a delivery starts this much before its due time, so that the data reach
    the far end when due rather than one send call later. A running average of recent
    sends, each counted up to MAX_LEAD_S (a send that waited for room is not the norm)."""

    def __init__(self) -> None:
        self.s = 0.0

    def add(self, dt: float) -> None:
        dt = min(dt, MAX_LEAD_S)
        self.s = dt if not self.s else 0.9 * self.s + 0.1 * dt


class _Flow:
    """One direction of one connection. Its queue is the link's buffer (bounded): chunks
    stamped with the time they are due at the far end."""

    def __init__(self, src: socket.socket, dst: socket.socket, profile: LinkProfile,
                 max_queued: int, up: bool, bottleneck: _Bottleneck, cost: _SendCost) -> None:
        self.src, self.dst, self.profile, self.max_queued, self.up = \
            src, dst, profile, max_queued, up
        self.bottleneck = bottleneck
        self.cost = cost
        self.queue: Deque[Tuple[float, memoryview]] = collections.deque()
        self.queued = 0
        self.eof = False
        self.shut = False

    @property
    def wants_input(self) -> bool:
        return not self.eof and self.queued < self.max_queued

    def take(self, now: float) -> None:
        try:
            data, anc, _, _ = self.src.recvmsg(CHUNK, ANCILLARY)
        except BlockingIOError:
            return
        if not data:
            self.eof = True
            return
        b = self.bottleneck
        with b.lock:
            start = max(arrival_time(anc, now), b.free)
            b.free = start + self.profile.serialisation_s(len(data))
            due = b.free + self.profile.one_way_s
        self.queue.append((due, memoryview(data)))
        self.queued += len(data)

    def due(self, now: float) -> bool:
        return bool(self.queue) and self.queue[0][0] - self.cost.s <= now

    def next_due(self) -> Optional[float]:
        """When the next delivery starts (its due time less the send cost)."""
        return self.queue[0][0] - self.cost.s if self.queue else None

    def deliver(self, now: float, stats: 'LinkStats') -> None:
        """Send what is due, without blocking: a partial send keeps the rest queued."""
        while self.due(now):
            t, view = self.queue[0]
            t0 = time.monotonic()
            try:
                n = self.dst.send(view)
            except BlockingIOError:
                return
            sent = time.monotonic()
            self.cost.add(sent - t0)
            stats.lateness_s.append(sent - t)
            self.queued -= n
            if self.up:
                stats.bytes_up += n
            else:
                stats.bytes_down += n
            if n < len(view):
                self.queue[0] = (t, view[n:])
                return
            self.queue.popleft()
        if self.eof and not self.queue and not self.shut:
            self.dst.shutdown(socket.SHUT_WR)   # the sender closed its side: pass that on
            self.shut = True


class _Connection:
    """Both directions of one proxied connection, served by one thread: a select() loop
    that wakes when data arrive or when queued data are due (microsecond timeouts), so
    a message costs the proxy one wake-up, not a hand-off between threads."""

    def __init__(self, emu: 'LinkEmulator', client: socket.socket,
                 server: socket.socket) -> None:
        self.emu, self.client, self.server = emu, client, server
        self.closed = False
        self._lock = threading.Lock()
        p, q = emu.profile, emu.max_queued_bytes
        up, down = emu.bottlenecks
        cost = _SendCost()
        self.flows = (_Flow(client, server, p, q, True, up, cost),
                      _Flow(server, client, p, q, False, down, cost))
        self.thread = threading.Thread(target=self._loop, daemon=True, name='rrto-link-conn')

    def start(self) -> None:
        self.thread.start()

    def _loop(self) -> None:
        _precise_timers()
        stats = self.emu.stats
        try:
            while not self.closed:
                now = time.monotonic()
                rl = [f.src for f in self.flows if f.wants_input]
                wl = [f.dst for f in self.flows if f.due(now)]
                due = [t for t in (f.next_due() for f in self.flows) if t is not None and t > now]
                wait = min([0.2] + [t - now for t in due])
                if not due:
                    r, _, _ = select.select(rl, wl, [], wait)
                elif wait > SPIN_S:
                    # Wake early: a wake-up comes tens of us late, after a long sleep
                    # hundreds; a second, short sleep then ends SPIN_S before the delivery.
                    early = 1e-3 if wait > 2e-3 else SPIN_S
                    r, _, _ = select.select(rl, wl, [], wait - early)
                else:
                    # The last stretch before a delivery: spin on the clock. Arrivals wait
                    # meanwhile, which changes nothing: they carry their kernel receive time.
                    target = now + wait
                    while time.monotonic() < target:
                        pass
                    r = []
                now = time.monotonic()
                for f in self.flows:
                    if f.src in r:
                        f.take(now)
                for f in self.flows:
                    f.deliver(now, stats)
                if all(f.shut for f in self.flows):
                    break
        except (OSError, ValueError):
            pass
        finally:
            self.close()

    def close(self) -> None:
        with self._lock:
            if self.closed:
                return
            self.closed = True
        for s in (self.client, self.server):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        self.emu._forget(self)


class LinkEmulator:
    """The proxy, in this process (threads). ``LinkProcess`` runs it as its own process,
    which keeps its timing free of the caller's interpreter lock."""

    def __init__(self, profile: Union[str, LinkProfile], target: str, listen_port: int = 0,
                 max_lifetime_s: float = 3600.0, max_connections: int = 32,
                 max_queued_bytes: int = 8 << 20,
                 also: Sequence[Tuple[str, int]] = ()) -> None:
        """``also``: more (target, listen port) pairs proxied over the same link."""
        self.profile = get_profile(profile)
        self.target = parse_target(target)
        self.max_lifetime_s = max_lifetime_s
        self.max_connections = max_connections
        self.max_queued_bytes = max_queued_bytes
        self.stats = LinkStats()
        self.bottlenecks = (_Bottleneck(), _Bottleneck())   # up, down
        self._routes: Dict[socket.socket, Tuple[str, int]] = {}
        self._lsock = self._listen(listen_port, self.target)
        self.port = self._lsock.getsockname()[1]
        self.also_ports = [self._listen(port, parse_target(t)).getsockname()[1]
                           for t, port in also]
        self._conns: List[_Connection] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def _listen(self, port: int, target: Tuple[str, int]) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(('127.0.0.1', port))
        sock.listen(16)
        sock.setblocking(False)
        self._routes[sock] = target
        return sock

    @property
    def endpoint(self) -> str:
        return f'tcp://127.0.0.1:{self.port}'

    def start(self) -> 'LinkEmulator':
        _precise_timers()
        self._thread = threading.Thread(target=self._accept_loop, daemon=True,
                                        name='rrto-link-accept')
        self._thread.start()
        return self

    def __enter__(self) -> 'LinkEmulator':
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Wait until the emulator stopped (by stop() or its lifetime); True if it did."""
        return self._stop.wait(timeout)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(5.0)
        for lsock in self._routes:
            lsock.close()
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            c.close()
        for c in conns:
            if c.thread is not threading.current_thread():
                c.thread.join(2.0)

    def _forget(self, conn: _Connection) -> None:
        with self._lock:
            if conn in self._conns:
                self._conns.remove(conn)

    def _accept_loop(self) -> None:
        deadline = time.monotonic() + self.max_lifetime_s
        try:
            while not self._stop.is_set() and time.monotonic() < deadline:
                ready, _, _ = select.select(list(self._routes), [], [], 0.2)
                for lsock in ready:
                    try:
                        client, _ = lsock.accept()
                    except (BlockingIOError, InterruptedError):
                        continue
                    self._open(client, self._routes[lsock])
        except (OSError, ValueError):
            pass
        finally:
            if not self._stop.is_set():       # lifetime over: stop by itself
                threading.Thread(target=self.stop, daemon=True).start()
            self._stop.set()

    def _open(self, client: socket.socket, target: Tuple[str, int]) -> None:
        with self._lock:
            full = len(self._conns) >= self.max_connections
        if full:
            self.stats.refused += 1
            client.close()
            return
        try:
            server = socket.create_connection(target, timeout=2.0)
        except OSError:
            self.stats.refused += 1   # target not up (yet): the client will retry
            client.close()
            return
        for s in (client, server):
            s.setblocking(False)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            stamp_arrivals(s)
        conn = _Connection(self, client, server)
        with self._lock:
            self._conns.append(conn)
        self.stats.connections += 1
        conn.start()


class LinkProcess:
    """The emulator as a child process (``python -m rrto_ros.bench.link``).

    It exits when this object stops it, when its lifetime ends, or when its stdin closes,
    so a crashed parent does not leave it behind.
    """

    def __init__(self, profile: Union[str, LinkProfile], target: str, listen_port: int = 0,
                 max_lifetime_s: float = 3600.0, also: Sequence[Tuple[str, int]] = ()) -> None:
        """``also``: more (target, listen port) pairs proxied over the same link."""
        self.profile = get_profile(profile)
        for t in [target] + [t for t, _ in also]:
            parse_target(t)
        self.target = target
        self.also = list(also)
        self.listen_port = listen_port
        self.max_lifetime_s = max_lifetime_s
        self.port = listen_port
        self.proc: Optional[subprocess.Popen] = None
        self.stats: dict = {}

    @property
    def endpoint(self) -> str:
        return f'tcp://127.0.0.1:{self.port}'

    def command(self) -> List[str]:
        p = self.profile
        return [sys.executable, '-m', 'rrto_ros.bench.link', '--target', self.target,
                '--rtt-ms', repr(p.rtt_s * 1e3), '--mbit', repr(p.bandwidth_bps / 1e6),
                '--name', p.name, '--port', str(self.listen_port),
                '--max-seconds', repr(self.max_lifetime_s)] + \
            [x for t, port in self.also for x in ('--also', f'{t}@{port}')]

    def start(self, timeout: float = 20.0) -> 'LinkProcess':
        self.proc = subprocess.Popen(self.command(), stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else ''
        if not line.startswith('rrto-link: listening on 127.0.0.1:'):
            self.stop()
            raise RuntimeError(f'link emulator did not start (said {line!r})')
        self.port = int(line.split()[3].rpartition(':')[2])
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the child; its last line, its statistics, lands in ``self.stats``."""
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.close()      # the child's signal to stop
        except OSError:
            pass
        deadline = time.monotonic() + timeout
        out = ''
        while time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stdout], [], [], deadline - time.monotonic())
            line = proc.stdout.readline() if ready else ''
            if not line:
                break
            out += line
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5.0)
        proc.stdout.close()
        for line in out.splitlines():
            if line.startswith('rrto-link: stats '):
                self.stats = json.loads(line[len('rrto-link: stats '):])

    def __enter__(self) -> 'LinkProcess':
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description='Loopback TCP proxy emulating a robot link.')
    ap.add_argument('--target', required=True, help='127.0.0.1:PORT (or tcp://127.0.0.1:PORT)')
    ap.add_argument('--profile', choices=sorted(PROFILES), default='loopback')
    ap.add_argument('--rtt-ms', type=float, help="override the profile's round trip time")
    ap.add_argument('--mbit', type=float,
                    help="override the profile's bandwidth per direction (0: unlimited)")
    ap.add_argument('--name', help='name of the overridden profile')
    ap.add_argument('--port', type=int, default=0, help='port on 127.0.0.1 (0: any free)')
    ap.add_argument('--max-seconds', type=float, default=3600.0, help='lifetime')
    ap.add_argument('--also', action='append', default=[], metavar='TARGET@PORT',
                    help='also proxy 127.0.0.1:PORT to TARGET over the same link')
    a = ap.parse_args(argv)
    also = []
    for item in a.also:
        t, _, port = item.rpartition('@')
        if not t or not port.isdigit():
            ap.error(f'--also {item!r}: expected TARGET@PORT')
        also.append((t, int(port)))
    p = PROFILES[a.profile]
    if a.rtt_ms is not None or a.mbit is not None:
        p = LinkProfile(a.name or 'custom', p.rtt_s if a.rtt_ms is None else a.rtt_ms / 1e3,
                        p.bandwidth_bps if a.mbit is None else a.mbit * 1e6)
    if p.rtt_s < 0 or p.bandwidth_bps < 0:
        ap.error('round trip time and bandwidth must be >= 0')
    emu = LinkEmulator(p, a.target, a.port, a.max_seconds, also=also).start()
    print(f'rrto-link: listening on 127.0.0.1:{emu.port} -> {a.target} '
          f'({p.name}: rtt {p.rtt_s * 1e3:g} ms, '
          f'{p.bandwidth_bps / 1e6:g} Mbit/s)', flush=True)

    def watch_stdin() -> None:
        try:
            while sys.stdin.read(4096):
                pass
        except (OSError, ValueError):
            pass
        emu.stop()

    threading.Thread(target=watch_stdin, daemon=True).start()
    emu.wait(a.max_seconds + 1.0)
    emu.stop()
    st = emu.stats
    print('rrto-link: stats ' + json.dumps({
        'connections': st.connections, 'refused': st.refused, 'bytes_up': st.bytes_up,
        'bytes_down': st.bytes_down, 'lateness_us': st.lateness_us()}), flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
