# Copyright 2026 rrto_ros authors. Apache-2.0.
"""Client side of record/replay for one session: feeds the recorder, decides when a found
sequence becomes the interposer's replay table, and follows replay progress.

Phases: ``forwarding`` (mode rpc/pipelined: nothing is recorded), ``recording`` (mode
replay, no trusted sequence yet, or after a divergence) and ``replaying``.
"""

from __future__ import annotations

from collections import deque
import itertools
import logging
import time
from typing import Callable, Deque, Dict, List, Optional, Sequence, Tuple

from rrto_ros.client.replay_table import compile_table
from rrto_ros.client.replay_table import VARIABLE_RESULT_OPS
from rrto_ros.protocol.ops import Op
from rrto_ros.record.calls import Call
from rrto_ros.record.search import Recorder

log = logging.getLogger(__name__)
TAIL = 1 << 16   # longest sequence (calls) whose resume position can be found

# Calls that never repeat in a steady state and carry large data: kept out of the log.
NOT_RECORDED = frozenset({Op.HELLO, Op.BYE, Op.MODULE_LOAD, Op.REPLAY_LOAD, Op.REPLAY_RUN,
                          Op.REPLAY_DIVERGE})


def make_call(op: Op, args: Sequence[int], data: bytes, res: Sequence[int] = (),
              err: int = 0) -> Call:
    """The recorder's view of one call: identity plus the result the app saw."""
    if op in VARIABLE_RESULT_OPS:
        res, err = (), 0
    return Call.from_request(op, args, data, res, err)


class ClientReplay:
    def __init__(self, record_window: int, round_trips: Callable[[], int] = lambda: 0
                 ) -> None:
        self.recorder = Recorder(record_window=record_window)
        self._round_trips = round_trips
        self._rt_mark = 0
        # Blocking round trips each recent inference cost (up to and including its output).
        self.round_trips_per_inference: List[int] = []
        self.replay_started_at: Optional[int] = None   # inferences done when first replayed
        self.sequences: Dict[int, Tuple[Call, ...]] = {}
        self.active = False
        self.divergences = 0      # inferences that changed in the middle
        self.departures = 0       # non-matching calls between inferences
        self.inferences = 0
        self.last_inference_replayed = False   # how the latest inference ran
        self.last_output_t: Optional[float] = None
        self.latencies_s: List[float] = []
        self._ids = itertools.count(1)
        self._pending_withdraw = False
        self._tail: Deque[tuple] = deque(maxlen=TAIL)   # keys of the latest recorded calls

    # ----------------------------------------------------------- settings
    def set_record_window(self, n: int) -> None:
        self.recorder.record_window = n

    def restart(self) -> None:
        """Drop what was recorded and the active table: record again from scratch."""
        self.recorder.reset()
        self._tail.clear()
        if self.active:
            self._pending_withdraw = True
        self.active = False

    def phase(self, mode: str) -> str:
        if mode != 'replay':
            return 'forwarding'
        return 'replaying' if self.active else 'recording'

    def last_inference_phase(self, mode: str) -> str:
        """The phase the latest inference ran in ('' before the first): unlike phase(), not
        changed by what the app does after it, e.g. its teardown leaving the sequence."""
        if not self.inferences:
            return ''
        if self.last_inference_replayed:
            return 'replaying'
        return 'recording' if mode == 'replay' else 'forwarding'

    # ----------------------------------------------------------- forwarding phase
    def observe(self, op: Op, args: Sequence[int], data: bytes, res: Sequence[int] = (),
                err: int = 0) -> None:
        if op not in NOT_RECORDED:
            self._add(make_call(op, args, data, res, err))
        if op == Op.MEMCPY_DTOH:
            self._output_done(replayed=False)

    def _add(self, call: Call) -> None:
        idx = self.recorder.add(call)
        self._tail.append(self.recorder.interner.key_of(self.recorder.log.key(idx)))

    def _output_done(self, replayed: bool) -> None:
        now = time.monotonic()
        self.inferences += 1
        self.last_inference_replayed = replayed
        rt = self._round_trips()
        self.round_trips_per_inference.append(rt - self._rt_mark)
        del self.round_trips_per_inference[:-1000]
        self._rt_mark = rt
        if self.last_output_t is not None:
            self.latencies_s.append(now - self.last_output_t)
            del self.latencies_s[:-1000]
        self.last_output_t = now

    def withdraw_pending(self) -> bool:
        """True once after restart() dropped an installed table: send an empty table."""
        w, self._pending_withdraw = self._pending_withdraw, False
        return w

    def find(self) -> Optional[Tuple[List[Tuple[int, Tuple[Call, ...]]], int, int]]:
        """A table to install now, as ([(id, calls)], start sequence, start position), when
        a trusted sequence covers the log's end; None otherwise."""
        found = self.recorder.search()
        if not found:
            return None
        where = _resume_position(list(self._tail), [list(s.idents) for s in found])
        if where is None:
            return None
        seqs = [(next(self._ids), tuple(x.calls)) for x in found]
        return seqs, where[0], where[1]

    def install(self, seqs: List[Tuple[int, Tuple[Call, ...]]], start_seq: int,
                start_pos: int) -> bytes:
        self.sequences = dict(seqs)
        self.active = True
        if self.replay_started_at is None:
            self.replay_started_at = self.inferences
        log.info('replay: sequence of %s calls found, replaying from call %d',
                 '/'.join(str(len(c)) for _, c in seqs), start_pos)
        return compile_table(seqs, start_seq, start_pos)

    # ----------------------------------------------------------- replaying phase
    def ran(self, seq_id: int, start: int, end: int, payload_len: int) -> None:
        """The interposer validated entries [start, end) of a sequence. Replayed calls are
        not logged (that would cost the hot path): a divergence restarts the log from the
        executed prefix, which is all a new search needs."""
        calls = self.sequences.get(seq_id, ())
        for c in calls[start:end]:
            if c.op == 'MEMCPY_DTOH':
                self._output_done(replayed=True)

    def diverged(self, seq_id: int, pos: int) -> None:
        """The app's call did not match the table: replay ended at call ``pos``."""
        self.active = False
        if pos == 0:   # between inferences: the app did something else (e.g. it exits)
            self.departures += 1
            self.recorder.reset()
            self._tail.clear()
            log.info('replay: the app made a call outside every recorded sequence between '
                     'inferences; forwarding and recording again')
            return
        self.divergences += 1
        self.recorder.reset()
        self._tail.clear()
        for c in self.sequences.get(seq_id, ())[:pos]:   # what ran of this inference
            self._add(c)
        log.info('replay: the app left sequence %d at call %d; forwarding and recording '
                 'again (divergence %d)', seq_id, pos, self.divergences)


def _ends_with(tail: Sequence[tuple], part: Sequence[tuple], skip: int = 0) -> bool:
    """Does tail[: len(tail) - skip] end with part?"""
    end = len(tail) - skip
    return end >= len(part) and list(tail[end - len(part):end]) == list(part)


def _resume_position(tail: Sequence[tuple], seqs: Sequence[Sequence[tuple]]
                     ) -> Optional[Tuple[int, int]]:
    """Where the log's end stands in the found sequences, as (sequence, position): either
    at a boundary (after a whole sequence: that sequence and its length, from where the
    interposer accepts the start of any sequence), or inside sequence Y after its first p
    calls, which follow a whole sequence."""
    for x, keys in enumerate(seqs):
        if _ends_with(tail, keys):
            return x, len(keys)
    last = tail[-1] if tail else None
    for y, keys in enumerate(seqs):
        for p in range(len(keys) - 1, 0, -1):
            if keys[p - 1] != last or not _ends_with(tail, keys[:p]):
                continue
            if any(_ends_with(tail, whole, p) for whole in seqs):
                return y, p
    return None
