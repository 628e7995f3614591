# Copyright 2026 rrto_ros authors. Apache-2.0.
"""The data-dependency graph of the recorded calls, by device-address equality.

Memory model
    Live allocations come from MALLOC (result = pointer, args[0] = size) and VAR_GET (module
    globals: result = address, args[1] = size) and end at FREE (or DEVICE_RESET). An address
    outside every live allocation that a copy or memset uses (memory the recorder never saw
    allocated) becomes a *loose* region keyed by that exact address.

Read and write sets
    ========== ===================================== ================================
    op         reads                                 writes
    ========== ===================================== ================================
    HTOD       -                                     [dst, dst + var_len)
    DTOH       [src, src + count)  (an output)       -
    DTOD       [src, src + count)                    [dst, dst + count)
    MEMSET     -                                     [dst, dst + count)
    LAUNCH     every referenced allocation, whole    every referenced allocation, whole
    LIBCALL    stream work (class ``stream`` in the forwarding spec): the allocations its
               ``device`` parameters point into, whole, read and written (a GEMM)
    others     -                                     -
    ========== ===================================== ================================

    A LAUNCH references an allocation when any 8-byte-aligned little-endian word of its
    parameter buffer falls inside it (pointers can sit anywhere, also inside by-value
    structs); the kernel may read and write all of it (conservative). Ranges are tracked at
    byte granularity inside an allocation: each allocation keeps the segments of its bytes
    with the index of their last writer, so a copy into one tensor of a big (caching
    allocator) block does not make later copies out of another tensor depend on it.

Edges
    Only true data flow (read after write) makes an edge: a call depends on the last writer of
    each byte range it reads. Overwriting (HTOD, MEMSET, the destination of DTOD) creates no
    edge, which is what makes the per-inference input upload a call that depends on nothing.

Candidates
    *Start candidates* depend on nothing earlier (typically the input upload; also every
    passive call such as a sync). *End candidates* are calls that nothing later depends on;
    DTOH copies (the results) always are, and are the search's end hints.

The graph is indexed by the log's absolute call indices and trims its history lazily along
with the log (:meth:`DepGraph.trim`).
"""

from __future__ import annotations

import bisect
import struct
from typing import Dict, Iterable, List, Optional, Set, Tuple

from rrto_ros.protocol import forwarding
from rrto_ros.record.calls import Call
from rrto_ros.record.calls import DEVICE_RESET
from rrto_ros.record.calls import FREE
from rrto_ros.record.calls import is_stream_work
from rrto_ros.record.calls import LAUNCH
from rrto_ros.record.calls import MALLOC
from rrto_ros.record.calls import MEMCPY_DTOD
from rrto_ros.record.calls import MEMCPY_DTOH
from rrto_ros.record.calls import MEMCPY_HTOD
from rrto_ros.record.calls import MEMSET
from rrto_ros.record.calls import VAR_GET

Range = Tuple[int, int]
_NO_DEPS: Tuple[int, ...] = ()


class Region:
    """A live allocation (or loose region): [start, end) and who last wrote which bytes.

    ``segs`` holds disjoint (lo, hi, writer) triples, in no particular order; bytes in no
    segment were never written while recorded.
    """

    __slots__ = ('start', 'end', 'segs')

    def __init__(self, start: int, end: int) -> None:
        self.start = start
        self.end = end
        self.segs: List[Tuple[int, int, int]] = []

    def __repr__(self) -> str:
        return f'Region(0x{self.start:x}, 0x{self.end:x}, {self.segs})'

    def writers(self, lo: int, hi: int, out: Set[int]) -> None:
        for s_lo, s_hi, w in self.segs:
            if s_lo < hi and lo < s_hi:
                out.add(w)

    def all_writers(self, out: Set[int]) -> None:
        for seg in self.segs:
            out.add(seg[2])

    def write(self, lo: int, hi: int, writer: int) -> None:
        if lo <= self.start and hi >= self.end:
            self.segs = [(self.start, self.end, writer)]
            return
        kept = []
        for seg in self.segs:
            s_lo, s_hi, w = seg
            if s_hi <= lo or s_lo >= hi:
                kept.append(seg)
                continue
            if s_lo < lo:
                kept.append((s_lo, lo, w))
            if s_hi > hi:
                kept.append((hi, s_hi, w))
        kept.append((lo, hi, writer))
        self.segs = kept


class DepGraph:
    """Allocations, byte-range writers and the read-after-write edges between calls."""

    def __init__(self) -> None:
        self._starts: List[int] = []              # sorted starts of live allocations
        self._allocs: Dict[int, Region] = {}      # start -> allocation
        self._loose: Dict[int, Region] = {}       # address -> loose region
        self._gen = 0                             # bumps whenever the regions change
        self._ref_cache: Dict[object, Tuple[Region, ...]] = {}
        self._cache_gen = 0
        self.base = 0                             # absolute index of _deps[0]
        self._deps: List[Tuple[int, ...]] = []
        self._has_dependent = bytearray()
        self._unpack = {}                         # word count -> struct unpacker

    # ----------------------------------------------------------- feeding
    def add(self, call: Call, index: Optional[int] = None, cache_key: object = None
            ) -> Tuple[int, ...]:
        """Account for ``call`` (the call at absolute ``index``; default: the next one).

        ``cache_key`` (e.g. the interned key id) lets LAUNCHes with the same parameter buffer
        reuse the parameter scan while the allocations do not change. Returns the indices of
        the calls it depends on, most recent first.
        """
        end = self.base + len(self._deps)
        if index is None:
            index = end
        elif index != end:
            if index < end or self._deps:
                raise ValueError(f'call index {index} does not follow {end - 1}')
            self.base = index             # first call after a reset: adopt the log's index
        op = call.op
        deps = _NO_DEPS
        if op == LAUNCH or is_stream_work(call):
            deps = self._launch(call, index, cache_key)
        elif op == MEMCPY_HTOD:
            self._write(call.arg(0), call.var_len, index)
        elif op == MEMCPY_DTOH:
            deps = self._read(call.arg(0), call.arg(1))
        elif op == MEMCPY_DTOD:
            deps = self._read(call.arg(1), call.arg(2))
            self._write(call.arg(0), call.arg(2), index)
        elif op == MEMSET:
            self._write(call.arg(0), call.arg(2), index)
        elif op == MALLOC:
            if not call.err and call.result and call.result[0] and call.arg(0):
                self._add_alloc(call.result[0], call.arg(0))
        elif op == FREE:
            self._free(call.arg(0))
        elif op == VAR_GET:
            if not call.err and call.result and call.result[0] and call.arg(1):
                self._add_alloc(call.result[0], call.arg(1), keep_same=True)
        elif op == DEVICE_RESET:
            self._starts.clear()
            self._allocs.clear()
            self._loose.clear()
            self._gen += 1
        self._deps.append(deps)
        self._has_dependent.append(0)
        if deps:
            hd, b = self._has_dependent, self.base
            for d in deps:
                if d >= b:
                    hd[d - b] = 1
        return deps

    def _launch(self, call: Call, index: int, cache_key: object) -> Tuple[int, ...]:
        if self._cache_gen != self._gen:
            self._ref_cache.clear()
            self._cache_gen = self._gen
        refs = self._ref_cache.get(cache_key) if cache_key is not None else None
        if refs is None:
            refs = self.referenced(call.key_data) if call.op == LAUNCH else \
                self._lib_referenced(call.key_data)
            if cache_key is not None:
                if len(self._ref_cache) > 65536:
                    self._ref_cache.clear()
                self._ref_cache[cache_key] = refs
        if not refs:
            return _NO_DEPS
        writers: Set[int] = set()
        for r in refs:
            r.all_writers(writers)
            r.segs = [(r.start, r.end, index)]
        return tuple(sorted(writers, reverse=True)) if writers else _NO_DEPS

    def _regions(self, lo: int, hi: int, create: bool) -> List[Tuple[Region, int, int]]:
        """The regions (with the clipped range) that [lo, hi) covers."""
        out = []
        starts = self._starts
        i = bisect.bisect_right(starts, lo) - 1
        if i >= 0 and lo < self._allocs[starts[i]].end:
            pass
        else:
            i += 1
            if i >= len(starts) or starts[i] >= hi:     # not in any allocation: loose
                r = self._loose.get(lo)
                if r is None and create:
                    r = self._loose[lo] = Region(lo, hi)
                    self._gen += 1
                if r is not None:
                    if hi > r.end:
                        r.end = hi
                    out.append((r, lo, hi))
                return out
        while i < len(starts) and starts[i] < hi:
            r = self._allocs[starts[i]]
            out.append((r, max(lo, r.start), min(hi, r.end)))
            i += 1
        return out

    def _read(self, lo: int, count: int) -> Tuple[int, ...]:
        if count <= 0:
            return _NO_DEPS
        writers: Set[int] = set()
        for r, a, b in self._regions(lo, lo + count, create=False):
            r.writers(a, b, writers)
        return tuple(sorted(writers, reverse=True)) if writers else _NO_DEPS

    def _write(self, lo: int, count: int, index: int) -> None:
        if count <= 0:
            return
        for r, a, b in self._regions(lo, lo + count, create=True):
            r.write(a, b, index)

    def _add_alloc(self, start: int, size: int, keep_same: bool = False) -> None:
        end = start + size
        old = self._allocs.get(start)
        if keep_same and old is not None and old.end == end:
            return
        # An allocation overlapping the new one was freed without our seeing it: drop it.
        i = bisect.bisect_right(self._starts, start) - 1
        if i >= 0 and self._allocs[self._starts[i]].end <= start:
            i += 1
        i = max(i, 0)
        while i < len(self._starts) and self._starts[i] < end:
            del self._allocs[self._starts.pop(i)]
        bisect.insort(self._starts, start)
        self._allocs[start] = Region(start, end)
        for a in [a for a in self._loose if start <= a < end]:
            del self._loose[a]
        self._gen += 1

    def _free(self, ptr: int) -> None:
        if self._allocs.pop(ptr, None) is not None:
            del self._starts[bisect.bisect_left(self._starts, ptr)]
            self._gen += 1

    # ----------------------------------------------------------- queries
    def referenced(self, param_buffer: bytes) -> Tuple[Region, ...]:
        """The live regions that some 8-byte-aligned little-endian word of the buffer points
        into (a loose region counts when a word equals its address), in order of first
        reference."""
        n = len(param_buffer) >> 3
        if not n or not (self._starts or self._loose):
            return ()
        unpack = self._unpack.get(n)
        if unpack is None:
            unpack = self._unpack[n] = struct.Struct(f'<{n}Q').unpack_from
        starts, allocs, loose = self._starts, self._allocs, self._loose
        lo = starts[0] if starts else 1 << 64
        hi = allocs[starts[-1]].end if starts else 0
        seen: Dict[int, Region] = {}
        for w in unpack(param_buffer):
            if lo <= w < hi:
                i = bisect.bisect_right(starts, w) - 1
                r = allocs[starts[i]]
                if w < r.end:
                    seen.setdefault(r.start, r)
                    continue
            if loose:
                r = loose.get(w)
                if r is not None:
                    seen.setdefault(w, r)
        return tuple(seen.values())

    def pointer_words(self, param_buffer: bytes) -> bytes:
        """``param_buffer`` with every 8-byte word that :meth:`referenced` would not count as
        a reference zeroed: what identifies a launch for the search. Its other bytes
        (sizes, scalars, and the uninitialised padding PyTorch's structs carry, which
        changes between inferences) travel as a patch at replay when they differ, so the
        server runs the app's own bytes (interposer/replay.c)."""
        n = len(param_buffer) >> 3
        out = bytearray(len(param_buffer))
        if not n or not (self._starts or self._loose):
            return bytes(out)
        starts, allocs, loose = self._starts, self._allocs, self._loose
        lo = starts[0] if starts else 1 << 64
        hi = allocs[starts[-1]].end if starts else 0
        for k, w in enumerate(struct.unpack_from(f'<{n}Q', param_buffer)):
            keep = False
            if lo <= w < hi:
                keep = w < allocs[starts[bisect.bisect_right(starts, w) - 1]].end
            if keep or w in loose:
                out[8 * k:8 * k + 8] = param_buffer[8 * k:8 * k + 8]
        return bytes(out)

    def _lib_referenced(self, data: bytes) -> Tuple[Region, ...]:
        """The live regions a library call's ``device`` parameters point into."""
        try:
            d = forwarding.decode(data)
        except forwarding.WireError:
            return ()
        seen: Dict[int, Region] = {}
        for p, w in zip(d.function.params, d.words):
            if p.role == 'device' and w:
                for r, _, _ in self._regions(w, w + 1, create=True):
                    seen.setdefault(r.start, r)
        return tuple(seen.values())

    def footprint(self, call: Call) -> Tuple[List[Range], List[Range]]:
        """(reads, writes) of ``call`` as byte ranges, against the current allocations
        (without recording anything)."""
        op = call.op
        if op == LAUNCH or is_stream_work(call):
            refs = self.referenced(call.key_data) if op == LAUNCH else \
                self._lib_referenced(call.key_data)
            rng = [(r.start, r.end) for r in refs]
            return rng, list(rng)
        reads: List[Range] = []
        writes: List[Range] = []
        if op == MEMCPY_HTOD and call.var_len > 0:
            writes.append((call.arg(0), call.arg(0) + call.var_len))
        elif op == MEMCPY_DTOH and call.arg(1) > 0:
            reads.append((call.arg(0), call.arg(0) + call.arg(1)))
        elif op == MEMCPY_DTOD and call.arg(2) > 0:
            reads.append((call.arg(1), call.arg(1) + call.arg(2)))
            writes.append((call.arg(0), call.arg(0) + call.arg(2)))
        elif op == MEMSET and call.arg(2) > 0:
            writes.append((call.arg(0), call.arg(0) + call.arg(2)))
        return reads, writes

    def allocations(self) -> List[Range]:
        """Live allocations as (start, end), by address."""
        return [(s, self._allocs[s].end) for s in self._starts]

    def region_of(self, addr: int) -> Optional[Range]:
        """The live allocation (or loose region) holding ``addr``."""
        i = bisect.bisect_right(self._starts, addr) - 1
        if i >= 0 and addr < self._allocs[self._starts[i]].end:
            return (self._starts[i], self._allocs[self._starts[i]].end)
        r = self._loose.get(addr)
        return (r.start, r.end) if r is not None else None

    @property
    def end(self) -> int:
        """Absolute index one past the last call added."""
        return self.base + len(self._deps)

    def deps(self, i: int) -> Tuple[int, ...]:
        """Indices of the calls that call ``i`` depends on, most recent first (may include
        indices already trimmed away)."""
        return self._deps[self._pos(i)]

    def is_start(self, i: int) -> bool:
        """Call ``i`` depends on nothing earlier."""
        return not self._deps[self._pos(i)]

    def is_end(self, i: int) -> bool:
        """Nothing recorded after call ``i`` depends on it (so far)."""
        return not self._has_dependent[self._pos(i)]

    def start_flags(self, lo: int, hi: int) -> List[bool]:
        b = self.base
        return [not d for d in self._deps[self._pos(lo):hi - b]] if hi > lo else []

    def end_flags(self, lo: int, hi: int) -> List[bool]:
        b = self.base
        return [not h for h in self._has_dependent[self._pos(lo):hi - b]] if hi > lo else []

    def start_candidates(self, lo: Optional[int] = None, hi: Optional[int] = None
                         ) -> List[int]:
        lo, hi = self._span(lo, hi)
        return [lo + k for k, s in enumerate(self.start_flags(lo, hi)) if s]

    def end_candidates(self, lo: Optional[int] = None, hi: Optional[int] = None,
                       ops: Optional[Iterable[Call]] = None) -> List[int]:
        """End candidates in [lo, hi); with ``ops`` (the calls of that span), only those whose
        op is an output (DTOH) are returned: the hinted ends."""
        lo, hi = self._span(lo, hi)
        flags = self.end_flags(lo, hi)
        if ops is None:
            return [lo + k for k, e in enumerate(flags) if e]
        return [lo + k for k, (e, c) in enumerate(zip(flags, ops))
                if e and c.op == MEMCPY_DTOH]

    # ----------------------------------------------------------- upkeep
    def clear_cache(self) -> None:
        """Forget the per-key parameter scans (after the caller renumbered its keys)."""
        self._ref_cache.clear()

    def trim(self, base: int) -> None:
        """Forget calls before absolute index ``base`` (lazily: in chunks, amortised O(1))."""
        k = base - self.base
        if k > 0 and (k >= 4096 or k >= len(self._deps)):
            k = min(k, len(self._deps))
            del self._deps[:k]
            del self._has_dependent[:k]
            self.base += k

    def reset_history(self, next_index: Optional[int] = None) -> None:
        """Forget calls and who wrote what, but keep the live allocations (they are still
        allocated in the app): for "record again"."""
        self.base = self.end if next_index is None else next_index
        self._deps.clear()
        self._has_dependent.clear()
        for r in self._allocs.values():
            r.segs = []
        self._loose.clear()
        self._gen += 1

    def _span(self, lo: Optional[int], hi: Optional[int]) -> Tuple[int, int]:
        lo = self.base if lo is None else max(lo, self.base)
        hi = self.end if hi is None else min(hi, self.end)
        return lo, max(lo, hi)

    def _pos(self, i: int) -> int:
        j = i - self.base
        if not 0 <= j < len(self._deps):
            raise IndexError(f'call {i} is not in the graph [{self.base}, {self.end})')
        return j
