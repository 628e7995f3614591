# Copyright 2026 rrto_ros authors. Apache-2.0.
"""Client node <-> server messages: a msgpack header frame plus zero-copy bulk frames.

Request header: ``{'v': version, 'sid': bytes, 'seq': int, 'op': int, 'a': [uint64...],
'q': quiet, ...op-specific keys}``. ``q`` (quiet) asks for a reply only on error: the
client uses it for calls it does not wait on in ``pipelined`` mode.
Reply header: ``{'seq': int, 'err': int, 'r': [results], 'm': message}``.
Session-less ops: HELLO (creates a session) and PING (answered by the server's I/O thread).
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from typing import Any, Dict, List, Optional, Sequence

import msgpack

PROTOCOL_VERSION = 1
PING = 'ping'           # 'op' value of a liveness probe (not a CUDA op)
MAX_HEADER_BYTES = 64 * 1024
OUTPUT = 'out'          # reply key: its last frame is device printf text for the app's stdout
U64_MAX = (1 << 64) - 1
I32_MIN, I32_MAX = -(1 << 31), (1 << 31) - 1     # CUDA error codes are int32 (cudaError_t)


class ProtocolError(Exception):
    """A message that does not follow this protocol; ``seq`` is the request's number when
    its header had a readable one (the error reply then answers that request)."""

    def __init__(self, message: str, seq: int = -1) -> None:
        super().__init__(message)
        self.seq = seq


@dataclass
class Request:
    sid: bytes
    seq: int
    op: Any                      # an Op value, or PING
    args: List[int]
    frames: List[Any] = field(default_factory=list)   # bytes-like bulk parts
    quiet: bool = False
    extra: Dict[str, Any] = field(default_factory=dict)
    route: bytes = b''           # server side: where the reply goes (not on the wire)


@dataclass
class Reply:
    seq: int
    err: int
    res: List[int] = field(default_factory=list)
    frames: List[Any] = field(default_factory=list)
    message: str = ''
    extra: Dict[str, Any] = field(default_factory=dict)


def encode_request(req: Request) -> List[Any]:
    head = {'v': PROTOCOL_VERSION, 'sid': req.sid, 'seq': req.seq, 'op': req.op,
            'a': list(req.args), 'q': req.quiet}
    head.update(req.extra)
    return [msgpack.packb(head, use_bin_type=True)] + list(req.frames)


def decode_request(parts: Sequence[Any]) -> Request:
    if not parts:
        raise ProtocolError('empty message')
    head = _unpack_header(parts[0])
    try:
        if head['v'] != PROTOCOL_VERSION:
            raise ProtocolError(f"protocol version {head['v']} (this server speaks "
                                f'{PROTOCOL_VERSION}); update rrto_ros on both machines')
        sid, seq, op, args = head.pop('sid'), head.pop('seq'), head.pop('op'), head.pop('a')
        quiet = bool(head.pop('q', False))
        head.pop('v')
    except KeyError as e:
        raise ProtocolError(f'request header lacks {e}') from None
    if not _is_int(seq):
        raise ProtocolError(f"request field 'seq' must be an integer, not {_kind(seq)}")
    if not isinstance(sid, bytes):
        raise ProtocolError(f"request field 'sid' must be bytes, not {_kind(sid)}", seq)
    if not (_is_int(op) or op == PING):
        raise ProtocolError(f"request field 'op' must be an operation number or {PING!r}, "
                            f'not {_kind(op)}', seq)
    if not isinstance(args, list) or not all(_is_int(a) and 0 <= a <= U64_MAX for a in args):
        raise ProtocolError("request field 'a' must be a list of unsigned 64-bit integers",
                            seq)
    return Request(sid, seq, op, args, list(parts[1:]), quiet, head)


def encode_reply(rep: Reply) -> List[Any]:
    head = {'seq': rep.seq, 'err': rep.err, 'r': list(rep.res)}
    if rep.message:
        head['m'] = rep.message
    head.update(rep.extra)
    return [msgpack.packb(head, use_bin_type=True)] + list(rep.frames)


def decode_reply(parts: Sequence[Any]) -> Reply:
    if not parts:
        raise ProtocolError('empty reply')
    head = _unpack_header(parts[0])
    try:
        seq, err, res = head.pop('seq'), head.pop('err'), head.pop('r')
    except KeyError as e:
        raise ProtocolError(f'reply header lacks {e}') from None
    if not _is_int(seq) or not _is_int(err) or not I32_MIN <= err <= I32_MAX:
        raise ProtocolError(f"reply fields 'seq' and 'err' must be integers, 'err' a 32-bit "
                            f'CUDA error code (got {_kind(seq)}, {err!r:.40})')
    if not isinstance(res, list) or not all(_is_int(r) and -(1 << 63) <= r <= U64_MAX
                                            for r in res):
        raise ProtocolError("reply field 'r' must be a list of 64-bit integers")
    message = head.pop('m', '')
    if not isinstance(message, str):
        raise ProtocolError(f"reply field 'm' must be text, not {_kind(message)}")
    return Reply(seq, err, res, list(parts[1:]), message, head)


def _is_int(v: Any) -> bool:
    return type(v) is int    # not bool: msgpack's true is no number here


def _kind(v: Any) -> str:
    return f'{type(v).__name__} {v!r:.40}'


def _unpack_header(frame: Any) -> Dict[str, Any]:
    raw = bytes(frame)
    if len(raw) > MAX_HEADER_BYTES:
        raise ProtocolError(f'header of {len(raw)} bytes exceeds {MAX_HEADER_BYTES}')
    try:
        head = msgpack.unpackb(raw, raw=False, strict_map_key=False)
    except Exception as e:  # msgpack raises several unrelated types
        raise ProtocolError(f'header is not msgpack: {e}') from None
    if not isinstance(head, dict):
        raise ProtocolError('header is not a map')
    return head


def frame_bytes(frame: Any) -> memoryview:
    """A received zmq.Frame or bytes as a memoryview without copying."""
    buf = getattr(frame, 'buffer', None)
    return buf if buf is not None else memoryview(frame)


def total_size(frames: Sequence[Any], header: Optional[bytes] = None) -> int:
    return sum(len(frame_bytes(f)) for f in frames) + (len(header) if header else 0)
