# Copyright 2026 rrto_ros authors. Apache-2.0.
"""The replay table's layout and kinds, and the server's replay ranges."""

from __future__ import annotations

from collections import namedtuple
import struct

import pytest

from rrto_ros.client.replay_table import compile_table
from rrto_ros.client.replay_table import entries
from rrto_ros.client.replay_table import KIND_BLOCK
from rrto_ros.client.replay_table import KIND_INPUT
from rrto_ros.client.replay_table import KIND_LOCAL
from rrto_ros.client.replay_table import TABLE_MAGIC
from rrto_ros.protocol import ops
from rrto_ros.protocol.messages import Request
from rrto_ros.protocol.ops import Op
from rrto_ros.server.backend import CudaError
from rrto_ros.server.replay import encode_template
from rrto_ros.server.replay import ServerReplay

C = namedtuple('C', 'op args key_data var_len result err')


def inference():
    return [C('MEMCPY_HTOD', (0x1000, 0, 0), b'', 4096, (), 0),
            C('LAUNCH', (7, 1, 1, 1, 32, 1, 1, 0, 0), struct.pack('<QQi', 0x1000, 0x2000, 5),
              0, (), 0),
            C('EVENT_RECORD', (0x55, 0), b'', 0, (), 0),
            C('MEMCPY_DTOH', (0x2000, 40, 0, 0), b'', 0, (), 0)]


def test_layout_kinds_and_alignment():
    table = compile_table([(3, inference()), (4, inference()[:2])], start_seq=1, start_pos=2)
    magic, nseq, start_seq, start_pos = struct.unpack_from('<IIII', table)
    assert (magic, nseq, start_seq, start_pos) == (TABLE_MAGIC, 2, 1, 2)
    assert len(table) % 8 == 0
    rows = list(entries(table))
    assert [(s, p) for s, p, _, _ in rows] == [(3, 0), (3, 1), (3, 2), (3, 3), (4, 0), (4, 1)]
    kinds = {Op(op).name: kind for _, _, op, kind in rows}
    assert kinds == {'MEMCPY_HTOD': KIND_INPUT, 'LAUNCH': KIND_LOCAL,
                     'EVENT_RECORD': KIND_LOCAL, 'MEMCPY_DTOH': KIND_BLOCK}


def test_bad_tables_refused():
    with pytest.raises(ValueError):
        compile_table([])
    with pytest.raises(ValueError):
        compile_table([(1, inference())], start_pos=9)
    with pytest.raises(ValueError):
        compile_table([(1, [])])


class Recording:
    def __init__(self):
        self.ran = []

    def __call__(self, req: Request):
        self.ran.append((req.op, bytes(req.frames[0]) if req.frames else b''))
        return [len(self.ran)], []


def test_server_runs_ranges_in_step_and_wraps():
    done = Recording()
    replay = ServerReplay(done)
    replay.load(9, 0, encode_template(inference()))
    replay.run(9, 0, 1, memoryview(b'image-0' + b'.' * 4089))
    replay.run(9, 1, 3, None)
    res, _ = replay.run(9, 3, 4, None)
    assert res == [4]
    assert [op for op, _ in done.ran] == [Op.MEMCPY_HTOD, Op.LAUNCH, Op.EVENT_RECORD,
                                          Op.MEMCPY_DTOH]
    assert done.ran[0][1].startswith(b'image-0')
    assert done.ran[1][1] == struct.pack('<QQi', 0x1000, 0x2000, 5)   # recorded parameters
    replay.run(9, 0, 2, memoryview(b'image-1' + b'.' * 4089))   # the next inference
    assert done.ran[-2][1].startswith(b'image-1')
    assert replay.templates[9].runs == 1


def test_server_refuses_out_of_step_and_missing_input():
    replay = ServerReplay(Recording())
    replay.load(1, 0, encode_template(inference()))
    with pytest.raises(CudaError, match='out of step') as e:
        replay.run(1, 1, 2, None)
    assert e.value.code == ops.CUDA_ERROR_INVALID_VALUE
    with pytest.raises(CudaError, match='copy 4096 input bytes, the request carries 0'):
        replay.run(1, 0, 1, None)
    with pytest.raises(CudaError, match='no replay sequence'):
        replay.run(2, 0, 1, None)
    with pytest.raises(ValueError, match='malformed'):
        replay.load(3, 0, b'\xc1')
