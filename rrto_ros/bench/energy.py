# Copyright 2026 rrto_ros authors. Apache-2.0.
"""Energy per inference on the robot, from the paper's power model.

The paper (Section VI, Table I) measures the robot's on-board power in three states:
``inference`` 13.35 W (model inference on the robot's own GPU, CPU and GPU included),
``communication`` 4.25 W (talking to the server, wireless card included) and ``standby``
4.04 W (nothing to do). It reports energy per inference (Fig. 8b) as power integrated over
the inference, and splits an offloaded inference's time into communication and the
server's computation: Cricket "spend[s] excessive time in the communication stage"
(Section VI-A), its "communication time (98% inference time)" (Section I). Hence:

    local:      E = P_inference * T
    offloaded:  E = P_communication * (T - T_compute) + P_standby * T_compute

with T the inference's latency as the robot sees it and T_compute the time the robot only
waits for the server's GPU (the native GPU time of one inference; clipped to [0, T]).
Everything else in an offloaded inference (round trips, transfers, RPC handling) is
communication. When T_compute is unknown it is taken as 0, an upper bound that is at most
P_communication / P_standby - 1 = 5.2% above the lower bound P_standby * T.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PowerModel:
    inference_w: float
    communication_w: float
    standby_w: float


# Table I of the paper: Jetson Xavier NX robot, on-board power without the motors.
PAPER = PowerModel(inference_w=13.35, communication_w=4.25, standby_w=4.04)

OFFLOADED_MODES = frozenset({'rpc', 'pipelined', 'replay', 'offload'})


def local_energy_j(latency_s: float, model: PowerModel = PAPER) -> float:
    """The robot runs the inference on its own GPU for the whole latency."""
    if latency_s < 0:
        raise ValueError(f'latency must be >= 0, not {latency_s}')
    return model.inference_w * latency_s


def offloaded_energy_j(latency_s: float, compute_s: float = 0.0,
                       model: PowerModel = PAPER) -> float:
    """The robot communicates except while the server computes, when it stands by."""
    if latency_s < 0:
        raise ValueError(f'latency must be >= 0, not {latency_s}')
    waiting = min(max(compute_s, 0.0), latency_s)
    return model.communication_w * (latency_s - waiting) + model.standby_w * waiting


def energy_j(mode: str, latency_s: float, compute_s: float = 0.0,
             model: PowerModel = PAPER) -> float:
    """Energy of one inference in ``mode`` (``local`` or one of the offloaded modes)."""
    if mode == 'local':
        return local_energy_j(latency_s, model)
    if mode in OFFLOADED_MODES:
        return offloaded_energy_j(latency_s, compute_s, model)
    raise ValueError(f'no energy model for mode {mode!r}')


FORMULA = ('local: E = 13.35 W * T; offloaded (rpc, pipelined, replay, offload): '
           'E = 4.25 W * (T - T_compute) + 4.04 W * T_compute, T = mean steady-state latency '
           "per inference, T_compute = the server GPU's time per inference (the local mode's "
           'mean latency on the same GPU), 0 when not measured. Powers: Table I of the paper; '
           'split of T into communication and computation: Sections I and VI-A.')
