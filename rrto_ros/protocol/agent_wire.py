# Copyright 2026 rrto_ros authors. Apache-2.0.
"""Framing between the interposer and the client node; mirrors ``interposer/rrto_wire.h``."""

from __future__ import annotations

from dataclasses import dataclass
import select
import socket
import struct
from typing import Callable, Optional, Sequence, Tuple

from rrto_ros.protocol import ops

MAGIC = 0x4F545252
PROTO_VERSION = 1
F_NOREPLY = 1
F_DEFERRED = 2       # the interposer reads this reply later (when the app synchronises)
R_MESSAGE = 1
R_TABLE = 2          # a replay table (uint32 length + bytes) follows the reply's data
R_OUTPUT = 4         # device printf text (uint32 length + bytes) for the app's stdout
MAX_ARGS = 16
CHUNK = 64 << 20
MAX_MODULE_BYTES = 1 << 30    # a fatbin (module image) the client node assembles
BULK = 65536         # data at least this large are read and passed on without copies
IDLE_S = 0.1         # a reply the app is slow to read: how often send_reply calls idle()
SOCKET_BUFFER = 4 << 20   # SO_SNDBUF of both ends (RRTO_SOCKET_BUFFER in rrto_wire.h)

REQ = struct.Struct('<IHHII')      # magic, op, flags, nargs, len
REP = struct.Struct('<IiIIII')     # magic, err, nres, len, mode, flags

MODE_IDS = {'rpc': 0, 'pipelined': 1, 'replay': 2}


class WireError(Exception):
    """A malformed frame from the interposer, or a closed connection: the connection is
    over."""


class BadRequest(WireError):
    """A well-framed request that breaks the protocol (an op the client node does not take,
    the wrong number of arguments, an argument out of range): it is answered with this
    error and the connection goes on."""

    def __init__(self, request: 'AgentRequest', why: str,
                 code: int = ops.CUDA_ERROR_INVALID_VALUE) -> None:
        super().__init__(why)
        self.request = request
        self.code = code


@dataclass
class AgentRequest:
    op: int
    flags: int
    args: Tuple[int, ...]
    data: bytes          # a bytearray when BULK or larger

    @property
    def wants_reply(self) -> bool:
        return not self.flags & F_NOREPLY

    @property
    def deferred(self) -> bool:
        """The app is not waiting for this reply: it must carry no replay table (the app
        has made later calls by the time it reads it)."""
        return bool(self.flags & F_DEFERRED)


def recv_exact(sock: socket.socket, n: int) -> bytearray:
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = sock.recv_into(view[got:], n - got)
        if k == 0:
            raise WireError('connection closed')
        got += k
    return buf


def read_request(sock: socket.socket) -> AgentRequest:
    magic, op, flags, nargs, length = REQ.unpack(recv_exact(sock, REQ.size))
    if magic != MAGIC:
        raise WireError(f'bad magic 0x{magic:08x} (not an rrto interposer, or a version mismatch)')
    if nargs > MAX_ARGS or length > CHUNK:
        raise WireError(f'frame too large: {nargs} args, {length} bytes')
    if length < BULK:
        body = recv_exact(sock, 8 * nargs + length) if nargs or length else b''
        data = bytes(body[8 * nargs:])
    else:   # bulk data in a buffer of its own: no copy after the read
        body = recv_exact(sock, 8 * nargs) if nargs else b''
        data = recv_exact(sock, length)
    args = struct.unpack_from(f'<{nargs}Q', body) if nargs else ()
    req = AgentRequest(op, flags, args, data)
    check_request(req)
    return req


def check_request(req: AgentRequest) -> None:
    """Raise BadRequest unless the request is one the client node can act on."""
    try:
        op = ops.Op(req.op)
    except ValueError:
        raise BadRequest(req, f'the rrto client node does not know op {req.op}; update '
                         'rrto_ros so that the interposer and the client node match',
                         ops.CUDA_ERROR_NOT_SUPPORTED) from None
    want = ops.AGENT_ARGS.get(op)
    if want is None:
        raise BadRequest(req, f'{op.name} is not an op the interposer sends',
                         ops.CUDA_ERROR_NOT_SUPPORTED)
    if len(req.args) != want:
        raise BadRequest(req, f'{op.name} takes {want} arguments, not {len(req.args)} '
                         '(interposer and client node of different rrto_ros versions?)')
    if op == ops.Op.REPLAY_DIVERGE and req.args[2] > 0xFFFFFFFF:
        raise BadRequest(req, f'REPLAY_DIVERGE error {req.args[2]} is not a 32-bit CUDA error '
                         'code')
    if op == ops.Op.MODULE_LOAD and (req.args[2] > MAX_MODULE_BYTES or
                                     req.args[1] + len(req.data) > req.args[2]):
        raise BadRequest(req, f'MODULE_LOAD chunk of {len(req.data)} bytes at {req.args[1]} '
                         f'does not fit a module of {req.args[2]} bytes (at most '
                         f'{MAX_MODULE_BYTES})')


def encode_request(op: int, args: Sequence[int], data: bytes = b'', flags: int = 0) -> bytes:
    """Used by tests and tools that talk to the client node like an interposer would."""
    return REQ.pack(MAGIC, op, flags, len(args), len(data)) + \
        struct.pack(f'<{len(args)}Q', *args) + data


def send_reply(sock: socket.socket, err: int, res: Sequence[int] = (), data=b'',
               mode: int = 0, message: bool = False, table: bytes | None = None,
               idle: Optional[Callable[[], None]] = None, output: bytes = b'') -> None:
    """Answer one request; ``table`` (b'' withdraws the current one) and device printf
    ``output`` ride along. ``data``: any bytes-like object (a received frame's memoryview is
    sent without a copy). ``idle``: called every IDLE_S while the app does not read bulk
    data (a deferred copy's answer waits for the app to synchronise), e.g. to keep the
    server session alive."""
    flags = (R_MESSAGE if message else 0) | (R_TABLE if table is not None else 0) | \
        (R_OUTPUT if output else 0)
    head = REP.pack(MAGIC, err, len(res), len(data), mode, flags) + \
        struct.pack(f'<{len(res)}Q', *[r & 0xFFFFFFFFFFFFFFFF for r in res])
    tail = (struct.pack('<I', len(output)) + output if output else b'') + \
        (b'' if table is None else struct.pack('<I', len(table)) + table)
    send = sock.sendall if idle is None else (lambda b: _send_patiently(sock, b, idle))
    if len(data) + len(tail) < BULK:
        send(head + bytes(data) + tail)
    else:
        send(head)
        send(data)
        if tail:   # an app that has read its answer may exit at once: send nothing more
            send(tail)


def _send_patiently(sock: socket.socket, data, idle: Callable[[], None]) -> None:
    view = memoryview(data)
    while view.nbytes:
        try:
            view = view[sock.send(view, socket.MSG_DONTWAIT):]
        except (BlockingIOError, InterruptedError):
            if not select.select([], [sock], [], IDLE_S)[1]:
                idle()


def read_reply(sock: socket.socket) -> Tuple[int, Tuple[int, ...], bytes, int, int]:
    """(err, results, data, mode, flags); used by tests standing in for the interposer."""
    magic, err, nres, length, mode, flags = REP.unpack(recv_exact(sock, REP.size))
    if magic != MAGIC:
        raise WireError('bad reply magic')
    res = struct.unpack(f'<{nres}Q', recv_exact(sock, 8 * nres)) if nres else ()
    data = bytes(recv_exact(sock, length)) if length else b''
    return err, res, data, mode, flags
