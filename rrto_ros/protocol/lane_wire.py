# Copyright 2026 rrto_ros authors. Apache-2.0.
"""Framing of the replay lane: a plain TCP connection from an app's interposer straight to
the server, which carries the replay hot path (REPLAY_RUN and its reply) and nothing else.
Mirrors ``struct rrto_lane_req`` / ``struct rrto_lane_rep`` in ``interposer/rrto_wire.h``.

Why the interposer talks to the server itself: on the hot path the client node only relayed
bytes, and that relay (two thread wake-ups and Python on both ways) cost ~0.15-0.2 ms of a
~0.6 ms overhead per inference (``bench/replay_stages.py``); ZeroMQ's I/O threads cost
another ~0.25 ms. The client node still owns the session: it opens it over ZeroMQ, tells
the interposer where the lane is (in the hello reply, see ``describe``), and hears of every
replayed range (REPLAY_NOTE) for its statistics, mode changes and table withdrawals.

    hello    LANE_HELLO + the 16-byte session id; the server answers the byte LANE_ACK
             (or closes the connection: unknown session, or one that has a lane already)
    request  REQ header (magic, flags, seq, sequence id, from, to, payload length), then
             the payload (the input copies' bytes of the range, back to back)
    reply    REP header (magic, err, seq, number of results, data length, message length),
             then the results (uint64 each), the data, the message (UTF-8)

A request with ``F_QUIET`` is answered only when it fails (like CUDA's asynchronous errors,
the interposer reports such an error at its next blocking call). An empty range (from ==
to == the server's position) runs nothing and is answered in order: the interposer's
barrier before it hands the session back to the client node.
"""

from __future__ import annotations

from dataclasses import dataclass
import struct
from typing import List, Optional, Sequence

from rrto_ros.protocol.messages import ProtocolError

LANE_HELLO = b'rrto-lane-2\n'    # then the 16-byte session id
LANE_ACK = b'\x06'
SID_BYTES = 16
REQ_MAGIC = 0x51524C52           # 'RLRQ'
REP_MAGIC = 0x50524C52           # 'RLRP'
F_QUIET = 1
REQ = struct.Struct('<IIQIIII')  # magic, flags, seq, sequence id, from, to, payload length
REP = struct.Struct('<IiQIII4x')  # magic, err, seq, nres, data length, message length
MAX_RESULTS = 16


@dataclass
class LaneRequest:
    seq: int
    seq_id: int
    start: int
    end: int
    quiet: bool
    payload: memoryview


@dataclass
class LaneReply:
    seq: int
    err: int
    res: List[int]
    data: bytes
    message: str


def encode_request(seq: int, seq_id: int, start: int, end: int, payload: bytes = b'',
                   quiet: bool = False) -> bytes:
    """What an interposer sends (used by tests and tools)."""
    return REQ.pack(REQ_MAGIC, F_QUIET if quiet else 0, seq, seq_id, start, end,
                    len(payload)) + bytes(payload)


def encode_reply(seq: int, err: int, res: Sequence[int] = (), data: bytes = b'',
                 message: str = '') -> List[bytes]:
    """The buffers of one reply, for ``socket.sendmsg``."""
    msg = message.encode()
    head = REP.pack(REP_MAGIC, err, seq, len(res), len(data), len(msg)) + \
        struct.pack(f'<{len(res)}Q', *[r & 0xFFFFFFFFFFFFFFFF for r in res])
    return [b for b in (head, data, msg) if len(b)]


def describe(host: str, port: int, timeout_s: float, sid: bytes) -> bytes:
    """The lane descriptor the client node gives the interposer in its hello reply:
    ``lane HOST PORT TIMEOUT_MS SID_HEX`` (HOST numeric)."""
    return f'lane {host} {port} {max(1, int(timeout_s * 1000))} {sid.hex()}'.encode()


class _Reader:
    """Reassembles frames (a fixed header, then a body whose size the header gives) from
    the bytes of a stream, whatever the chunking."""

    head: struct.Struct
    magic: int

    def __init__(self, max_message_bytes: int) -> None:
        self.max_message_bytes = max_message_bytes
        self._buf = bytearray()

    def feed(self, data: bytes) -> list:
        self._buf += data
        out = []
        while True:
            msg = self._take()
            if msg is None:
                return out
            out.append(msg)

    def _take(self):
        buf = self._buf
        if len(buf) < self.head.size:
            return None
        fields = self.head.unpack_from(buf)
        if fields[0] != self.magic:
            raise ProtocolError(f'lane frame with bad magic 0x{fields[0]:08x}')
        size = self._body_size(fields)
        if size > self.max_message_bytes:
            raise ProtocolError(f'lane message of {size} bytes exceeds the limit of '
                                f'{self.max_message_bytes}')
        end = self.head.size + size
        if len(buf) < end:
            return None
        with memoryview(buf) as view:
            body = memoryview(bytes(view[self.head.size:end]))
        del buf[:end]
        return self._make(fields, body)


class RequestReader(_Reader):
    """The server's side: frames to ``LaneRequest``."""
    head, magic = REQ, REQ_MAGIC

    @staticmethod
    def _body_size(fields) -> int:
        return fields[6]

    @staticmethod
    def _make(fields, body: memoryview) -> LaneRequest:
        _, flags, seq, seq_id, start, end, _ = fields
        return LaneRequest(seq, seq_id, start, end, bool(flags & F_QUIET), body)


class ReplyReader(_Reader):
    """An interposer's side (tests and tools): frames to ``LaneReply``."""
    head, magic = REP, REP_MAGIC

    @staticmethod
    def _body_size(fields) -> int:
        _, _, _, nres, length, msg_len = fields
        if nres > MAX_RESULTS:
            raise ProtocolError(f'lane reply with {nres} results (at most {MAX_RESULTS})')
        return 8 * nres + length + msg_len

    @staticmethod
    def _make(fields, body: memoryview) -> LaneReply:
        _, err, seq, nres, length, _ = fields
        res = list(struct.unpack_from(f'<{nres}Q', body))
        data = bytes(body[8 * nres:8 * nres + length])
        return LaneReply(seq, err, res, data, bytes(body[8 * nres + length:]).decode(
            errors='replace'))


def reply_of(parts: Sequence[bytes]) -> Optional[LaneReply]:
    """Decode the buffers of ``encode_reply`` (tests)."""
    got = ReplyReader(1 << 31).feed(b''.join(bytes(p) for p in parts))
    return got[0] if got else None
