# Copyright 2026 rrto_ros authors. Apache-2.0.
"""Compile recorded inference sequences into the table the interposer matches calls against
(the reader is ``interposer/replay.c``), and say how each recorded call is replayed.

Layout, little-endian, every 8-byte field 8-byte aligned::

    header  u32 magic 'RTBL', u32 sequence count, u32 start sequence, u32 start position
    per sequence  u32 id, u32 entry count
      per entry   u16 op, u8 kind, u8 pad, u32 nargs, u32 key_len, u32 var_len, u32 nres,
                  i32 err, u64 args[nargs], u64 res[nres], key bytes padded to 8
"""

from __future__ import annotations

import struct
from typing import Iterable, Protocol, Sequence, Tuple

from rrto_ros.protocol import forwarding
from rrto_ros.protocol.ops import Op

TABLE_MAGIC = 0x4C425452
KIND_LOCAL, KIND_INPUT, KIND_BLOCK = 0, 1, 2
_HEAD = struct.Struct('<IIII')
_SEQ = struct.Struct('<II')
_ENTRY = struct.Struct('<HBxIIIIi')

# Calls whose answer the app needs: replay sends the frontier and waits for the real result.
BLOCKING_OPS = frozenset({
    Op.MEMCPY_DTOH, Op.EVENT_ELAPSED, Op.STREAM_QUERY, Op.EVENT_QUERY, Op.MALLOC,
    Op.MEM_GET_INFO, Op.STREAM_CREATE, Op.EVENT_CREATE, Op.FUNC_GET, Op.VAR_GET,
    Op.MODULE_LOAD, Op.DEVICE_ATTRS,
})
# Calls whose data is the app's variable input (not part of the call's identity).
INPUT_OPS = frozenset({Op.MEMCPY_HTOD})
# Blocking calls whose results legitimately differ between inferences: not part of the
# identity a sequence is matched on.
VARIABLE_RESULT_OPS = frozenset({Op.EVENT_ELAPSED, Op.STREAM_QUERY, Op.EVENT_QUERY,
                                 Op.MEM_GET_INFO, Op.MEMCPY_DTOH})


class CallLike(Protocol):
    op: str
    args: Tuple[int, ...]
    key_data: bytes
    var_len: int
    result: Tuple[int, ...]
    err: int


def kind_of(op: Op, key_data: bytes = b'') -> int:
    """How a recorded call is replayed; a LIBCALL (``key_data``: its request) blocks when
    its function writes host memory (the spec's `out` parameters; `memo` calls are
    answered by the interposer and never reach the table after their first time)."""
    if op in INPUT_OPS:
        return KIND_INPUT
    if op == Op.LIBCALL:
        fn = forwarding.by_name(forwarding.call_name(key_data))
        return KIND_BLOCK if fn is None or fn.blocks else KIND_LOCAL
    return KIND_BLOCK if op in BLOCKING_OPS else KIND_LOCAL


def compile_table(sequences: Sequence[Tuple[int, Sequence[CallLike]]], start_seq: int = 0,
                  start_pos: int = 0) -> bytes:
    """Table of ``(id, calls)`` sequences; the interposer resumes at ``start_pos`` of
    sequence number ``start_seq`` (the calls before it in this inference already ran)."""
    if not sequences:
        raise ValueError('a replay table needs at least one sequence')
    if not 0 <= start_seq < len(sequences) or not 0 <= start_pos <= len(
            sequences[start_seq][1]):
        raise ValueError('replay start position outside the table')
    out = [_HEAD.pack(TABLE_MAGIC, len(sequences), start_seq, start_pos)]
    for seq_id, calls in sequences:
        if not calls:
            raise ValueError(f'sequence {seq_id} is empty')
        out.append(_SEQ.pack(seq_id, len(calls)))
        out.extend(_entry(c) for c in calls)
    return b''.join(out)


def _entry(call: CallLike) -> bytes:
    op = Op[call.op]
    kind = kind_of(op, call.key_data)
    key = b'' if kind == KIND_INPUT else bytes(call.key_data)
    res = () if kind == KIND_BLOCK else tuple(call.result)
    err = 0 if kind == KIND_BLOCK else call.err
    pad = (-len(key)) % 8
    return (_ENTRY.pack(int(op), kind, len(call.args), len(key), call.var_len, len(res), err)
            + struct.pack(f'<{len(call.args)}Q', *call.args)
            + struct.pack(f'<{len(res)}Q', *res) + key + b'\0' * pad)


def entries(table: bytes) -> Iterable[Tuple[int, int, int, int]]:
    """(sequence id, position, op, kind) of each entry: for tests and diagnostics."""
    _, nseq, _, _ = _HEAD.unpack_from(table, 0)
    off = _HEAD.size
    for _ in range(nseq):
        seq_id, n = _SEQ.unpack_from(table, off)
        off += _SEQ.size
        for pos in range(n):
            op, kind, nargs, key_len, _, nres, _ = _ENTRY.unpack_from(table, off)
            off += _ENTRY.size + 8 * (nargs + nres) + key_len + (-key_len) % 8
            yield seq_id, pos, op, kind
