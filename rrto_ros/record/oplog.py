# Copyright 2026 rrto_ros authors. Apache-2.0.
"""The operator log: the calls of one session, newest last, bounded in length.

Entries are addressed by *absolute* index (the n-th call ever appended is index n, also
after old entries were dropped), so that the dependency graph and cached search results
stay valid while the log slides. The interned keys sit in a numpy int32 array that the
period search compares by slices; the calls themselves sit in a list beside it.

Dropping the oldest entry is O(1) (an offset moves); the storage is compacted, in one
O(max_len) copy, only after ``slack`` drops, so appending stays amortised O(1).
"""

from __future__ import annotations

from typing import List, Sequence, Tuple

import numpy as np

from rrto_ros.record.calls import Call


class OpLog:
    """Bounded log of calls and their interned keys."""

    def __init__(self, max_len: int = 200_000) -> None:
        if max_len < 1:
            raise ValueError(f'max_len must be >= 1, not {max_len}')
        self.max_len = int(max_len)
        self._slack = max(1024, self.max_len // 2)
        self._cap = self.max_len + self._slack
        self._keys = np.empty(min(self._cap, 4096), dtype=np.int32)
        self._calls: List[Call] = []
        self._off = 0         # storage index of the oldest kept entry
        self._len = 0         # kept entries
        self.base = 0         # absolute index of the oldest kept entry

    # ----------------------------------------------------------- size and indices
    def __len__(self) -> int:
        return self._len

    @property
    def end(self) -> int:
        """Absolute index one past the newest entry (= calls appended since creation)."""
        return self.base + self._len

    # ----------------------------------------------------------- writing
    def append(self, call: Call, kid: int) -> int:
        """Append ``call`` with interned key ``kid``; returns its absolute index."""
        if self._len == self.max_len:       # drop the oldest, logically
            self._off += 1
            self.base += 1
            self._len -= 1
        pos = self._off + self._len
        if pos == self._keys.shape[0]:
            self._make_room()
            pos = self._off + self._len
        self._keys[pos] = kid
        self._calls.append(call)
        self._len += 1
        return self.base + self._len - 1

    def _make_room(self) -> None:
        if self._off:                       # compact: drop the logically dropped entries
            self._keys[:self._len] = self._keys[self._off:self._off + self._len]
            del self._calls[:self._off]
            self._off = 0
        if self._len == self._keys.shape[0]:
            grown = np.empty(min(self._cap, 2 * self._keys.shape[0]), dtype=np.int32)
            grown[:self._len] = self._keys[:self._len]
            self._keys = grown

    def clear(self) -> None:
        """Drop every entry; absolute indices continue after the last one appended."""
        self.base = self.end
        self._off = self._len = 0
        self._calls.clear()

    def remap(self, table: Sequence[int]) -> None:
        """Rewrite the keys through ``table`` (old id -> new id), after interner compaction."""
        keys = self.keys()
        keys[:] = np.asarray(table, dtype=np.int32)[keys]

    # ----------------------------------------------------------- reading
    def keys(self) -> np.ndarray:
        """The kept keys, oldest first (a view: position 0 is absolute index ``base``)."""
        return self._keys[self._off:self._off + self._len]

    def key(self, i: int) -> int:
        return int(self._keys[self._off + self._index(i)])

    def call(self, i: int) -> Call:
        return self._calls[self._index(i)]

    def calls(self, lo: int, hi: int) -> Tuple[Call, ...]:
        """The calls at absolute indices ``lo`` .. ``hi - 1``."""
        if lo < self.base or hi > self.end or lo > hi:
            raise IndexError(f'[{lo}, {hi}) is outside the log [{self.base}, {self.end})')
        o = self._off - self.base
        return tuple(self._calls[lo + o:hi + o])

    def _index(self, i: int) -> int:
        j = i - self.base
        if not 0 <= j < self._len:
            raise IndexError(f'index {i} is outside the log [{self.base}, {self.end})')
        return self._off + j
