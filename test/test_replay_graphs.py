# Copyright 2026 rrto_ros authors. Apache-2.0.
"""The server's replay as graphs (the cuda backend's path), checked against a fake backend
that records what would run on the GPU: which entries join a graph, where input bytes are
staged, when the stream is synchronised, and the fall-back when capture fails."""

from __future__ import annotations

from collections import namedtuple
import struct
from typing import List

import pytest

from rrto_ros.protocol.messages import Request
from rrto_ros.server.backend import CudaError
from rrto_ros.server.replay import encode_template
from rrto_ros.server.replay import ServerReplay

C = namedtuple('C', 'op args key_data var_len result err')
PARAMS = struct.pack('<QQi', 0x1000, 0x2000, 5)


def launch(stream: int = 0) -> C:
    return C('LAUNCH', (7, 1, 1, 1, 32, 1, 1, 0, stream), PARAMS, 0, (), 0)


def inference(n_launches: int = 3, stream: int = 0) -> List[C]:
    return ([C('MEMCPY_HTOD', (0x1000, stream, 0), b'', 8, (), 0)] +
            [launch(stream) for _ in range(n_launches)] +
            [C('MEMCPY_DTOH', (0x2000, 4, stream, 0), b'', 0, (), 0)])


class FakeGraphs:
    """Device memory is a dict; a graph is the list of operations captured."""
    supports_graphs = True

    def __init__(self, fail_capture: bool = False) -> None:
        self.mem = {0x2000: b'\0\0\0\0'}
        self.log: List[tuple] = []       # what the host asked for, in order
        self.capturing = None
        self.fail_capture = fail_capture

    # what ServerReplay's execute callback does for non-copy entries
    def execute(self, req: Request):
        if self.capturing is not None:
            self.capturing.append(('launch', req.args[0]))
        else:
            self.log.append(('launch now', req.args[0]))
        return [], []

    def staging(self, nbytes):
        return memoryview(bytearray(nbytes))

    def capture_begin(self):
        if self.fail_capture:
            raise CudaError(801, 'capture not supported here')
        self.capturing = []

    def capture_htod(self, dst, src):
        self.capturing.append(('htod', dst, src))

    def capture_dtoh(self, dst, src):
        self.capturing.append(('dtoh', dst, src))

    def capture_end(self):
        ops, self.capturing = self.capturing, None
        return ops

    def capture_abort(self):
        self.capturing = None

    def graph_launch(self, graph, stream):
        self.log.append(('graph', len(graph), stream))
        for op in graph:            # runs at once: the fake GPU is synchronous
            if op[0] == 'htod':
                self.mem[op[1]] = bytes(op[2])
            elif op[0] == 'dtoh':
                op[1][:] = self.mem[op[2]]
            else:
                self.mem[0x2000] = self.mem.get(0x1000, b'????')[:4]

    def stream_sync(self, stream):
        self.log.append(('sync', stream))


def make(fake: FakeGraphs, calls: List[C]) -> ServerReplay:
    r = ServerReplay(fake.execute, lambda: fake)
    r.load(1, 0, encode_template(calls))
    return r


def test_a_whole_inference_is_one_graph_and_one_sync():
    fake = FakeGraphs()
    replay = make(fake, inference())
    for k in range(3):
        res, frames = replay.run(1, 0, 5, memoryview(b'in%d-....' % k))
        assert bytes(frames[0]) == b'in%d-' % k         # the staged input reached the output
    assert fake.log == [('graph', 5, 0), ('sync', 0)] * 3
    assert replay.graph_launches == 3 and replay.templates[1].runs == 2


def test_ranges_cut_by_the_frontier_each_get_a_graph_and_inputs_wait_for_reuse():
    fake = FakeGraphs()
    replay = make(fake, inference())
    for k in range(2):
        replay.run(1, 0, 3, memoryview(b'frame-%d.' % k))   # input + 2 launches: no sync
        res, frames = replay.run(1, 3, 5, None)              # launch + result copy
        assert bytes(frames[0]) == b'fram'
    assert fake.log == [('graph', 3, 0), ('graph', 2, 0), ('sync', 0)] * 2


def test_staged_input_in_flight_is_not_overwritten():
    """A range with an input and no sync, run twice in a row, synchronises before its
    staging buffer is written again (possible when an inference has no result copy)."""
    calls = [C('MEMCPY_HTOD', (0x1000, 0, 0), b'', 8, (), 0), launch(), launch()]
    fake = FakeGraphs()
    replay = make(fake, calls)
    replay.run(1, 0, 3, memoryview(b'a' * 8))
    replay.run(1, 0, 3, memoryview(b'b' * 8))
    assert fake.log == [('graph', 3, 0), ('sync', 0), ('graph', 3, 0)]


def test_a_copy_to_the_host_ends_a_graph_and_other_streams_split_runs():
    calls = inference(2) + [launch(), launch(stream=0x77), launch(stream=0x77)]
    fake = FakeGraphs()
    replay = make(fake, calls)
    replay.run(1, 0, len(calls), memoryview(b'x' * 8))
    assert fake.log == [('graph', 4, 0), ('sync', 0), ('launch now', 7), ('graph', 2, 0x77)]


def test_capture_failure_falls_back_to_one_entry_at_a_time():
    fake = FakeGraphs(fail_capture=True)
    replay = ServerReplay(fake.execute, lambda: fake)
    replay.load(1, 0, encode_template([launch(), launch()]))
    replay.run(1, 0, 2, None)
    replay.run(1, 0, 2, None)
    assert fake.log == [('launch now', 7)] * 4


def test_wrong_payload_size_is_refused_before_anything_runs():
    fake = FakeGraphs()
    replay = make(fake, inference())
    with pytest.raises(CudaError, match='copy 8 input bytes, the request carries 3'):
        replay.run(1, 0, 5, memoryview(b'abc'))
    assert fake.log == []


def test_a_barrier_runs_nothing_and_a_reloaded_sequence_forgets_the_old_one():
    fake = FakeGraphs()
    replay = make(fake, inference())
    replay.run(1, 0, 3, memoryview(b'frame-0.'))
    assert replay.run(1, 3, 3, None) == ([], [])     # the interposer's barrier
    assert fake.log == [('graph', 3, 0)]
    # The same id loaded again (another table): its own plan and graphs, not the old ones.
    replay.load(1, 0, encode_template([launch(), launch()]))
    replay.run(1, 0, 2, None)
    assert fake.log[-1] == ('graph', 2, 0)
    with pytest.raises(CudaError, match='out of step'):
        replay.run(1, 2, 2 + 1, None)
