# Copyright 2026 rrto_ros authors. Apache-2.0.
"""Framing of the replay lane: a TCP connection from an app's interposer straight to the
server, which carries the replay hot path (REPLAY_RUN and its reply) and nothing else.
Mirrors ``struct rrto_lane_req`` / ``struct rrto_lane_rep`` in ``interposer/rrto_wire.h``;
``lane_seal`` encrypts and authenticates it.

Why the interposer talks to the server itself: on the hot path the client node only relayed
bytes, and that relay (two thread wake-ups and Python on both ways) cost ~0.15-0.2 ms of a
~0.6 ms overhead per inference (``bench/replay_stages.py``); ZeroMQ's I/O threads cost
another ~0.25 ms. The client node still owns the session: it opens it over ZeroMQ, tells
the interposer where the lane is and its key (in the hello reply, see ``describe``), and
hears of every replayed range (REPLAY_NOTE) for its statistics, mode changes and table
withdrawals.

    hello    app: LANE_HELLO + the 16-byte session id + its 16-byte random; the server
             answers its own 16-byte random (or closes the connection: unknown session, one
             that has a lane already). From then on every message is one sealed record
             (``lane_seal``): first the app's proof, answered by the record LANE_ACK (or the
             connection closes: the proof did not authenticate).
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
from typing import List, Sequence

from rrto_ros.protocol.messages import ProtocolError

LANE_HELLO = b'rrto-lane-3\n'    # then the 16-byte session id and the app's random
LANE_ACK = b'\x06'               # the server's first record
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
    """The buffers of one reply frame."""
    msg = message.encode()
    head = REP.pack(REP_MAGIC, err, seq, len(res), len(data), len(msg)) + \
        struct.pack(f'<{len(res)}Q', *[r & 0xFFFFFFFFFFFFFFFF for r in res])
    return [b for b in (head, data, msg) if len(b)]


def describe(host: str, port: int, timeout_s: float, sid: bytes, key: bytes,
             sodium: str) -> bytes:
    """The lane descriptor the client node gives the interposer in its hello reply:
    ``lane HOST PORT TIMEOUT_MS SID_HEX KEY_HEX SODIUM`` (HOST numeric; SODIUM the libsodium
    the interposer loads, a soname or an absolute path without spaces)."""
    return (f'lane {host} {port} {max(1, int(timeout_s * 1000))} {sid.hex()} {key.hex()} '
            f'{sodium}').encode()


def request_of(frame: bytes) -> LaneRequest:
    """The request in one record's frame (the server's side)."""
    if len(frame) < REQ.size:
        raise ProtocolError(f'lane request of {len(frame)} bytes (a header is {REQ.size})')
    magic, flags, seq, seq_id, start, end, length = REQ.unpack_from(frame)
    if magic != REQ_MAGIC:
        raise ProtocolError(f'lane request with bad magic 0x{magic:08x}')
    if REQ.size + length != len(frame):
        raise ProtocolError(f'lane request announces {length} payload bytes and carries '
                            f'{len(frame) - REQ.size}')
    return LaneRequest(seq, seq_id, start, end, bool(flags & F_QUIET),
                       memoryview(frame)[REQ.size:])


def reply_of(frame: bytes) -> LaneReply:
    """The reply in one record's frame (an interposer's side: tests and tools)."""
    if len(frame) < REP.size:
        raise ProtocolError(f'lane reply of {len(frame)} bytes (a header is {REP.size})')
    magic, err, seq, nres, length, msg_len = REP.unpack_from(frame)
    if magic != REP_MAGIC:
        raise ProtocolError(f'lane reply with bad magic 0x{magic:08x}')
    if nres > MAX_RESULTS:
        raise ProtocolError(f'lane reply with {nres} results (at most {MAX_RESULTS})')
    if REP.size + 8 * nres + length + msg_len != len(frame):
        raise ProtocolError('lane reply whose sizes do not add up to its frame')
    body = memoryview(frame)[REP.size:]
    res = list(struct.unpack_from(f'<{nres}Q', body))
    data = bytes(body[8 * nres:8 * nres + length])
    return LaneReply(seq, err, res, data, bytes(body[8 * nres + length:]).decode(
        errors='replace'))
