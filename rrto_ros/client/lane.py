# Copyright 2026 rrto_ros authors. Apache-2.0.
"""The client's end of a session's replay lane (see ``rrto_ros.protocol.lane_wire``)."""

from __future__ import annotations

import collections
import select
import socket
import time
from typing import Any, List, Sequence, Tuple

from rrto_ros.protocol import lane_wire
from rrto_ros.protocol.messages import ProtocolError


class LaneBroken(Exception):
    """The lane failed: closed, reset, garbled, or not writable for the timeout."""


def lane_address(server_endpoint: str, port: int, override: str = '') -> Tuple[str, int]:
    """Where the lane is: ``override`` (``tcp://HOST:PORT``) when set, else the server
    endpoint's host with the port the server announced."""
    if override:
        host, _, p = override[len('tcp://'):].rpartition(':') if override.startswith(
            'tcp://') else ('', '', '')
        if not host or not p.isdigit():
            raise ValueError(f'lane_endpoint {override!r} is not tcp://HOST:PORT')
        return host.strip('[]'), int(p)
    host = server_endpoint[len('tcp://'):].rpartition(':')[0].strip('[]')
    return host, port


class ClientLane:
    def __init__(self, address: Tuple[str, int], sid: bytes, timeout_s: float,
                 max_message_bytes: int = 1 << 31) -> None:
        self.timeout_s = timeout_s
        self.sock = socket.create_connection(address, timeout=timeout_s)
        try:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.sock.sendall(lane_wire.LANE_HELLO + sid)
            try:
                ack, why = self.sock.recv(1), 'it closed the connection'  # <= timeout_s
            except OSError as e:   # a reset (the server closed with our hello unread)
                ack, why = b'', str(e)
            if ack != lane_wire.LANE_ACK:
                raise ConnectionRefusedError(f'the server did not accept the replay lane '
                                             f'({why})')
            self.sock.setblocking(False)
        except OSError:
            self.sock.close()
            raise
        self._reader = lane_wire.LaneReader(max_message_bytes)

    def fileno(self) -> int:
        return self.sock.fileno()

    def send(self, parts: Sequence[Any]) -> int:
        """Send one message (waiting at most timeout_s for room); returns its size."""
        bufs = collections.deque(memoryview(b).cast('B') for b in lane_wire.encode(parts))
        size = sum(b.nbytes for b in bufs)
        deadline = time.monotonic() + self.timeout_s
        while bufs:
            try:
                n = self.sock.sendmsg(list(bufs)[:64])
            except (BlockingIOError, InterruptedError):
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([], [self.sock], [], left)[1]:
                    raise LaneBroken(f'replay lane not writable for {self.timeout_s:.1f} s'
                                     ) from None
                continue
            except OSError as e:
                raise LaneBroken(f'replay lane: {e}') from None
            lane_wire.sent(bufs, n)
        return size

    def receive(self) -> List[List[memoryview]]:
        """The messages that arrived (non-blocking; [] when none is complete)."""
        try:
            return lane_wire.receive(self.sock, self._reader.feed)
        except ConnectionError as e:
            raise LaneBroken(f'the server closed the replay lane ({e})') from None
        except ProtocolError as e:
            raise LaneBroken(f'replay lane: {e}') from None

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass
