# Copyright 2026 rrto_ros authors. Apache-2.0.
"""Record/replay of library calls (LIBCALL): stream work in the dependency graph and the
search, blocking library calls in the replay table, library calls inside the server's graph
runs (setup calls skipped or run on the host), launch parameter patches, and the search and
table on the operator log of a real PyTorch inference (test/data)."""

from __future__ import annotations

import pathlib
import struct
from typing import List

import pytest

from rrto_ros.client.replay_table import compile_table
from rrto_ros.client.replay_table import entries
from rrto_ros.client.replay_table import KIND_BLOCK
from rrto_ros.client.replay_table import KIND_INPUT
from rrto_ros.client.replay_table import KIND_LOCAL
from rrto_ros.client.replayer import ClientReplay
from rrto_ros.protocol import forwarding
from rrto_ros.protocol.messages import Request
from rrto_ros.protocol.ops import Op
from rrto_ros.record import oplog_file
from rrto_ros.record.calls import Call
from rrto_ros.record.calls import is_stream_work
from rrto_ros.record.calls import library_function
from rrto_ros.record.deps import DepGraph
from rrto_ros.record.search import Recorder
from rrto_ros.server.backend import CudaError
from rrto_ros.server.replay import encode_template
from rrto_ros.server.replay import entry_streams
from rrto_ros.server.replay import NOT_CAPTURABLE
from rrto_ros.server.replay import ServerReplay
from rrto_ros.server.replay import SETUP

DATA = pathlib.Path(__file__).resolve().parent / 'data'
# resnet18 224, cuDNN off: the emu dry run's log, and the GPU's once committed
# (bench/record_torch_oplog.py --backend cuda --out test/data/torch_resnet18_gpu.oplog ...)
TORCH_LOGS = sorted(DATA.glob('torch_resnet18_*.oplog'))
ONE = struct.pack('<f', 1.0)
ZERO = struct.pack('<f', 0.0)
A, B, C = 0x10000, 0x20000, 0x30000


def lib(name: str, words, buffers=None, outs=None) -> Call:
    return Call('LIBCALL', (), forwarding.encode(name, words, buffers or {}, outs or {}))


def set_stream(handle: int, stream: int) -> Call:
    return lib('cublasSetStream_v2', [handle, stream])


def sgemm(handle: int = 1, a: int = A, b: int = B, c: int = C) -> Call:
    return lib('cublasSgemm_v2', [handle, 0, 0, 4, 4, 4, 0, a, 4, b, 4, 0, c, 4],
               {6: ONE, 11: ZERO})


def lt_matmul(layout: int, stream: int = 0) -> Call:
    return lib('cublasLtMatmul', [2, 3, 0, A, layout, B, layout, 0, C, layout, C, layout, 0,
                                  0, 0, stream], {2: ONE, 7: ZERO, 12: bytes(64)})


def malloc(ptr: int, size: int = 0x1000) -> Call:
    return Call('MALLOC', (size,), result=(ptr,))


def inference() -> List[Call]:
    """Input upload, a cuBLAS GEMM and a cuBLASLt matmul with per-inference descriptors,
    the result copy."""
    return [Call('MEMCPY_HTOD', (A, 0, 1), var_len=64),
            set_stream(1, 0), sgemm(),
            lib('cublasLtMatrixLayoutCreate', [5, 0, 4, 4, 4]),
            lt_matmul(5),
            lib('cublasLtMatrixLayoutDestroy', [5]),
            Call('MEMCPY_DTOH', (C, 64, 0, 1)),
            Call('STREAM_SYNC', (0,))]


# ----------------------------------------------------------------- classification
def test_stream_work_comes_from_the_spec():
    assert is_stream_work(sgemm()) and is_stream_work(lt_matmul(5))
    assert not is_stream_work(set_stream(1, 0))
    assert not is_stream_work(Call('LAUNCH', (1,) * 9, b'\0' * 8))
    assert library_function(set_stream(1, 0)).name == 'cublasSetStream_v2'
    assert library_function(Call('LIBCALL', (), b'\x03\x00nope\x00\x00')) is None


def test_library_stream_work_reads_and_writes_its_device_arguments():
    g = DepGraph()
    for p in (A, B, C):
        g.add(malloc(p))
    up = g.end
    g.add(Call('MEMCPY_HTOD', (A, 0, 1), var_len=64))
    g.add(set_stream(1, 0))                    # setup: no data flow
    gemm = g.end
    assert g.add(sgemm()) == (up,)             # reads A, written by the upload
    assert g.add(Call('MEMCPY_DTOH', (C, 64, 0, 1))) == (gemm,)
    assert g.is_start(up + 1) and not g.is_end(gemm)
    reads, writes = g.footprint(sgemm())
    assert sorted(reads) == sorted(writes) == [(A, A + 0x1000), (B, B + 0x1000),
                                               (C, C + 0x1000)]


def test_search_cuts_an_inference_that_ends_in_library_work():
    rec = Recorder(record_window=3)
    for p in (A, B, C):
        rec.add(malloc(p))
    for _ in range(5):
        for c in inference():
            rec.add(c)
    found = rec.search()
    assert len(found) == 1
    seq = found[0]
    assert seq.tier == 2 and len(seq) == len(inference()) and seq.repetitions >= 3
    assert seq.calls[0].op == 'MEMCPY_HTOD' and seq.outputs == (6,)


def test_table_kinds_of_library_calls():
    heur = lib('cublasLtMatmulAlgoGetHeuristic', [2, 3, 5, 5, 5, 5, 7, 1, 0, 0],
               outs={8: 96, 9: 4})
    limit = lib('cudaDeviceGetLimit', [0, 0], outs={0: 8})
    table = compile_table([(1, inference() + [heur, limit])])
    kinds = [k for _, _, _, k in entries(table)]
    assert kinds == [KIND_INPUT] + [KIND_LOCAL] * 5 + [KIND_BLOCK, KIND_LOCAL,
                                                       KIND_BLOCK, KIND_BLOCK]


# ----------------------------------------------------------------- server graphs
class LibFake:
    """A graph-capable backend that logs what runs: host-side calls, capture, launches."""
    supports_graphs = True

    def __init__(self) -> None:
        self.log: List[tuple] = []
        self.capturing = None
        self.mem = {C: b'\0' * 64}

    def execute(self, req: Request):
        what = forwarding.call_name(bytes(req.frames[0])) if req.op == Op.LIBCALL else \
            req.op.name
        (self.capturing if self.capturing is not None else self.log).append(what)
        return [], []

    def staging(self, nbytes):
        return memoryview(bytearray(nbytes))

    def capture_begin(self):
        self.capturing = []

    def capture_htod(self, dst, src):
        self.capturing.append('htod')

    def capture_dtoh(self, dst, src):
        self.capturing.append(('dtoh', dst))

    def capture_end(self):
        graph, self.capturing = self.capturing, None
        self.log.append(('captured', tuple(x for x in graph if isinstance(x, str))))
        return graph

    def capture_abort(self):
        self.capturing = None

    def graph_launch(self, graph, stream):
        self.log.append(('graph', stream))
        for op in graph:
            if isinstance(op, tuple):
                op[1][:] = self.mem[C]

    def stream_sync(self, stream):
        self.log.append(('sync', stream))


def test_entry_streams_follow_the_handles_stream():
    reqs = [Request(b'', 0, Op[c.op], list(c.args), [c.key_data] if c.key_data else [])
            for c in [sgemm(), set_stream(1, 9), sgemm(), lt_matmul(5, stream=4),
                      lib('cudaDeviceGetLimit', [0, 0], outs={0: 8}),
                      lib('cublasLtMatrixLayoutCreate', [5, 0, 4, 4, 4])]]
    # a GEMM before its handle's stream is known is run op by op
    assert entry_streams(reqs) == [NOT_CAPTURABLE, SETUP, 9, 4, NOT_CAPTURABLE, SETUP]


def test_a_gemm_whose_handle_stream_was_set_outside_the_run_is_not_captured():
    launch = Call('LAUNCH', (7, 1, 1, 1, 32, 1, 1, 0, 0), struct.pack('<Q', A))
    limit = lib('cudaDeviceGetLimit', [0, 0], outs={0: 8})
    calls = [set_stream(1, 0), limit, launch, sgemm(), launch,
             Call('MEMCPY_DTOH', (C, 64, 0, 1))]
    replay = ServerReplay(lambda req: ([], []), lambda: None)
    replay.load(1, 0, encode_template(calls))
    _, steps = replay._plan(1, replay.templates[1], 0, len(calls))
    assert steps == [(0, 1), (1, 2), (2, 3), (3, 4), (4, 6)]


def test_library_work_joins_the_graph_and_run_local_descriptors_are_skipped():
    fake = LibFake()
    replay = ServerReplay(fake.execute, lambda: fake)
    calls = inference()[:-1]          # input .. result copy: one run on stream 0
    replay.load(1, 0, encode_template(calls))
    replay.run(1, 0, len(calls), memoryview(b'x' * 64))
    # capture ran everything (setup calls for real), then the handle's stream was set back
    assert fake.log[0] == ('captured', ('htod', 'cublasSetStream_v2', 'cublasSgemm_v2',
                                        'cublasLtMatrixLayoutCreate', 'cublasLtMatmul',
                                        'cublasLtMatrixLayoutDestroy'))
    assert fake.log[1:] == ['cublasSetStream_v2', ('graph', 0), ('sync', 0)]
    fake.log.clear()
    replay.run(1, 0, len(calls), memoryview(b'y' * 64))
    # later: the persistent handle's setting runs on the host, the descriptor made and
    # destroyed inside the graph is not made again
    assert fake.log == ['cublasSetStream_v2', ('graph', 0), ('sync', 0)]
    assert replay.graph_launches == 2


def test_launch_parameter_patches_replace_the_template_and_recapture():
    params = struct.pack('<QQ', A, 0x7ffd00000000)
    launch = Call('LAUNCH', (7, 1, 1, 1, 32, 1, 1, 0, 0), params)
    calls = [Call('MEMCPY_HTOD', (A, 0, 1), var_len=8), launch, launch,
             Call('MEMCPY_DTOH', (C, 64, 0, 1))]
    fake = LibFake()
    seen = []
    replay = ServerReplay(lambda req: (seen.append(bytes(req.frames[0])), fake.execute(req))[1],
                          lambda: fake)
    replay.load(1, 0, encode_template(calls))
    replay.run(1, 0, 4, memoryview(b'i' * 8))
    new = struct.pack('<QQ', A, 0x7ffe00000000)
    patch = struct.pack('<II', 2, len(new)) + new
    seen.clear()
    replay.run(1, 0, 4, memoryview(b'i' * 8 + patch))
    assert seen == [params, new]                    # recaptured with the app's bytes
    assert replay.patches == 1
    seen.clear()
    replay.run(1, 0, 4, memoryview(b'i' * 8 + patch))   # same bytes again: graph kept
    assert seen == [] and replay.patches == 1
    for bad in (struct.pack('<II', 0, 8) + bytes(8),       # not a launch
                struct.pack('<II', 1, 4) + bytes(4),       # wrong length
                struct.pack('<II', 1, 16) + bytes(3)):     # cut short
        with pytest.raises(CudaError, match='patch'):
            replay.run(1, 0, 4, memoryview(b'i' * 8 + bad))


# ----------------------------------------------------------------- a real PyTorch log
@pytest.fixture(scope='module', params=TORCH_LOGS, ids=[p.stem for p in TORCH_LOGS])
def torch_log(request):
    return oplog_file.load(str(request.param))


def test_a_torch_log_is_committed():
    assert any(p.stem == 'torch_resnet18_emu' for p in TORCH_LOGS)


def test_torch_log_is_found_and_replays_with_one_blocking_call(torch_log):
    """The log of `torch_app resnet18 224 5 --cudnn off` (cuDNN off: convolutions are
    im2col + cublasSgemm, the classifier is cublasLtMatmul), recorded under the
    interposer: on the GPU, or in the emu dry run (RRTO_EMU_UNKNOWN_KERNELS=skip: the
    same calls, meaningless data)."""
    _, calls = torch_log
    rec = Recorder(record_window=3)
    found = []
    for c in calls:
        rec.add(c)
        if c.op in ('MEMCPY_DTOH', 'STREAM_SYNC') and not found:
            found = rec.search()
    assert len(found) == 1, 'the steady-state inference was not found'
    seq = found[0]
    outputs = [i for i, c in enumerate(calls) if c.op == 'MEMCPY_DTOH']
    assert len(seq) == outputs[-1] - outputs[-2]          # one whole inference
    assert seq.tier == 2 and seq.calls[0].op == 'MEMCPY_HTOD' and len(seq.outputs) == 1
    names = [library_function(c).name for c in seq.calls if c.op == 'LIBCALL']
    assert names.count('cublasSgemm_v2') == 20 and names.count('cublasLtMatmul') == 1
    assert 'cublasLtMatrixLayoutCreate' in names and 'cublasSetStream_v2' in names
    # the result copy depends on the classifier's matmul (library work is data flow)
    last = rec.log.end - 1
    while rec.log.call(last).op != 'MEMCPY_DTOH':
        last -= 1
    dep = rec.graph.deps(last)[0]
    assert library_function(rec.log.call(dep)).name == 'cublasLtMatmul'
    # the replay table: one input, one blocking entry (the result), all else local
    table = compile_table([(1, seq.calls)])
    kinds = [k for _, _, _, k in entries(table)]
    assert kinds.count(KIND_BLOCK) == 1 and kinds.count(KIND_INPUT) == 1
    # the server captures every GEMM: each stream library call lies in a graph run
    replay = ServerReplay(lambda req: ([], []), lambda: None)
    replay.load(1, 0, encode_template(seq.calls))
    t = replay.templates[1]
    _, steps = replay._plan(1, t, 0, len(seq))
    in_runs = {k for i, j in steps if j - i >= 2 for k in range(i, j)}
    stream_work = [k for k, c in enumerate(seq.calls) if is_stream_work(c)]
    assert len(stream_work) == 21 and set(stream_work) <= in_runs


def test_torch_log_resume_position(torch_log):
    _, calls = torch_log
    client = ClientReplay(record_window=3)
    for c in calls:
        client._add(c)
    seqs, start_seq, start_pos = client.find()
    assert start_seq == 0 and start_pos == len(seqs[0][1])   # at an inference boundary


def test_oplog_file_round_trip_and_errors(tmp_path):
    calls = inference()
    path = tmp_path / 'x.oplog'
    assert oplog_file.dump(str(path), calls, 'app', 'pipelined') == len(calls)
    head, back = oplog_file.load(str(path))
    assert head['app'] == 'app' and [c.key() for c in back] == [c.key() for c in calls]
    (tmp_path / 'bad').write_bytes(b'\x93\x01\x02')
    with pytest.raises(ValueError, match='RRTO_OPLOG_DUMP'):
        oplog_file.load(str(tmp_path / 'bad'))


# ----------------------------------------------------------------- launch identity
def garbage_inferences(n: int, pointers) -> List[Call]:
    """Inferences of one launch whose struct carries a device pointer (``pointers[k]`` in
    inference k) and a word of stack garbage that differs every time."""
    calls = []
    for k in range(n):
        params = struct.pack('<QQQ', pointers[k % len(pointers)], 0x7ffe00000000 + 16 * k, 5)
        calls += [Call('MEMCPY_HTOD', (A, 0, 1), var_len=64),
                  Call('LAUNCH', (7, 1, 1, 1, 32, 1, 1, 0, 0), params),
                  Call('MEMCPY_DTOH', (C, 64, 0, 1))]
    return calls


def test_launch_bytes_outside_device_pointers_do_not_break_the_period():
    rec = Recorder(record_window=3)
    for p in (A, B, C):
        rec.add(malloc(p))
    for c in garbage_inferences(6, [B]):
        rec.add(c)
    found = rec.search()
    assert len(found) == 1 and len(found[0]) == 3
    # the template holds the latest bytes; replay patches the launch when they differ
    assert found[0].calls[1].key_data == garbage_inferences(6, [B])[-2].key_data


def test_launch_pointers_still_tell_inferences_apart():
    rec = Recorder(record_window=3)
    for p in (A, B, B + 0x2000, C):
        rec.add(malloc(p))
    for c in garbage_inferences(12, [B, B + 0x2000]):     # double buffering
        rec.add(c)
    found = rec.search()
    assert sorted(len(s) for s in found) == [3, 3] and len({s.idents for s in found}) == 2
