# Copyright 2026 rrto_ros authors. Apache-2.0.
"""Server side of replay: the recorded sequences of one session, run range by range as the
app's interposer validates them (REPLAY_RUN seq, from, to).

The server keeps a cursor per sequence and refuses a range that does not continue where the
last one ended: the interposer and the server can never disagree about what has run.

Speed: where a range holds a run of two or more launches (memsets, copies) on one stream,
the first replay captures the run into a CUDA graph and later replays launch that graph: one
driver call instead of one Python round of work per kernel. The ranges are the same every
inference (the interposer cuts them at fixed entries), so graphs are reused. Copies between
host and device join the graph through page-locked staging buffers: the request's input
bytes are copied into the staging buffer before the launch, and a copy to the host (only as
the last entry of a run: it is what the app waits for) is read from its buffer after the
stream has synchronised. A typical inference (input copy, kernels, result copy) is then one
graph launch and one synchronisation.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
import logging
import time
from typing import Callable, Dict, List, Optional, Tuple

import msgpack

from rrto_ros.protocol import ops
from rrto_ros.protocol.messages import frame_bytes
from rrto_ros.protocol.messages import Request
from rrto_ros.protocol.ops import Op
from rrto_ros.server.backend import Backend
from rrto_ros.server.backend import CudaError

log = logging.getLogger(__name__)
Execute = Callable[[Request], tuple]


# op -> index of its stream argument
CAPTURABLE = {Op.LAUNCH: 8, Op.MEMSET: 3, Op.MEMCPY_DTOD: 3, Op.MEMCPY_HTOD: 1,
              Op.MEMCPY_DTOH: 2}


@dataclass
class Graph:
    """A captured run of template entries and the staging memory of its host copies."""
    exe: object
    stream: int
    inputs: List[memoryview]            # one per input copy, in order
    output: Optional[memoryview]        # the final copy to the host, if the run ends so


@dataclass
class Template:
    requests: List[Request]
    cursor: int = 0
    runs: int = 0            # completed passes through the sequence
    pass_s: float = 0.0      # server time spent on the current pass
    pass_times_s: List[float] = field(default_factory=list)


class ServerReplay:
    def __init__(self, execute: Execute, backend: Callable[[], Optional[Backend]] = lambda: None,
                 guard: Callable[[Request], None] = lambda req: None) -> None:
        self._execute = execute
        self._backend = backend
        self._guard = guard     # raises for a copy to or from memory the session may not name
        self.templates: Dict[int, Template] = {}
        self._graphs: Dict[Tuple[int, int, int], Graph] = {}   # (seq, from, to) -> graph
        self._plans: Dict[Tuple[int, int, int], Tuple[int, List[Tuple[int, int]]]] = {}
        self._no_graph: set = set()
        self._in_flight: set = set()   # graphs with staged inputs launched, not synchronised
        self.graph_launches = 0

    def load(self, seq_id: int, start: int, blob: bytes) -> None:
        try:
            rows = msgpack.unpackb(blob, raw=False)
            requests = [Request(b'', 0, Op(op), list(args), [key] if key else [],
                                extra={'var_len': var_len} if Op(op) == Op.MEMCPY_HTOD else {})
                        for op, args, key, var_len in rows]
        except (ValueError, TypeError, msgpack.UnpackException) as e:
            raise ValueError(f'malformed replay sequence {seq_id}: {e}') from None
        if not requests or not 0 <= start <= len(requests):
            raise ValueError(f'replay sequence {seq_id}: start {start} outside 0..{len(requests)}')
        self.templates[seq_id] = Template(requests, start)
        for cache in (self._plans, self._graphs):   # a reused id: nothing of the old one
            for key in [k for k in cache if k[0] == seq_id]:
                del cache[key]
        self._no_graph = {k for k in self._no_graph if k[0] != seq_id}

    def run(self, seq_id: int, start: int, end: int, payload: Optional[memoryview]) -> tuple:
        """Run entries [start, end); ``payload`` holds the data of the input copies among
        them, back to back. Returns the last entry's (results, frames). An empty range at
        the sequence's position runs nothing: it is answered in order, after everything
        sent before it (the interposer's barrier)."""
        t = self.templates.get(seq_id)
        if t is None:
            raise CudaError(ops.CUDA_ERROR_INVALID_VALUE, f'no replay sequence {seq_id}')
        n = len(t.requests)
        if start == end == t.cursor and not payload:   # a barrier: nothing to run
            return [], []
        if start == 0 and t.cursor == n:       # the next inference
            t.cursor = 0
            t.runs += 1
            t.pass_times_s.append(t.pass_s)
            del t.pass_times_s[:-1000]
            t.pass_s = 0.0
        if start != t.cursor or not start < end <= n:
            raise CudaError(ops.CUDA_ERROR_INVALID_VALUE,
                            f'replay of sequence {seq_id} out of step: asked [{start}, {end}) '
                            f'at position {t.cursor} of {n}')
        expected, steps = self._plan(seq_id, t, start, end)
        got = len(payload) if payload is not None else 0
        if got != expected:
            raise CudaError(ops.CUDA_ERROR_INVALID_VALUE,
                            f'replay entries [{start}, {end}) of sequence {seq_id} copy '
                            f'{expected} input bytes, the request carries {got}')
        offset = 0
        t0 = time.perf_counter()
        out: tuple = ([], [])
        try:
            for i, j in steps:
                if j - i >= 2:
                    ran = self._run_graph(seq_id, t, i, j, payload, offset)
                    if ran is not None:
                        out, offset = ran
                        continue
                for k in range(i, j):     # one by one
                    req = t.requests[k]
                    if req.op == Op.MEMCPY_HTOD:
                        n = req.extra['var_len']
                        req = Request(b'', 0, req.op, req.args, [payload[offset:offset + n]])
                        offset += n
                    t.cursor = k + 1     # what has run, even if this entry fails
                    out = self._execute(req)
        finally:
            t.pass_s += time.perf_counter() - t0
        return out

    def _plan(self, seq_id: int, t: Template, start: int, end: int
              ) -> Tuple[int, List[Tuple[int, int]]]:
        """The input bytes range [start, end) carries and its steps: runs of capturable
        entries (graph candidates) and single entries. Ranges repeat every inference, so
        each is worked out once."""
        key = (seq_id, start, end)
        plan = self._plans.get(key)
        if plan is None:
            expected = sum(r.extra['var_len'] for r in t.requests[start:end]
                           if r.op == Op.MEMCPY_HTOD)
            steps, i = [], start
            while i < end:
                j = max(self._capturable_run(t.requests, i, end), i + 1)
                steps.append((i, j))
                i = j
            plan = self._plans[key] = (expected, steps)
        return plan

    @staticmethod
    def _capturable_run(requests: List[Request], i: int, end: int) -> int:
        """End of the run of capturable entries on one stream that starts at i; a copy to
        the host ends a run."""
        first = requests[i]
        if first.op not in CAPTURABLE:
            return i
        stream = first.args[CAPTURABLE[first.op]]
        j = i
        while j < end and requests[j].op in CAPTURABLE and \
                requests[j].args[CAPTURABLE[requests[j].op]] == stream:
            j += 1
            if requests[j - 1].op == Op.MEMCPY_DTOH:
                break
        return j

    def _run_graph(self, seq_id: int, t: Template, i: int, j: int,
                   payload: Optional[memoryview], offset: int) -> Optional[Tuple[tuple, int]]:
        """Run entries [i, j) as one CUDA graph. Returns (the last entry's results, the
        offset in ``payload`` after this run's inputs); None when graphs cannot serve them."""
        backend = self._backend()
        key = (seq_id, i, j)
        if backend is None or not backend.supports_graphs or key in self._no_graph:
            return None
        graph = self._graphs.get(key) or self._capture(backend, key, t.requests[i:j])
        if graph is None:
            return None
        if key in self._in_flight:      # its staged inputs may still be read: wait first
            backend.stream_sync(graph.stream)
            self._in_flight.clear()
        for buf in graph.inputs:
            n = buf.nbytes
            buf[:] = payload[offset:offset + n]
            offset += n
        backend.graph_launch(graph.exe, graph.stream)
        t.cursor = j
        self.graph_launches += 1
        if graph.output is None:
            if graph.inputs:
                self._in_flight.add(key)
            return ([], []), offset
        backend.stream_sync(graph.stream)
        self._in_flight.clear()
        return ([], [bytes(graph.output)]), offset

    def _capture(self, backend: Backend, key: Tuple[int, int, int],
                 requests: List[Request]) -> Optional[Graph]:
        stream = requests[0].args[CAPTURABLE[requests[0].op]]
        inputs: List[memoryview] = []
        output = None
        try:
            for r in requests:   # the copies below bypass the session's own checks
                self._guard(r)
            staged = [backend.staging(r.extra['var_len']) if r.op == Op.MEMCPY_HTOD else
                      backend.staging(r.args[1]) if r.op == Op.MEMCPY_DTOH else None
                      for r in requests]
            backend.capture_begin()
            for req, buf in zip(requests, staged):
                if req.op == Op.MEMCPY_HTOD:
                    backend.capture_htod(req.args[0], buf)
                    inputs.append(buf)
                elif req.op == Op.MEMCPY_DTOH:
                    backend.capture_dtoh(buf, req.args[0])
                    output = buf
                else:
                    self._execute(req)
            exe = backend.capture_end()
        except (CudaError, NotImplementedError) as e:
            backend.capture_abort()
            log.info('replay: entries [%d, %d) of sequence %d run without a graph: %s',
                     key[1], key[2], key[0], e)
            self._no_graph.add(key)
            return None
        graph = self._graphs[key] = Graph(exe, stream, inputs, output)
        return graph


def encode_template(calls) -> bytes:
    """What the client sends with REPLAY_LOAD: [op, args, key data, variable data length]
    per recorded call."""
    return msgpack.packb([[int(Op[c.op]), list(c.args), bytes(c.key_data), c.var_len]
                          for c in calls], use_bin_type=True)


def payload_of(req: Request) -> Optional[memoryview]:
    return frame_bytes(req.frames[0]) if req.frames else None
