# Copyright 2026 rrto_ros authors. Apache-2.0.
"""The server's end of the replay lanes (see ``rrto_ros.protocol.lane_wire``, sealed by
``lane_seal``): a listening socket and one non-blocking connection per session (from the
app's interposer), all served by the server's I/O thread.
A connection becomes the session's lane once its first record authenticates with the
session's lane key; until then it carries nothing else.
A reply that does not fit the socket buffer waits in the lane's queue (the I/O thread
never blocks on a slow client)."""

from __future__ import annotations

import collections
import logging
import socket
import time
from typing import Deque, List, Optional, Sequence, Tuple

from rrto_ros.protocol import lane_seal
from rrto_ros.protocol import lane_wire
from rrto_ros.protocol.messages import ProtocolError

log = logging.getLogger(__name__)
LANE_IDENT = b'lane:'    # reply route of a lane: this + the session id (ZeroMQ's are 5 bytes)
HELLO_BYTES = len(lane_wire.LANE_HELLO) + lane_wire.SID_BYTES + lane_seal.RANDOM_BYTES
HELLO_TIMEOUT_S = 5.0    # a connection not authenticated by then is closed
RECV_BYTES = 1 << 18


PEER_GONE = 'closed by the app (it ended or was stopped)'


def _why(e: OSError) -> str:
    """A reset or a broken pipe is the app going away (killed mid-replay); other errors
    say what they are."""
    return PEER_GONE if isinstance(e, (ConnectionResetError, BrokenPipeError)) else str(e)


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
    def __init__(self, sock: socket.socket, max_message_bytes: int, peer: str = '') -> None:
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = sock
        self.peer = peer
        self.sid: Optional[bytes] = None
        self.proven = False          # its first record authenticated: the session's lane
        self.opened_at = time.monotonic()
        self.max_frame_bytes = max_message_bytes + lane_wire.REQ.size
        self._hello = bytearray()
        self._opener: Optional[lane_seal.Opener] = None
        self._sealer: Optional[lane_seal.Sealer] = None
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
        returns complete requests (once the lane is proven). After the hello arrived
        (``sid`` set), the server answers it with ``greet``."""
        try:
            n = self.sock.recv_into(self._in)
        except (BlockingIOError, InterruptedError):
            return []
        except OSError as e:
            raise LaneClosed(_why(e)) from None
        if n == 0:
            raise LaneClosed(PEER_GONE)
        try:
            return self._feed(self._in_view[:n])
        except lane_seal.LaneAuthError as e:
            raise LaneClosed(str(e) if self.proven else 'its first record does not '
                             'authenticate: wrong lane key for the session (or altered)') from None
        except ProtocolError as e:
            raise LaneClosed(f'protocol error: {e}') from None

    def _feed(self, data: memoryview) -> List[lane_wire.LaneRequest]:
        if self.sid is None:
            data = self._take_hello(data)
        if not data:
            return []
        if self._opener is None:
            raise LaneClosed('it sent records before the server answered its hello')
        frames = self._opener.feed(data)
        if frames and not self.proven:
            if frames[0] != lane_seal.PROOF:
                raise LaneClosed('its first record is not the lane proof')
            frames = frames[1:]
            self.proven = True
            self.send([lane_wire.LANE_ACK])
        return [lane_wire.request_of(f) for f in frames]

    def _take_hello(self, data: memoryview) -> memoryview:
        need = HELLO_BYTES - len(self._hello)
        self._hello += data[:need]
        if len(self._hello) < HELLO_BYTES:
            return memoryview(b'')
        hello = bytes(self._hello)
        if not hello.startswith(lane_wire.LANE_HELLO):
            raise LaneClosed('not an rrto replay lane (bad hello)')
        at = len(lane_wire.LANE_HELLO)
        self.sid = hello[at:at + lane_wire.SID_BYTES]
        self._app_random = hello[at + lane_wire.SID_BYTES:]
        return data[need:]

    def greet(self, lane_key: bytes) -> None:
        """Answer the hello with the server's random; the lane's records use the key of
        this connection from now on."""
        mine = lane_seal.new_random()
        key = lane_seal.connection_key(lane_key, self._app_random, mine)
        self._opener = lane_seal.Opener(key, lane_seal.TO_SERVER, self.max_frame_bytes)
        self._sealer = lane_seal.Sealer(key, lane_seal.TO_APP)
        self._out.append(memoryview(mine))
        self.flush()

    def send(self, parts: Sequence[bytes]) -> None:
        """Send an encoded reply (``lane_wire.encode_reply``), as one record."""
        self._out.append(memoryview(self._sealer.seal(b''.join(parts))))
        self.flush()

    def flush(self) -> None:
        """Send what the socket takes now; the rest stays queued (``wants_write``)."""
        while self._out:
            try:
                n = self.sock.sendmsg(list(self._out)[:64])
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                raise LaneClosed(_why(e)) from None
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
