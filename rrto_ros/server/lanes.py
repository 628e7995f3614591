# Copyright 2026 rrto_ros authors. Apache-2.0.
"""The server's end of the replay lanes (see ``rrto_ros.protocol.lane_wire``): a listening
socket and one non-blocking connection per session (from the app's interposer), all served
by the server's I/O thread.
A reply that does not fit the socket buffer waits in the lane's queue (the I/O thread
never blocks on a slow client)."""

from __future__ import annotations

import collections
import logging
import socket
import time
from typing import Deque, List, Optional, Sequence, Tuple

from rrto_ros.protocol import lane_wire
from rrto_ros.protocol.messages import ProtocolError

log = logging.getLogger(__name__)
LANE_IDENT = b'lane:'    # reply route of a lane: this + the session id (ZeroMQ's are 5 bytes)
HELLO_BYTES = len(lane_wire.LANE_HELLO) + lane_wire.SID_BYTES
HELLO_TIMEOUT_S = 5.0    # a connection that has not said hello by then is closed
RECV_BYTES = 1 << 18


class LaneClosed(Exception):
    """The peer closed the lane or broke the protocol."""


def listen(bind_endpoint: str, port: int) -> Optional[socket.socket]:
    """A listening socket next to the ZeroMQ endpoint ``tcp://HOST:PORT``; None when that
    endpoint is not TCP."""
    if not bind_endpoint.startswith('tcp://'):
        return None
    host = bind_endpoint[len('tcp://'):].rpartition(':')[0].strip('[]')
    host = '' if host in ('*', '0.0.0.0') else host
    family = socket.AF_INET6 if ':' in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(64)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class ServerLane:
    def __init__(self, sock: socket.socket, max_message_bytes: int) -> None:
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = sock
        self.sid: Optional[bytes] = None
        self.opened_at = time.monotonic()
        self._hello = bytearray()
        self._reader = lane_wire.RequestReader(max_message_bytes)
        # One receive buffer for the lane's life: a fresh large one per read costs the
        # allocator (and page faults) on every request.
        self._in = bytearray(RECV_BYTES)
        self._in_view = memoryview(self._in)
        self._out: Deque[memoryview] = collections.deque()

    @property
    def ident(self) -> bytes:
        return LANE_IDENT + (self.sid or b'')

    def fileno(self) -> int:
        return self.sock.fileno()

    @property
    def wants_write(self) -> bool:
        return bool(self._out)

    def read(self) -> List[lane_wire.LaneRequest]:
        """Take in what arrived (one read: the poller calls again while more is waiting);
        returns complete requests (after the hello)."""
        try:
            n = self.sock.recv_into(self._in)
        except (BlockingIOError, InterruptedError):
            return []
        except OSError as e:
            raise LaneClosed(str(e)) from None
        if n == 0:
            raise LaneClosed('closed by the peer')
        try:
            return self._feed(self._in_view[:n])
        except ProtocolError as e:
            raise LaneClosed(f'protocol error: {e}') from None

    def _feed(self, data: memoryview) -> List[lane_wire.LaneRequest]:
        return self._reader.feed(self._take_hello(data) if self.sid is None else data)

    def _take_hello(self, data: memoryview) -> memoryview:
        need = HELLO_BYTES - len(self._hello)
        self._hello += data[:need]
        if len(self._hello) < HELLO_BYTES:
            return b''
        prefix = bytes(self._hello[:len(lane_wire.LANE_HELLO)])
        if prefix != lane_wire.LANE_HELLO:
            raise LaneClosed('not an rrto replay lane (bad hello)')
        self.sid = bytes(self._hello[len(lane_wire.LANE_HELLO):])
        return data[need:]

    def send_ack(self) -> None:
        self._out.append(memoryview(lane_wire.LANE_ACK))
        self.flush()

    def send(self, parts: Sequence[bytes]) -> None:
        """Send an encoded reply (``lane_wire.encode_reply``)."""
        self._out.extend(memoryview(b).cast('B') for b in parts)
        self.flush()

    def flush(self) -> None:
        """Send what the socket takes now; the rest stays queued (``wants_write``)."""
        while self._out:
            try:
                n = self.sock.sendmsg(list(self._out)[:64])
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                raise LaneClosed(str(e)) from None
            _sent(self._out, n)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def _sent(bufs: Deque[memoryview], n: int) -> None:
    """Drop the first ``n`` bytes (a partial send's worth) from a queue of buffers."""
    while bufs and (n or not bufs[0].nbytes):
        if n >= bufs[0].nbytes:
            n -= bufs.popleft().nbytes
        else:
            bufs[0] = bufs[0][n:]
            n = 0


def accept(listener: socket.socket) -> Tuple[Optional[socket.socket], str]:
    try:
        conn, addr = listener.accept()
    except (BlockingIOError, InterruptedError):
        return None, ''
    return conn, f'{addr[0]}:{addr[1]}'
