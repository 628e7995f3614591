# Copyright 2026 rrto_ros authors. Apache-2.0.
"""A session names only its own device memory (issue 12 item 1, the API part): copies,
memsets and frees of another session's or a stale address fail with cudaErrorInvalidValue,
as CUDA answers natively, before the backend sees them; replay templates are checked too."""

from __future__ import annotations

import struct
from typing import List, Tuple

import pytest
from test_replay_graphs import C, FakeGraphs, inference, make

from rrto_ros.protocol import ops
from rrto_ros.protocol.messages import Reply, Request
from rrto_ros.protocol.ops import Op
from rrto_ros.server.address_book import AddressBook
from rrto_ros.server.backend import CudaError, make_backend
from rrto_ros.server.module_cache import ModuleCache
from rrto_ros.server.replay import encode_template
from rrto_ros.server.session import ServerSession


# ----------------------------------------------------------------- the book
def test_address_book_ranges_frees_and_stale_addresses():
    book = AddressBook()
    book.add(0x1000, 256)
    book.add(0x3000, 16, freeable=False)            # a module variable
    book.check(0x1000, 256, 'copy')
    book.check(0x10f0, 16, 'copy')                  # inside, at an offset
    book.check(0x9999, 0, 'copy')                   # nothing to touch: CUDA allows it
    for addr, n in ((0x0fff, 2), (0x10f0, 17), (0x2000, 1), (0x3010, 1)):
        with pytest.raises(CudaError) as e:
            book.check(addr, n, 'copy')
        assert e.value.code == ops.CUDA_ERROR_INVALID_VALUE
    with pytest.raises(CudaError, match='not an allocation of this session'):
        book.remove(0x1010)                         # not a base
    with pytest.raises(CudaError):
        book.remove(0x3000)                         # a variable is not freed
    book.remove(0x1000)
    with pytest.raises(CudaError):                  # stale now
        book.check(0x1000, 1, 'copy')
    with pytest.raises(CudaError):                  # freed twice
        book.remove(0x1000)


# ----------------------------------------------------------------- two sessions
class _Session:
    def __init__(self, name: bytes) -> None:
        self.s = ServerSession(name * 16, name, lambda: make_backend('emu'), ModuleCache(None),
                               lambda route, reply: None, lambda s: None, name.decode())
        assert not self.call(Op.HELLO, [1, 1])[0]

    def call(self, op: Op, args: List[int], *frames: bytes, **extra) -> Tuple[int, list, str]:
        req = Request(self.s.sid, 1, op, list(args), list(frames), extra=extra)
        reply = self.s._execute(req)
        assert isinstance(reply, Reply)
        return reply.err, reply.res, reply.message


@pytest.fixture
def two():
    a, b = _Session(b'a'), _Session(b'b')
    yield a, b
    for s in (a, b):
        s.s.close()


def test_a_session_cannot_touch_another_sessions_memory(two):
    a, b = two
    err, (ptr,), _ = a.call(Op.MALLOC, [64])
    assert err == 0
    assert a.call(Op.MEMCPY_HTOD, [ptr, 0, 0], b'x' * 64)[0] == 0
    # Before B allocates anything, A's pointer is foreign to it whatever the backend's
    # address spaces (emu gives each session its own, so addresses may coincide).
    for what, (op, args, frames) in {
            'read': (Op.MEMCPY_DTOH, [ptr, 64, 0, 0], ()),
            'write': (Op.MEMCPY_HTOD, [ptr, 0, 0], (b'y' * 64,)),
            'memset': (Op.MEMSET, [ptr, 0, 64, 0, 0], ()),
            'free': (Op.FREE, [ptr], ())}.items():
        err, _, message = b.call(op, args, *frames)
        assert err == ops.CUDA_ERROR_INVALID_VALUE, (what, err, message)
        assert 'this session' in message, message
    err, (mine,), _ = b.call(Op.MALLOC, [64])
    foreign = ptr if ptr != mine else mine + (1 << 20)
    for what, args in {'copy from': [mine, foreign, 64, 0, 0],
                       'copy to': [foreign, mine, 64, 0, 0],
                       'overrun': [mine + 32, mine, 64, 0, 0]}.items():
        err, _, message = b.call(Op.MEMCPY_DTOD, args)
        assert err == ops.CUDA_ERROR_INVALID_VALUE and 'this session' in message, (what, message)
    # The victim's data is untouched and its own calls still work.
    err, _, _ = a.call(Op.MEMCPY_DTOH, [ptr, 64, 0, 0])
    assert err == 0
    assert a.call(Op.FREE, [ptr])[0] == 0
    assert a.call(Op.MEMCPY_DTOH, [ptr, 1, 0, 0])[0] == ops.CUDA_ERROR_INVALID_VALUE   # stale
    assert a.call(Op.FREE, [0])[0] == 0                                              # NULL


def test_a_replay_template_cannot_name_foreign_memory(two):
    a, b = two
    err, (ptr,), _ = a.call(Op.MALLOC, [64])
    calls = [C('MEMCPY_DTOH', (ptr + 8, 4, 0, 0), b'', 0, (), 0)]   # B allocated nothing
    assert b.call(Op.REPLAY_LOAD, [5, 0], encode_template(calls))[0] == 0
    err, _, message = b.call(Op.REPLAY_RUN, [5, 0, 1])
    assert err == ops.CUDA_ERROR_INVALID_VALUE and 'this session' in message, message


def test_graph_capture_checks_its_copies():
    """Captured copies bypass the session's request checks: the replay asks the guard
    first."""
    seen: List[Request] = []

    def guard(req: Request) -> None:
        seen.append(req)
        if req.op == Op.MEMCPY_DTOH:
            raise CudaError(ops.CUDA_ERROR_INVALID_VALUE, 'not device memory of this session')

    fake = FakeGraphs()
    replay = make(fake, inference())
    replay._guard = guard
    replay.run(1, 0, 5, memoryview(struct.pack('<Q', 7)))
    assert {r.op for r in seen} >= {Op.MEMCPY_HTOD, Op.MEMCPY_DTOH}
    # No graph holds the refused copy: the entries run one at a time, through the session's
    # own checked path (test_a_replay_template_cannot_name_foreign_memory).
    assert not any(entry[0] == 'graph' for entry in fake.log), fake.log


def test_a_session_memory_quota_refuses_the_allocation_beyond_it():
    s = _Session(b'q')
    s.s.memory_quota = 1000
    try:
        err, (p1,), _ = s.call(Op.MALLOC, [600])
        assert err == 0
        err, _, message = s.call(Op.MALLOC, [600])
        assert err == ops.CUDA_ERROR_MEMORY_ALLOCATION and 'session_memory_bytes' in message
        assert s.call(Op.FREE, [p1])[0] == 0          # freed memory counts no more
        assert s.call(Op.MALLOC, [600])[0] == 0
    finally:
        s.s.close()
