# Copyright 2026 rrto_ros authors. Apache-2.0.
"""Finding the inference operator sequence (IOS) in the recorded log (paper Algorithm 3,
made robust to prologues, several outputs, inner repetition, alternation and changes).

API
    ``Recorder(record_window=3, max_log=200_000, max_period=None, volatile_ops=())`` —
    ``add(call)`` for every call of the session (in order, results filled in; returns its
    log index), ``search()`` at inference boundaries (after a DTOH, or a sync; any other
    time works too), ``reset()`` to record again, ``record_window`` settable at run time
    (an int >= 1, else ValueError). ``search()`` returns ``[]`` until a sequence has
    repeated ``record_window`` consecutive times at the log's end, then the list of
    :class:`Sequence` that make up the repeating cycle (usually exactly one). It never
    raises on odd logs. ``log`` (:class:`OpLog`), ``graph`` (:class:`DepGraph`) and
    ``interner`` are exposed for inspection.

How the search works
    1. *Period candidates.* The end hint is the log's last DTOH (the result; the last call if
       the log has no DTOH). Every earlier call with the same key is a candidate period
       ``p`` = distance between the two. Periods longer than ``len(log) / record_window``
       cannot repeat often enough and are not tried.
    2. *Cheap filters, then verification.* A period must make the last
       ``(record_window - 1) * p`` calls equal to the calls ``p`` before them. The last few
       calls reject most wrong ``p`` in one vectorised numpy gather; polynomial prefix
       hashes of the key array (kept up to date incrementally) then test the whole required
       tail for all remaining candidates at once; the survivors (in practice the right
       period and its multiples) are checked exactly by comparing key slices, ascending,
       and the multiples of a verified period that cannot explain more are dropped. The
       verified periodic region is then extended
       backwards (in doubling numpy chunks) as far as it goes: that region is the steady
       state, and whatever precedes it (first-inference MALLOCs, weight uploads, warm-up)
       is the prologue.
    3. *Cutting the cycle* (where one inference ends and the next begins) with the
       dependency graph of the most recent instances:

       - tier 2 ("input" boundary): the gap between an output (a DTOH, an end candidate)
         and the next call that writes device memory and depends on nothing earlier (a
         start candidate: the input upload, or a MEMSET that clears a buffer), with only
         passive calls (syncs, events, MALLOC/FREE, ...) between them. The cut goes after
         the passive calls that finish an inference (syncs, queries, FREE) and before those
         that open the next (MALLOC, EVENT_RECORD, ...).
       - tier 1: no such gap; the first cut after the end hint between an end candidate and
         a start candidate.
       - tier 0: no start/end candidate pair at all (e.g. a benchmark loop that re-runs the
         model on an input already on the device): the cut right after the end hint (and the
         syncs that follow it).

       So a sequence always ends after the *last* output of its inference (and the syncs
       that wait for it): an output followed by more kernels that read device data is not
       an end of the inference, because those kernels are no start candidates.
    4. *Choosing among periods*: the highest tier, then the longest periodic region (the
       one that explains most of the steady state), then the shortest period. The longest
       region is what rejects too-short periods: ten identical launches inside one
       inference (or an inner loop that copies a token out each step) are periodic only
       inside that inference, while the real inference repeats over the whole steady
       state. A period made of ``k`` identical complete inferences reduces to one. A cycle
       of tier 0 or 1 whose periodic region begins right after an inference boundary (an
       input upload that follows an output) is the body of a larger inference and is not
       reported. (Only in the very first inference, an inner loop [launch, DTOH] x k is
       indistinguishable from a benchmark loop that re-runs a model on a fixed input; it is
       reported as a tier-0 sequence until the second inference begins.)
    5. *Trust*: the cycle must occur ``record_window`` times completely, back to back, inside
       the periodic region (identical keys: op, args, var lengths, results, errors, and
       of a launch's parameter buffer its length and the words that point into device
       memory: ``Recorder.identity``). HTOD payloads may differ (replay ships them), and
       so may a launch's other parameter bytes (sizes, scalars, the uninitialised padding
       PyTorch's structs carry): replay sends a patch where the app's bytes differ from
       the table's, so the server always runs what the app passed.

Semantics decisions
    *Alternating shapes* (A B A B ...): the cycle is A+B; it has two tier-2 boundaries, so
    ``search()`` returns two sequences, [A, B], each a complete inference, each with
    ``repetitions`` = its occurrences in the verified tail. Why two rather than one A+B:
    the replayer matches call by call and can pick, at every inference boundary, whichever
    sequence the next call starts (a trie over the sequences; A and B begin with different
    input uploads, or share a prefix that is executed identically either way). Two
    sequences keep replaying when the app's order changes (A A B, a skipped B), where one
    A+B template would diverge at the first irregularity. The same rule splits an
    inference that uploads a new input *after* an output (an encoder/decoder pair, or a
    MEMSET-then-run second stage) into two sequences; both are still complete request/
    response units and replay identically. Identical pieces are returned once.
    Sequences are ordered by their most recent occurrence, the last one being the
    inference that completed last.

    *What counts as the end*: the output DTOH plus the passive calls that follow it up to
    the next input (syncs, queries, FREE). Calls that follow it and read or write device
    data (more kernels, more outputs) belong to the same inference.

    *Interleaved one-off calls* (a cudaMemGetInfo between inferences) break exact
    periodicity: the search reports nothing until the sequence has again repeated
    ``record_window`` times after the one-off, then finds it again. A change of the
    inference works the same way: the stale sequence is never reported once the log's end
    no longer repeats it.

    *Results are part of the identity*: a MALLOC that returns another pointer is another
    call. ``record_window = 1`` trusts a sequence after one occurrence, delimited by the
    previous occurrence of the end hint (so still needs two end hints in the log): as the
    region's length is no evidence then, the shortest period of the best tier is taken.

Speed
    Keys are interned ints in a numpy array; a search costs O(log length) numpy work plus
    O(period) Python for the cut: well under a millisecond on a 100,000-call log of
    500-call inferences, a few milliseconds for adversarial ones (an inner loop with an
    output every other call). Once a trusted sequence is found, later searches only check
    that the new calls continue the period (O(new calls)) and redo the full search when they
    do not. ``bench/search_speed.py`` measures it.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import replace
from typing import Dict, Iterable, List, Optional, Tuple

import numpy as np

from rrto_ros.record.calls import Call
from rrto_ros.record.calls import Key
from rrto_ros.record.calls import KeyInterner
from rrto_ros.record.calls import LAUNCH
from rrto_ros.record.calls import MEMCPY_DTOH
from rrto_ros.record.calls import MEMCPY_HTOD
from rrto_ros.record.calls import TAIL_OPS
from rrto_ros.record.calls import touches_device
from rrto_ros.record.calls import writes_device
from rrto_ros.record.deps import DepGraph
from rrto_ros.record.oplog import OpLog

TIER_INPUT = 2        # cut between an output and an input upload
TIER_CANDIDATES = 1   # cut between an end candidate and a start candidate
TIER_OUTPUT = 0       # cut after the end hint only

_ANCHOR_STAGES = ((0, 1), (1, 4))
_HASH_BASE = np.uint64(0x5851F42D4C957F2D)       # odd, so no power of it is 0 mod 2**64


def _powers(n: int) -> np.ndarray:
    """B**0 .. B**(n-1) mod 2**64, by doubling (vectorised; cumprod would be 5x slower)."""
    pw = np.empty(n, dtype=np.uint64)
    pw[0] = 1
    k = 1
    while k < n:
        m = min(k, n - k)
        step = np.uint64(int(pw[k - 1]) * int(_HASH_BASE) % (1 << 64))     # B**k
        np.multiply(pw[:m], step, out=pw[k:k + m])
        k += m
    return pw


class _PrefixHash:
    """Polynomial prefix hashes (mod 2**64) of the log's keys, extended as the log grows.

    ``S[i]`` = sum over ``origin <= j < origin + i`` of ``(key[j] + 1) * B**(j - origin)``,
    so two windows of equal length compare in O(1), for many windows at once in numpy.
    Only used to discard period candidates: a collision can let a wrong candidate through
    to the exact comparison, never reject a right one.
    """

    def __init__(self) -> None:
        self.origin = 0
        self.len = 0                                  # keys covered
        self.S = np.zeros(1, dtype=np.uint64)
        self.PW = np.ones(1, dtype=np.uint64)

    def update(self, keys: np.ndarray, base: int) -> None:
        """Cover the log whose kept keys are ``keys``, oldest at absolute index ``base``."""
        end = base + len(keys)
        covered = self.origin + self.len
        if not self.origin <= base <= covered <= end \
                or base - self.origin > max(len(keys), 4096):
            self.origin, self.len = base, 0           # rebuild from the log's start
        new = keys[self.origin + self.len - base:]
        if not len(new):
            return
        m, k = self.len, len(new)
        need = m + k + 1
        if self.S.shape[0] < need:
            size = max(need, 2 * self.S.shape[0])
            grown = np.zeros(size, dtype=np.uint64)
            grown[:m + 1] = self.S[:m + 1]
            self.S = grown
        if self.PW.shape[0] < need:
            self.PW = _powers(max(need, 2 * self.PW.shape[0]))
        h = (new.astype(np.uint64) + np.uint64(1)) * self.PW[m:m + k]
        np.cumsum(h, dtype=np.uint64, out=self.S[m + 1:m + k + 1])
        self.S[m + 1:m + k + 1] += self.S[m]
        self.len = m + k

    def same(self, a: np.ndarray, b: np.ndarray, length: np.ndarray) -> np.ndarray:
        """Per element: do the windows at absolute ``a`` and ``b`` (``a > b``) of
        ``length`` keys probably hold the same keys?"""
        ra, rb = a - self.origin, b - self.origin
        S = self.S
        return (S[ra + length] - S[ra]) == (S[rb + length] - S[rb]) * self.PW[ra - rb]


@dataclass(frozen=True)
class Sequence:
    """One inference: the calls to match, in order, as the app made them.

    ``inputs`` are the indices (in ``calls``) of the HTOD copies, whose payload is variable
    and is shipped at replay; ``outputs`` the indices of the DTOH copies (the results the app
    waits for). ``repetitions`` counts the complete occurrences in the verified periodic
    tail of the log. ``period`` is the length of the repeating cycle the sequence is part of
    (``len(calls)``, or more when several sequences alternate); ``last_index`` is the log
    index of the first call of its most recent complete occurrence; ``tier`` says how its
    boundaries were found (2: output -> input gap, 1: start/end candidates, 0: end hint).
    """

    calls: Tuple[Call, ...]
    inputs: Tuple[int, ...]
    outputs: Tuple[int, ...]
    repetitions: int
    period: int = 0
    last_index: int = -1
    tier: int = TIER_INPUT
    idents: Tuple[Key, ...] = ()     # Recorder.identity() of each call

    def __len__(self) -> int:
        return len(self.calls)

    def keys(self) -> Tuple[tuple, ...]:
        """``Call.key()`` of each call (with the recorded results, also of volatile ops)."""
        return tuple(c.key() for c in self.calls)


@dataclass
class _Cycle:
    """A verified period and where to cut it (all positions relative to ``ref``)."""

    p: int
    start: int                  # absolute index where the periodic region begins
    ref: int                    # absolute index of cycle position 0 (some N - p)
    tier: int
    cuts: List[int]             # cycle positions where sequences begin, ascending

    def count(self, cut: int, length: int, end: int) -> Tuple[int, int]:
        """(complete occurrences in [start, end), absolute start of the last one) of the
        piece of ``length`` calls that begins at cycle position ``cut``."""
        p = self.p
        a0 = self.start + (self.ref + cut - self.start) % p
        if a0 + length > end:
            return 0, -1
        k = (end - length - a0) // p
        return k + 1, a0 + k * p

    def repetitions(self, end: int) -> int:
        return max(self.count(c, self.p, end)[0] for c in self.cuts)


class Recorder:
    """The operator log, its dependency graph, and the IOS search (see the module doc)."""

    def __init__(self, record_window: int = 3, max_log: int = 200_000,
                 max_period: Optional[int] = None, volatile_ops: Iterable[str] = ()) -> None:
        """``max_period`` caps the inference length searched for (default: the log length
        over ``record_window``). ``volatile_ops`` (opt-in, e.g. EVENT_ELAPSED, EVENT_QUERY,
        MEM_GET_INFO) are ops whose results and error are left out of the identity, so that an
        app that times every inference still repeats; a replayer must then execute those
        calls for real instead of returning the recorded results."""
        self._rw = self._check_window(record_window)
        self.max_period = max_period
        self.volatile_ops = frozenset(volatile_ops)
        self.interner = KeyInterner()
        self.log = OpLog(max_log)
        self.graph = DepGraph()
        self._hint = -1                    # absolute index of the last DTOH
        self._intern_limit = max(65536, 4 * self.log.max_len)
        self._cache: Optional[_Cycle] = None     # the trusted cycle of the last search
        self._cache_end = -1
        self._cache_result: List[Sequence] = []
        self._pieces: List[Tuple[tuple, Sequence]] = []     # templates of the cycle
        self._hash = _PrefixHash()

    # ----------------------------------------------------------- settings
    @staticmethod
    def _check_window(value: int) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f'record_window must be an integer >= 1, not {value!r}')
        return int(value)

    @property
    def record_window(self) -> int:
        """Consecutive repetitions required before a sequence is trusted (>= 1)."""
        return self._rw

    @record_window.setter
    def record_window(self, value: int) -> None:
        self._rw = self._check_window(value)
        self._invalidate()

    def __len__(self) -> int:
        return len(self.log)

    # ----------------------------------------------------------- recording
    def add(self, call: Call) -> int:
        """Record ``call`` (the app's next call, with its results); returns its log index."""
        kid = self.interner.intern_key(self.identity(call))
        idx = self.log.append(call, kid)
        self.graph.add(call, idx, kid)
        if self.log.base > self.graph.base:
            self.graph.trim(self.log.base)
        if call.op == MEMCPY_DTOH:
            self._hint = idx
        if len(self.interner) > self._intern_limit:
            self._compact_keys()
        return idx

    def identity(self, call: Call) -> Key:
        """What the search compares calls by: ``call.key()``, except that a launch's
        parameter bytes count only where they point into device memory (see
        :meth:`DepGraph.pointer_words`) and a volatile op's results do not count."""
        if call.op == LAUNCH:
            return (call.op, call.args, self.graph.pointer_words(call.key_data),
                    len(call.key_data), call.result, call.err)
        if call.op in self.volatile_ops:
            return (call.op, call.args, call.key_data, call.var_len, (), 0)
        return call.key()

    def reset(self) -> None:
        """Drop the log ("record again"). Live allocations are kept: the app still has them."""
        self.log.clear()
        self.graph.reset_history(self.log.end)
        self._hint = -1
        self.interner = KeyInterner()
        self._hash = _PrefixHash()
        self._invalidate()

    def _compact_keys(self) -> None:
        live = np.unique(self.log.keys()).tolist()
        self.log.remap(self.interner.compact(live))
        self.graph.clear_cache()            # keyed by the old ids
        self._hash = _PrefixHash()
        self._invalidate()

    def _invalidate(self) -> None:
        self._cache = None
        self._cache_end = -1
        self._cache_result = []
        self._pieces = []

    # ----------------------------------------------------------- searching
    def search(self) -> List[Sequence]:
        """The sequences of the steady state, or [] when none is trustworthy yet."""
        end = self.log.end
        if self._cache is not None and end >= self._cache_end:
            if end == self._cache_end:
                return list(self._cache_result)
            if self._continues(self._cache):
                return self._emit(self._cache, end)
        self._invalidate()
        cyc = self._full_search()
        if cyc is None:
            return []
        self._cache = cyc
        self._pieces = []
        return self._emit(cyc, end)

    def _continues(self, cyc: _Cycle) -> bool:
        """Do the calls added since the last search continue the cached period?"""
        keys, base, p = self.log.keys(), self.log.base, cyc.p
        lo, hi = self._cache_end - base, len(keys)
        if lo - p < 0 or cyc.start < base:
            return False
        return bool(np.array_equal(keys[lo:hi], keys[lo - p:hi - p]))

    def _full_search(self) -> Optional[_Cycle]:
        keys = self.log.keys()
        n = len(keys)
        base, end = self.log.base, self.log.end
        rw = self._rw
        if n < 2:
            return None
        h = self._hint - base if self._hint >= base else n - 1
        maxp = n // rw
        if self.max_period:
            maxp = min(maxp, self.max_period)
        if h < 1 or maxp < 1:
            return None
        # 1. candidate periods: distances from the end hint back to calls with its key
        pos = np.flatnonzero(keys[:h] == keys[h])
        if not pos.size:
            return None
        cands = (h - pos[::-1]).astype(np.int64)
        cands = cands[cands <= maxp]
        # 2a. anchors: the last calls must equal the calls p before them (where required)
        for j_lo, j_hi in _ANCHOR_STAGES:
            j_hi = min(j_hi, n)
            if not cands.size or j_lo >= j_hi:
                break
            j = np.arange(j_lo, j_hi)
            t = n - 1 - j
            need = j[None, :] < (rw - 1) * cands[:, None]
            idx = np.where(need, t[None, :] - cands[:, None], 0)
            ok = ~need | (keys[idx] == keys[t][None, :])
            cands = cands[ok.all(axis=1)]
        if cands.size and rw > 1:       # the whole required tail, by prefix hashes
            self._hash.update(keys, base)
            length = (rw - 1) * cands
            a = end - length
            cands = cands[self._hash.same(a, a - cands, length)]
        # 2b. verify, extend the region, cut; keep the best trusted cycle
        best: Optional[_Cycle] = None
        best_rank: Tuple[int, int, int] = (-1, -1, 0)
        while cands.size:
            p = int(cands[0])
            cands = cands[1:]
            need = (rw - 1) * p
            if need and not np.array_equal(keys[n - need:], keys[n - need - p:n - p]):
                continue
            r = self._extend(keys, p, need)
            # A multiple of p periodic on a region no longer than p's explains no more of
            # the log and cuts the same way: drop those candidates.
            cands = cands[(cands % p != 0) | (cands > r + p)]
            cyc = self._cut(p, end - r - p, end)
            if cyc.repetitions(end) < rw:
                continue
            if cyc.tier < TIER_INPUT and self._after_input(cyc.start):
                continue            # the body of an inference whose input came before it
            # With record_window 1 the region's length is no evidence (every period
            # "repeats" once): take the shortest, i.e. the previous end hint.
            rank = (cyc.tier, r + p if rw > 1 else 0, -p)
            if rank > best_rank:
                best, best_rank = cyc, rank
                if cyc.tier == TIER_INPUT and r + p == n:
                    break           # nothing can explain more of the log
        return best

    def _after_input(self, start: int) -> bool:
        """Is the call before ``start`` (passive calls aside) an input upload that follows an
        output, i.e. an inference boundary?"""
        log, graph = self.log, self.graph
        i = start - 1
        want_output = False
        for _ in range(64):
            if i < log.base:
                return False
            call = log.call(i)
            if touches_device(call):
                if writes_device(call) and graph.is_start(i):
                    want_output = True      # an input upload (one of several, maybe)
                else:
                    return want_output and call.op == MEMCPY_DTOH
            i -= 1
        return False

    @staticmethod
    def _extend(keys: np.ndarray, p: int, r: int) -> int:
        """Number of trailing positions t with keys[t] == keys[t - p], knowing the last
        ``r`` are."""
        n = len(keys)
        chunk = max(2 * p, 256)
        while True:
            hi = n - r
            lo = max(p, hi - chunk)
            if hi <= lo:
                return r
            eq = keys[lo:hi] == keys[lo - p:hi - p]
            if not eq.all():
                return n - 1 - (lo + int(np.flatnonzero(~eq)[-1]))
            r = n - lo
            chunk *= 2

    def _cut(self, p: int, start: int, end: int) -> _Cycle:
        """Where inferences begin in the cycle of period ``p`` (see the module doc, step 3)."""
        ref = end - p
        calls = self.log.calls(ref, end)
        ops = [c.op for c in calls]
        writes = [writes_device(c) for c in calls]
        starts = self.graph.start_flags(ref, end)
        prev = ref - p if ref - p >= start else ref   # ends need later calls: look one back
        ends = self.graph.end_flags(prev, prev + p)
        # tier 2: output -> (passive calls) -> start candidate that writes device memory
        data = [j for j in range(p) if touches_device(calls[j])]
        cuts: List[int] = []
        for k, w in enumerate(data):
            d = data[k - 1]
            if ops[d] != MEMCPY_DTOH or not ends[d] or not writes[w] or not starts[w]:
                continue
            c = d + 1
            j = d + 1
            while (j - w) % p:              # walk the gap d+1 .. w-1 (cyclic)
                if ops[j % p] in TAIL_OPS:
                    c = j + 1
                j += 1
            cuts.append(c % p)
        if cuts:
            return _Cycle(p, start, ref, TIER_INPUT, sorted(set(cuts)))
        # tier 1 / 0: after the end hint and the syncs that follow it
        hint = self._hint
        hc = (hint - ref) % p if hint >= start else p - 1
        c0 = hc + 1
        for _ in range(p - 1):
            if ops[c0 % p] not in TAIL_OPS:
                break
            c0 += 1
        for k in range(p):
            c = (c0 + k) % p
            if starts[c] and ends[c - 1]:
                return _Cycle(p, start, ref, TIER_CANDIDATES, [c])
        return _Cycle(p, start, ref, TIER_OUTPUT, [c0 % p])

    def _emit(self, cyc: _Cycle, end: int) -> List[Sequence]:
        """Build (or refresh the counts of) the sequences of a trusted cycle."""
        if cyc.repetitions(end) < self._rw:
            self._invalidate()
            return []
        cuts, p = cyc.cuts, cyc.p
        counts = []
        for k, c in enumerate(cuts):
            length = (cuts[(k + 1) % len(cuts)] - c) % p or p
            counts.append((length,) + cyc.count(c, length, end))
        if not self._pieces:                # the templates, built once per cycle
            keys, base = self.log.keys(), self.log.base
            for length, _, last in counts:
                kt = tuple(keys[last - base:last - base + length].tolist())
                calls = self.log.calls(last, last + length)
                self._pieces.append((kt, Sequence(
                    calls=calls, idents=tuple(self.interner.key_of(k) for k in kt),
                    inputs=tuple(i for i, x in enumerate(calls) if x.op == MEMCPY_HTOD),
                    outputs=tuple(i for i, x in enumerate(calls) if x.op == MEMCPY_DTOH),
                    repetitions=0, period=p, tier=cyc.tier)))
        by_keys: Dict[tuple, Sequence] = {}
        for (length, reps, last), (kt, tmpl) in zip(counts, self._pieces):
            seq = by_keys.get(kt)
            if seq is not None:             # the same inference twice in the cycle
                by_keys[kt] = replace(seq, repetitions=seq.repetitions + reps,
                                      last_index=max(seq.last_index, last))
            else:
                by_keys[kt] = replace(tmpl, repetitions=reps, last_index=last)
        result = sorted(by_keys.values(), key=lambda s: s.last_index)
        self._cache_end = end
        self._cache_result = result
        return list(result)
