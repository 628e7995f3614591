# Copyright 2026 rrto_ros authors. Apache-2.0.
"""When the next replayed inference's request is due, from the rhythm of the last ones.

A robot's perception node infers at a steady rate (one camera frame after another). The
nodes use that to be awake when the request comes: they sleep until ``window`` before it is
due, then poll without sleeping until ``window`` after (a thread woken from sleep starts
tens of microseconds late, far more in a VM). A request off the rhythm is still served at
once (the sleep ends on any input); a missed one costs at most ``2 * window`` of polling.
"""

from __future__ import annotations

from typing import Optional


class Rhythm:
    def __init__(self, window_s: float, max_period_s: float = 1.0) -> None:
        self.window_s = window_s
        self.max_period_s = max_period_s   # slower than this: no rhythm to follow
        self.period_s = 0.0                # running estimate of the interval
        self._last: Optional[float] = None

    def observe(self, t: float) -> None:
        """A request arrived at ``t`` (monotonic seconds)."""
        if self._last is not None:
            gap = t - self._last
            if 0 < gap <= self.max_period_s:
                self.period_s = gap if not self.period_s else \
                    self.period_s + (gap - self.period_s) / 8
            else:
                self.period_s = 0.0
        self._last = t

    def plan(self, now: float) -> Optional[float]:
        """How to wait at ``now``: None (no rhythm: wait as usual), 0 (poll without
        sleeping) or seconds to sleep before polling."""
        if not self.window_s or not self.period_s or self._last is None:
            return None
        due = self._last + self.period_s
        if now < due - self.window_s:
            return due - self.window_s - now
        if now < due + self.window_s:
            return 0.0
        return None
