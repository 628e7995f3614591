# Copyright 2026 rrto_ros authors. Apache-2.0.
"""Framing of the replay lane: a plain TCP connection per session that carries the replay
hot path (REPLAY_RUN and its reply) next to the session's ZeroMQ connection.

Why a second connection: ZeroMQ hands every message to and from its own I/O thread on both
ends; on the edge link that costs about 0.25 ms per round trip over plain TCP
(``bench/replay_stages.py``, echo references), a quarter of everything rrto adds to an
inference. The lane carries the same messages as ZeroMQ (a msgpack header part plus bulk
parts, ``rrto_ros.protocol.messages``), framed as

    magic u32, number of parts u32, then per part its length u64, then the parts' bytes

and opens with a hello: ``LANE_HELLO`` + the session id the server gave over ZeroMQ, which
the server accepts with the byte ``LANE_ACK`` (or refuses by closing the connection).
"""

from __future__ import annotations

import socket
import struct
from typing import Any, Callable, Deque, List, Sequence

from rrto_ros.protocol.messages import frame_bytes
from rrto_ros.protocol.messages import ProtocolError

LANE_MAGIC = 0x4C4F5452          # 'RTOL'
LANE_HELLO = b'rrto-lane-1\n'    # then the 16-byte session id
LANE_ACK = b'\x06'
SID_BYTES = 16
MAX_PARTS = 64
HEAD = struct.Struct('<II')


def encode(parts: Sequence[Any]) -> List[Any]:
    """The buffers to send, in order (header first), for ``socket.sendmsg``."""
    if not 0 < len(parts) <= MAX_PARTS:
        raise ValueError(f'a lane message has 1 to {MAX_PARTS} parts, not {len(parts)}')
    views = [frame_bytes(p) for p in parts]
    head = HEAD.pack(LANE_MAGIC, len(views)) + struct.pack(f'<{len(views)}Q',
                                                           *(v.nbytes for v in views))
    return [head] + views


def receive(sock: socket.socket, feed: Callable[[bytes], List[List[memoryview]]]
            ) -> List[List[memoryview]]:
    """Read what a non-blocking socket has and ``feed`` it; returns the messages completed.
    Raises ConnectionError when the peer closed the connection or it failed, and what
    ``feed`` raises (ProtocolError) on a malformed stream."""
    msgs: List[List[memoryview]] = []
    while True:
        try:
            data = sock.recv(1 << 20)
        except (BlockingIOError, InterruptedError):
            return msgs
        except OSError as e:
            raise ConnectionError(str(e)) from None
        if not data:
            raise ConnectionError('closed by the peer')
        msgs += feed(data)


def sent(bufs: Deque[memoryview], n: int) -> None:
    """Drop the first ``n`` bytes (a partial send's worth) from a queue of buffers."""
    while n and bufs:
        if n >= bufs[0].nbytes:
            n -= bufs.popleft().nbytes
        else:
            bufs[0] = bufs[0][n:]
            n = 0


class LaneReader:
    """Reassembles messages from the bytes of a stream, whatever the chunking."""

    def __init__(self, max_message_bytes: int) -> None:
        self.max_message_bytes = max_message_bytes
        self._buf = bytearray()

    def feed(self, data: bytes) -> List[List[memoryview]]:
        """Add received bytes; returns the messages now complete (lists of parts)."""
        self._buf += data
        out: List[List[memoryview]] = []
        while True:
            msg = self._take()
            if msg is None:
                return out
            out.append(msg)

    def _take(self) -> List[memoryview] | None:
        buf = self._buf
        if len(buf) < HEAD.size:
            return None
        magic, n = HEAD.unpack_from(buf)
        if magic != LANE_MAGIC:
            raise ProtocolError(f'lane frame with bad magic 0x{magic:08x}')
        if not 0 < n <= MAX_PARTS:
            raise ProtocolError(f'lane frame with {n} parts (1 to {MAX_PARTS} allowed)')
        lens_end = HEAD.size + 8 * n
        if len(buf) < lens_end:
            return None
        lens = struct.unpack_from(f'<{n}Q', buf, HEAD.size)
        total = sum(lens)
        if total > self.max_message_bytes:
            raise ProtocolError(f'lane message of {total} bytes exceeds the limit of '
                                f'{self.max_message_bytes}')
        if len(buf) < lens_end + total:
            return None
        body = bytes(buf[lens_end:lens_end + total])
        del buf[:lens_end + total]
        view = memoryview(body)
        parts, at = [], 0
        for k in lens:
            parts.append(view[at:at + k])
            at += k
        return parts
