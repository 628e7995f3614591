# Copyright 2026 rrto_ros authors. Apache-2.0.
"""The forwarded operations, read from the interposer's ``rrto_ops.def`` (one source of truth).

Arguments of each op, as the interposer sends them (all uint64; data is the bulk part):

=================  ==========================================  ===========================
op                 args                                        data in / out
=================  ==========================================  ===========================
HELLO              pid, protocol version                       exe path / message on error
DEVICE_ATTRS       device                                      int32 attr ids / values,
                                                               name[256], uuid[16]
MEM_GET_INFO       -                                           - ; res: free, total
MALLOC             size                                        - ; res: pointer
FREE               pointer                                     -
MEMCPY_HTOD        dst, stream, async                          bytes
MEMCPY_DTOH        src, count, stream, async                   / bytes
MEMCPY_DTOD        dst, src, count, stream, async              -
MEMSET             dst, value, count, stream, async            -
STREAM_CREATE      flags, priority                             - ; res: handle
EVENT_CREATE       flags, 0                                    - ; res: handle
STREAM_*/EVENT_*   handle(s)                                   -
EVENT_ELAPSED      start, end                                  - ; res: float32 bits
MODULE_LOAD        module id, offset, total size               fatbin chunk
FUNC_GET           module id                                   mangled name /
                                                               uint32 (offset, size) pairs;
                                                               res: handle, nparams
VAR_GET            module id, size                             name ; res: address
LAUNCH             handle, gx, gy, gz, bx, by, bz, shmem,      flat parameter buffer
                   stream
REPLAY_LOAD        sequence id, start position                 the sequence (client node)
REPLAY_RUN         sequence id, from, to                       input payloads / output
REPLAY_DIVERGE     sequence id, position, error of a quiet     its message
                   replayed range not yet reported
REPLAY_NOTE        sequence id, from, to, flags, payload       a lost lane: why
                   bytes, lane bytes up, down, last round
                   trip ns (interposer to client node only)
LIBCALL            -                                           a forwarded library call
                                                               (protocol/forwarding.py) /
                                                               its out buffers; res: status
=================  ==========================================  ===========================
"""

from __future__ import annotations

import enum
import pathlib
import re
from typing import Dict, FrozenSet

DEF_FILE = pathlib.Path(__file__).resolve().parent.parent / 'interposer' / 'rrto_ops.def'
_LINE = re.compile(r'^RRTO_OP\((\d+),\s*(\w+),\s*([01]),\s*(-?\d+)\)', re.M)


def _parse():
    rows = [(int(i), name, flag == '1', int(n))
            for i, name, flag, n in _LINE.findall(DEF_FILE.read_text())]
    if not rows:
        raise RuntimeError(f'no RRTO_OP lines in {DEF_FILE}')
    return rows


_ROWS = _parse()
Op = enum.IntEnum('Op', [(name, i) for i, name, _, _ in _ROWS])
MAY_SKIP_REPLY: FrozenSet[Op] = frozenset(Op(i) for i, _, skip, _ in _ROWS if skip)

# How many arguments each op carries from the interposer to the client node (rrto_ops.def;
# MODULE_LOAD's offset and total size are the client node's: it sends the server the module
# id only). The client node refuses an op not listed here and a request with any other count.
AGENT_ARGS: Dict[Op, int] = {Op(i): n for i, _, _, n in _ROWS if n >= 0}

# CUDA error codes the client and server produce themselves (values of cudaError_t).
CUDA_SUCCESS = 0
CUDA_ERROR_INVALID_VALUE = 1
CUDA_ERROR_MEMORY_ALLOCATION = 2
CUDA_ERROR_DEVICES_UNAVAILABLE = 46
CUDA_ERROR_INVALID_DEVICE_FUNCTION = 98
CUDA_ERROR_NO_DEVICE = 100
CUDA_ERROR_INVALID_KERNEL_IMAGE = 200
CUDA_ERROR_INVALID_RESOURCE_HANDLE = 400
CUDA_ERROR_SYMBOL_NOT_FOUND = 500
CUDA_ERROR_NOT_READY = 600
CUDA_ERROR_ILLEGAL_ADDRESS = 700
CUDA_ERROR_LAUNCH_FAILURE = 719
CUDA_ERROR_NOT_SUPPORTED = 801
CUDA_ERROR_UNKNOWN = 999
