# Copyright 2026 rrto_ros authors. Apache-2.0.
"""The robot energy model (rrto_ros/bench/energy.py), from the paper's Table I."""

from __future__ import annotations

import pytest

from rrto_ros.bench import energy


def test_table_one_powers():
    assert (energy.PAPER.inference_w, energy.PAPER.communication_w,
            energy.PAPER.standby_w) == (13.35, 4.25, 4.04)


def test_local_is_inference_power_times_latency():
    assert energy.local_energy_j(0.1) == pytest.approx(1.335)
    assert energy.energy_j('local', 0.02) == pytest.approx(0.267)


def test_offloaded_splits_communication_and_waiting():
    # 10 ms inference of which the server's GPU computes 2 ms: 8 ms communicating.
    e = energy.offloaded_energy_j(0.010, 0.002)
    assert e == pytest.approx(4.25 * 0.008 + 4.04 * 0.002)
    for mode in ('rpc', 'pipelined', 'replay', 'offload'):
        assert energy.energy_j(mode, 0.010, 0.002) == pytest.approx(e)


def test_unknown_compute_time_counts_everything_as_communication():
    assert energy.offloaded_energy_j(0.5) == pytest.approx(4.25 * 0.5)
    # ... an upper bound at most 5.2 % above the lower bound (all standby)
    assert energy.offloaded_energy_j(0.5) / (4.04 * 0.5) - 1 < 0.053


def test_compute_time_is_clipped_to_the_latency():
    assert energy.offloaded_energy_j(0.001, 0.005) == pytest.approx(4.04 * 0.001)
    assert energy.offloaded_energy_j(0.001, -1.0) == pytest.approx(4.25 * 0.001)


def test_papers_claim_shape():
    """Cricket's case (Sections I and VI-A): communication is 98% of a long inference, so
    offloading that is 50x slower than local costs more energy despite the lower power."""
    local = energy.local_energy_j(0.1)
    cricket = energy.offloaded_energy_j(5.0, 0.1)
    rrto = energy.offloaded_energy_j(0.02, 0.005)
    assert cricket > local > rrto


def test_errors():
    with pytest.raises(ValueError):
        energy.energy_j('teleport', 1.0)
    with pytest.raises(ValueError):
        energy.local_energy_j(-1.0)
    with pytest.raises(ValueError):
        energy.offloaded_energy_j(-0.1)
