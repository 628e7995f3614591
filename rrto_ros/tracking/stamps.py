# Copyright 2026 rrto_ros authors. Apache-2.0.
"""Pairing two message streams by header stamp (what message_filters'
ApproximateTimeSynchronizer does, in a cheap and explicit form; message_filters is not
installable from PyPI).

Each stream keeps its last ``queue_size`` items. A new item is paired with the item of the
other stream whose stamp is nearest to its own if they differ by at most ``slop_s``; the pair
is returned at once, and both queues drop everything up to the paired stamps (older items
can no longer pair usefully). Otherwise the item waits in its queue. Streams that share the
stamp of one capture (the pose node keeps the image's stamp, RGB-D drivers stamp aligned
depth with the color frame's) pair exactly.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Deque, List, Optional, Tuple

Pair = Tuple[Any, Any, float, float]   # item of stream 0, item of stream 1, their stamps


class StampMatcher:
    def __init__(self, slop_s: float = 0.05, queue_size: int = 10) -> None:
        if slop_s < 0 or queue_size < 1:
            raise ValueError(f'need slop_s >= 0 and queue_size >= 1, got {slop_s}, '
                             f'{queue_size}')
        self.slop_s = float(slop_s)
        self._queues: List[Deque[Tuple[float, Any]]] = [deque(maxlen=queue_size),
                                                        deque(maxlen=queue_size)]
        self.matched = 0

    def add(self, stream: int, stamp_s: float, item: Any) -> Optional[Pair]:
        """Add an item of stream 0 or 1; returns a pair when one is complete."""
        if stream not in (0, 1):
            raise ValueError(f'stream is 0 or 1, not {stream!r}')
        other = self._queues[1 - stream]
        best = min(other, key=lambda e: abs(e[0] - stamp_s), default=None)
        if best is None or abs(best[0] - stamp_s) > self.slop_s:
            self._queues[stream].append((float(stamp_s), item))
            return None
        self._drop_until(1 - stream, best[0])
        self._drop_until(stream, stamp_s)
        self.matched += 1
        if stream == 0:
            return item, best[1], float(stamp_s), best[0]
        return best[1], item, best[0], float(stamp_s)

    def _drop_until(self, stream: int, stamp_s: float) -> None:
        q = self._queues[stream]
        kept = [e for e in q if e[0] > stamp_s]
        q.clear()
        q.extend(kept)

    def pending(self, stream: int) -> int:
        return len(self._queues[stream])
