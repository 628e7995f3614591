# Copyright 2026 rrto_ros authors. Apache-2.0.
"""The data-dependency graph: allocations, read/write sets, edges, start/end candidates."""

from __future__ import annotations

import struct

from rrto_ros.record.calls import Call
from rrto_ros.record.deps import DepGraph
from rrto_ros.record.synth import FakeApp
from rrto_ros.record.synth import pack_params

A, B, C = 0x7000_0000, 0x7100_0000, 0x7200_0000


def feed(calls):
    g = DepGraph()
    deps = [g.add(c) for c in calls]
    return g, deps


def malloc(ptr, size):
    return Call('MALLOC', (size,), result=(ptr,))


def launch(params, handle=1):
    return Call('LAUNCH', (handle, 1, 1, 1, 32, 1, 1, 0, 0), key_data=params)


def htod(dst, n):
    return Call('MEMCPY_HTOD', (dst, 0, 0), var_len=n)


def dtoh(src, n):
    return Call('MEMCPY_DTOH', (src, n, 0, 0))


def test_allocations_follow_malloc_free_and_var_get():
    g, _ = feed([malloc(A, 256), malloc(B, 64), Call('FREE', (A,)),
                 Call('VAR_GET', (3, 128), b'gvar', result=(C,))])
    assert g.allocations() == [(B, B + 64), (C, C + 128)]
    assert g.region_of(B + 63) == (B, B + 64) and g.region_of(B + 64) is None
    # failed mallocs and frees of unknown pointers change nothing
    g.add(Call('MALLOC', (32,), result=(0,), err=2))
    g.add(Call('FREE', (0xdead,)))
    assert g.allocations() == [(B, B + 64), (C, C + 128)]


def test_simple_chain_upload_kernel_download():
    calls = [malloc(A, 256), malloc(B, 256), htod(A, 256),
             launch(pack_params(('Q', A), ('Q', B), ('i', 256))), dtoh(B, 256)]
    g, deps = feed(calls)
    assert deps == [(), (), (), (2,), (3,)]
    assert g.start_candidates() == [0, 1, 2]
    assert g.end_candidates() == [0, 1, 4]
    assert g.end_candidates(ops=calls) == [4]          # the hinted (DTOH) ends
    assert g.is_start(2) and not g.is_end(2) and g.is_end(4)


def test_overwrites_make_no_edges_only_reads_do():
    calls = [malloc(A, 64), htod(A, 64), htod(A, 64),
             Call('MEMSET', (A, 0, 64, 0, 0)), dtoh(A, 64)]
    _, deps = feed(calls)
    assert deps == [(), (), (), (), (3,)]             # the DTOH reads the MEMSET's bytes


def test_pointer_inside_by_value_struct_creates_dependency():
    # struct { int n; float s; float *p; } by value, then a plain int: the pointer sits at
    # offset 8, inside the struct, and points into the middle of allocation B
    params = pack_params(('i', 4), ('f', 0.5), ('Q', B + 32), ('i', 7))
    calls = [malloc(A, 64), malloc(B, 64), htod(B, 64), launch(params), dtoh(B, 8)]
    g, deps = feed(calls)
    assert deps[3] == (2,)
    assert deps[4] == (3,)                            # the kernel may have written all of B
    assert g.footprint(calls[3]) == ([(B, B + 64)], [(B, B + 64)])


def test_scalars_and_unaligned_words_are_not_pointers():
    # an int pair that happens to spell A's address only when read unaligned
    raw = b'\0\0\0\0' + struct.pack('<Q', A) + b'\0\0\0\0'
    g, deps = feed([malloc(A, 64), htod(A, 64), launch(raw),
                    launch(pack_params(('Q', A + 64), ('Q', 12345)))])
    assert deps[2] == () and deps[3] == ()             # A+64 is one past the end


def test_byte_ranges_inside_one_big_block():
    # a caching allocator: one block, tensors inside it
    calls = [malloc(A, 1 << 20), htod(A, 1024), htod(A + 4096, 1024),
             dtoh(A + 4096, 1024), dtoh(A, 2048),
             Call('MEMCPY_DTOD', (A + 8192, A + 4096, 512, 0, 0)), dtoh(A + 8192, 16)]
    _, deps = feed(calls)
    assert deps[3] == (2,)                 # only the copy into that tensor
    assert deps[4] == (1,)                 # [A, A+2048): written by call 1 only
    assert deps[5] == (2,)
    assert deps[6] == (5,)


def test_launch_reads_and_writes_whole_allocations():
    calls = [malloc(A, 64), malloc(B, 64), htod(A, 32), htod(A + 32, 32), htod(B, 64),
             launch(pack_params(('Q', A + 8), ('Q', B))), dtoh(A, 8), dtoh(B, 8)]
    _, deps = feed(calls)
    assert deps[5] == (4, 3, 2)            # every writer of both, most recent first
    assert deps[6] == (5,) and deps[7] == (5,)


def test_freed_address_reused_starts_fresh():
    calls = [malloc(A, 64), htod(A, 64), Call('FREE', (A,)), malloc(A, 64),
             launch(pack_params(('Q', A))), dtoh(A, 64)]
    _, deps = feed(calls)
    assert deps[4] == () and deps[5] == (4,)


def test_memory_never_allocated_is_matched_by_address():
    x = 0x5555_0000
    _, deps = feed([htod(x, 16), launch(pack_params(('Q', x))), dtoh(x, 16), dtoh(x + 4, 4)])
    assert deps == [(), (0,), (1,), ()]


def test_start_and_end_candidates_on_small_graph():
    # two inputs, two kernels, two outputs, a sync
    app = FakeApp()
    i1, i2, h, o1, o2 = (app.malloc(64) for _ in range(5))
    app.htod(i1, 64)                                                    # 5
    app.htod(i2, 64)                                                    # 6
    app.launch(1, pack_params(('Q', i1), ('Q', i2), ('Q', h)))          # 7
    app.launch(2, pack_params(('Q', h), ('Q', o1)))                     # 8
    app.dtoh(o1, 64)                                                    # 9
    app.launch(3, pack_params(('Q', h), ('Q', o2)))                     # 10
    app.dtoh(o2, 64)                                                    # 11
    app.sync()                                                          # 12
    g, deps = feed(app.calls)
    assert deps[7] == (6, 5) and deps[8] == (7,) and deps[10] == (8,) and deps[11] == (10,)
    assert g.start_candidates(5, 13) == [5, 6, 12]
    assert g.end_candidates(5, 13) == [9, 11, 12]
    assert g.end_candidates(5, 13, ops=app.calls[5:13]) == [9, 11]
    assert g.start_flags(5, 8) == [True, True, False]
    assert g.end_flags(7, 10) == [False, False, True]


def test_trim_and_reset_history_keep_allocations():
    g = DepGraph()
    g.add(malloc(A, 64))
    for _ in range(10000):
        g.add(htod(A, 64))
    g.trim(9000)
    assert g.base == 9000 and g.end == 10001
    assert g.is_start(9000)
    g.reset_history()
    assert g.allocations() == [(A, A + 64)] and g.base == 10001
    assert g.add(launch(pack_params(('Q', A)))) == ()   # no writer remembered
    assert g.add(dtoh(A, 4)) == (10001,)
