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

Library calls (LIBCALL, classified by the forwarding spec): stream work (a GEMM) is
captured like a launch, on the stream it names or, for cuBLAS, the stream its handle was
last set to in the sequence (unknown: it runs op by op). Setup calls (create / set /
destroy of handles and descriptors, host-side only) join a run: during capture they run, so
the stream work between them is captured with the right descriptors. At later replays the
graph holds the kernels, so a setup call whose handles are all made and destroyed inside
the run is skipped; the other setup calls (a persistent handle's stream, math mode,
workspace) run on the host before the graph launch, so the library's state stays what the
app made it. After a capture, calls that set a handle's stream run once more, so that the
handle does not keep pointing at the private capture stream.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
import logging
import struct
import time
from typing import Callable, Dict, List, Optional, Tuple

import msgpack

from rrto_ros.protocol import forwarding
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
MAX_RECAPTURES = 3  # a range whose launch parameters change more often runs op by op
SETUP = -1          # a library setup call: joins a run on any stream
NOT_CAPTURABLE = None
HANDLE_ROLES = ('create', 'destroy', 'set', 'use')


def entry_streams(requests: List[Request]) -> List[Optional[int]]:
    """Per template entry: the stream its work goes to (capturable), SETUP, or
    NOT_CAPTURABLE. A cuBLAS call's stream is its handle's, as last set in the sequence."""
    out: List[Optional[int]] = []
    handle_stream: Dict[int, int] = {}
    for r in requests:
        if r.op in CAPTURABLE:
            out.append(r.args[CAPTURABLE[r.op]])
            continue
        d = _decoded(r)
        if d is None:
            out.append(NOT_CAPTURABLE)
            continue
        fn = d.function
        roles = [p.role for p in fn.params]
        stream = next((w for p, w in zip(fn.params, d.words) if p.role == 'stream'), None)
        if 'set' in roles and stream is not None:      # e.g. cublasSetStream
            handle_stream[d.words[roles.index('set')]] = stream
        if fn.stream_work:
            if stream is None:
                stream = next((handle_stream.get(w) for p, w in zip(fn.params, d.words)
                               if p.role == 'use'), None)
            out.append(NOT_CAPTURABLE if stream is None else stream)
        elif fn.blocks or fn.lib == 'cudart' or 'kernel' in roles:
            out.append(NOT_CAPTURABLE)
        else:
            out.append(SETUP)
    return out


def stream_links(requests: List[Request]) -> List[Tuple[int, int]]:
    """Per entry: (the handle whose stream it sets, the handle whose stream its work goes to
    when no stream argument says), 0 for none. A captured call of the second kind needs
    the first inside its run: on the server the capture stream is what the handle is set to
    during the capture, and a handle still on a real stream would break the capture."""
    out = []
    for r in requests:
        d = _decoded(r)
        sets = needs = 0
        if d is not None:
            roles = [p.role for p in d.function.params]
            if 'stream' in roles and 'set' in roles:
                sets = d.words[roles.index('set')]
            elif d.function.stream_work and 'stream' not in roles and 'use' in roles:
                needs = d.words[roles.index('use')]
        out.append((sets, needs))
    return out


def _decoded(req: Request) -> Optional[forwarding.Decoded]:
    if req.op != Op.LIBCALL or not req.frames:
        return None
    try:
        return forwarding.decode(bytes(frame_bytes(req.frames[0])))
    except forwarding.WireError:
        return None


def host_calls(requests: List[Request], i: int, j: int, kinds: List[Optional[int]]
               ) -> Tuple[List[int], List[int]]:
    """Of the setup calls in run [i, j): those that must run on the host at every replay
    of its graph (a handle outlives the run), and those that set a handle's stream."""
    made, gone = set(), set()
    for k in range(i, j):
        d = _decoded(requests[k]) if kinds[k] == SETUP else None
        for p, w in zip(d.function.params if d else (), d.words if d else ()):
            if p.role == 'create':
                made.add(w)
            elif p.role == 'destroy' and w in made:
                gone.add(w)
    local = made & gone
    keep, streams = [], []
    for k in range(i, j):
        if kinds[k] != SETUP:
            continue
        d = _decoded(requests[k])
        ids = [w for p, w in zip(d.function.params, d.words) if p.role in HANDLE_ROLES and w]
        if not ids or any(w not in local for w in ids):
            keep.append(k)
            if any(p.role == 'stream' for p in d.function.params):
                streams.append(k)
    return keep, streams


@dataclass
class Graph:
    """A captured run of template entries and the staging memory of its host copies."""
    exe: object
    stream: int
    inputs: List[memoryview]            # one per input copy, in order
    output: Optional[memoryview]        # the final copy to the host, if the run ends so
    host: List[int] = field(default_factory=list)   # setup entries run at every launch


@dataclass
class Template:
    requests: List[Request]
    cursor: int = 0
    kinds: List[Optional[int]] = field(default_factory=list)   # entry_streams()
    links: List[Tuple[int, int]] = field(default_factory=list)  # stream_links()
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
        self.patches = 0               # launch parameter patches that changed a template
        self._recaptures: Dict[Tuple[int, int, int], int] = {}

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
        self.templates[seq_id] = Template(requests, start, entry_streams(requests),
                                          stream_links(requests))
        for cache in (self._plans, self._graphs, self._recaptures):   # a reused id
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
        if got < expected:
            raise CudaError(ops.CUDA_ERROR_INVALID_VALUE,
                            f'replay entries [{start}, {end}) of sequence {seq_id} copy '
                            f'{expected} input bytes, the request carries {got}')
        if got > expected:
            self._patch(seq_id, t, start, end, payload[expected:])
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

    def _patch(self, seq_id: int, t: Template, start: int, end: int, data: memoryview
               ) -> None:
        """Apply the launch parameter patches that follow a range's inputs (u32 position,
        u32 length, bytes; see interposer/replay.c): the app's bytes replace the template's,
        and a graph that holds a changed launch is captured again."""
        pos = 0
        while pos < len(data):
            if pos + 8 > len(data):
                raise CudaError(ops.CUDA_ERROR_INVALID_VALUE, f'replay of sequence {seq_id}: '
                                'a launch parameter patch is cut short')
            k, n = struct.unpack_from('<II', data, pos)
            old = t.requests[k] if start <= k < end else None
            if old is None or old.op != Op.LAUNCH or not old.frames or \
                    len(frame_bytes(old.frames[0])) != n or pos + 8 + n > len(data):
                raise CudaError(ops.CUDA_ERROR_INVALID_VALUE, f'replay of sequence {seq_id}: '
                                f'a parameter patch for entry {k} that is not a launch of '
                                f'{n} parameter bytes in [{start}, {end})')
            new = bytes(data[pos + 8:pos + 8 + n])
            pos += 8 + n
            if new == bytes(frame_bytes(old.frames[0])):
                continue
            t.requests[k] = Request(b'', 0, old.op, old.args, [new], extra=old.extra)
            for key in [g for g in self._graphs if g[0] == seq_id and g[1] <= k < g[2]]:
                del self._graphs[key]       # its kernel node has the old parameters
                self._recaptures[key] = self._recaptures.get(key, 0) + 1
                if self._recaptures[key] > MAX_RECAPTURES:   # bytes that keep changing
                    self._no_graph.add(key)
            self.patches += 1

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
                j = max(self._capturable_run(t, i, end), i + 1)
                steps.append((i, j))
                i = j
            plan = self._plans[key] = (expected, steps)
        return plan

    @staticmethod
    def _capturable_run(t: Template, i: int, end: int) -> int:
        """End of the run of capturable entries on one stream (library setup calls
        included) that starts at i; a copy to the host ends a run. A run without any
        stream work is no run."""
        stream, j, set_here = None, i, set()
        while j < end:
            kind = t.kinds[j]
            sets, needs = t.links[j]
            if kind is NOT_CAPTURABLE or kind != SETUP and stream is not None and \
                    kind != stream or needs and needs not in set_here:
                break
            if sets:
                set_here.add(sets)
            j += 1
            if kind != SETUP:
                stream = kind
                if t.requests[j - 1].op == Op.MEMCPY_DTOH:
                    break
        return i if stream is None else j

    def _run_graph(self, seq_id: int, t: Template, i: int, j: int,
                   payload: Optional[memoryview], offset: int) -> Optional[Tuple[tuple, int]]:
        """Run entries [i, j) as one CUDA graph. Returns (the last entry's results, the
        offset in ``payload`` after this run's inputs); None when graphs cannot serve them."""
        backend = self._backend()
        key = (seq_id, i, j)
        if backend is None or not backend.supports_graphs or key in self._no_graph:
            return None
        graph = self._graphs.get(key)
        if graph is None:           # capturing ran the setup calls already
            graph = self._capture(backend, key, t, i, j)
            if graph is None:
                return None
        else:
            for k in graph.host:    # setup calls the graph cannot stand for
                t.cursor = k + 1
                self._execute(t.requests[k])
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

    def _capture(self, backend: Backend, key: Tuple[int, int, int], t: Template, i: int,
                 j: int) -> Optional[Graph]:
        requests = t.requests[i:j]
        stream = next(k for k in t.kinds[i:j] if k != SETUP)
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
        keep, streams = host_calls(t.requests, i, j, t.kinds)
        for k in streams:        # the handles are left on the capture stream: set them back
            self._execute(t.requests[k])
        graph = self._graphs[key] = Graph(exe, stream, inputs, output, keep)
        return graph


def encode_template(calls) -> bytes:
    """What the client sends with REPLAY_LOAD: [op, args, key data, variable data length]
    per recorded call."""
    return msgpack.packb([[int(Op[c.op]), list(c.args), bytes(c.key_data), c.var_len]
                          for c in calls], use_bin_type=True)


def payload_of(req: Request) -> Optional[memoryview]:
    return frame_bytes(req.frames[0]) if req.frames else None
