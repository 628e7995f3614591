# Copyright 2026 rrto_ros authors. Apache-2.0.
"""Predicting the next replayed inference's request from the rhythm of the last ones."""

import pytest

from rrto_ros.rhythm import Rhythm


def test_no_plan_without_a_rhythm():
    r = Rhythm(100e-6)
    assert r.plan(0.0) is None
    r.observe(1.0)
    assert r.plan(1.001) is None          # one request: no period yet
    assert Rhythm(0.0).plan(1.0) is None  # off


def test_sleep_then_poll_around_the_due_time():
    r = Rhythm(100e-6)
    for k in range(10):
        r.observe(1.0 + 0.004 * k)        # every 4 ms
    last = 1.0 + 0.004 * 9
    assert r.period_s == pytest.approx(0.004)
    assert r.plan(last + 0.001) == pytest.approx(0.004 - 100e-6 - 0.001)
    assert r.plan(last + 0.004 - 50e-6) == 0.0     # inside the window: poll
    assert r.plan(last + 0.004 + 50e-6) == 0.0
    assert r.plan(last + 0.004 + 200e-6) is None   # missed: back to waiting as usual


def test_the_estimate_follows_a_new_rate_and_forgets_long_pauses():
    r = Rhythm(100e-6)
    t = 0.0
    for _ in range(20):
        t += 0.010
        r.observe(t)
    for _ in range(40):
        t += 0.005
        r.observe(t)
    assert r.period_s == pytest.approx(0.005, rel=0.05)
    t += 5.0                               # the app paused: no rhythm
    r.observe(t)
    assert r.period_s == 0.0 and r.plan(t + 0.001) is None
