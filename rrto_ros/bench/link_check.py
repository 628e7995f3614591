# Copyright 2026 rrto_ros authors. Apache-2.0.
"""Measuring a link (emulated or not): a loopback peer and the probes run against it.

The peer answers three requests, each a 1-byte command and an 8-byte length:
``E`` echo that many bytes back (round trip time), ``U`` take that many bytes then answer
one byte (upload throughput), ``D`` send that many bytes (download throughput).
"""

from __future__ import annotations

import socket
import statistics
import struct
import threading
import time
from typing import Dict, List

HEADER = struct.Struct('<cQ')


def _recv_exact(s: socket.socket, n: int, buf: bytearray) -> None:
    view = memoryview(buf)
    got = 0
    while got < n:
        k = s.recv_into(view[: min(len(buf), n - got)])
        if not k:
            raise ConnectionError('peer closed the connection')
        got += k


class Peer:
    """The far end, in a thread of this process, on 127.0.0.1."""

    def __init__(self) -> None:
        self._lsock = socket.socket()
        self._lsock.bind(('127.0.0.1', 0))
        self._lsock.listen(8)
        self._lsock.settimeout(0.2)
        self.port = self._lsock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> 'Peer':
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(2.0)
        self._lsock.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                c, _ = self._lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c: socket.socket) -> None:
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buf = bytearray(1 << 20)
        payload = bytes(1 << 20)
        try:
            while True:
                head = bytearray(HEADER.size)
                _recv_exact(c, HEADER.size, head)
                cmd, n = HEADER.unpack(head)
                if cmd == b'E':
                    data = bytearray(n)
                    _recv_exact(c, n, data)
                    c.sendall(data)
                elif cmd == b'U':
                    _recv_exact(c, n, buf)
                    c.sendall(b'k')
                elif cmd == b'D':
                    while n > 0:
                        k = min(n, len(payload))
                        c.sendall(payload[:k])
                        n -= k
                else:
                    return
        except (ConnectionError, OSError):
            pass
        finally:
            c.close()


def connect(port: int) -> socket.socket:
    s = socket.create_connection(('127.0.0.1', port), timeout=30.0)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def round_trips(port: int, count: int, size: int = 64, warmup: int = 3,
                idle_s: float = 0.0) -> List[float]:
    """Seconds per echo of ``size`` bytes (request and reply both ``size`` bytes), each
    after ``idle_s`` of sleep (both ends then wake from idle, as across a real link)."""
    out: List[float] = []
    buf = bytearray(size)
    with connect(port) as s:
        msg = HEADER.pack(b'E', size) + bytes(size)
        for i in range(warmup + count):
            if idle_s:
                time.sleep(idle_s)
            t0 = time.perf_counter()
            s.sendall(msg)
            _recv_exact(s, size, buf)
            if i >= warmup:
                out.append(time.perf_counter() - t0)
    return out


def transfer(port: int, nbytes: int, direction: str) -> float:
    """Seconds from the first byte sent to the last byte's arrival, including one round
    trip (upload: the peer's 1-byte answer; download: the request)."""
    buf = bytearray(1 << 20)
    with connect(port) as s:
        if direction == 'up':
            chunk = bytes(1 << 20)
            t0 = time.perf_counter()
            s.sendall(HEADER.pack(b'U', nbytes))
            left = nbytes
            while left > 0:
                k = min(left, len(chunk))
                s.sendall(chunk[:k])
                left -= k
            _recv_exact(s, 1, buf)
        else:
            t0 = time.perf_counter()
            s.sendall(HEADER.pack(b'D', nbytes))
            _recv_exact(s, nbytes, buf)
        return time.perf_counter() - t0


def summary_ms(samples: List[float]) -> Dict[str, float]:
    xs = sorted(samples)
    return {'samples': len(xs), 'p50_ms': round(statistics.median(xs) * 1e3, 4),
            'p95_ms': round(xs[min(len(xs) - 1, int(0.95 * len(xs)))] * 1e3, 4),
            'mean_ms': round(statistics.fmean(xs) * 1e3, 4),
            'min_ms': round(xs[0] * 1e3, 4)}
