# Copyright 2026 rrto_ros authors. Apache-2.0.
"""Poses + aligned depth -> the followed person's 3D position, filtered over time.

Each poses message (paired with the depth image of the same stamp) gives one candidate
position per person (``unproject.person_position``). While a track runs, the candidate
nearest to the filter's prediction is taken if it lies within ``gate_m``; without a track,
the person with the highest score starts one. No acceptable candidate: the filter predicts
(``state`` ``predicting``) until ``lost_after_s`` has passed without a measurement
(``lost``: nothing is reported, and the next person seen starts a new track).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional, Sequence

import numpy as np

from rrto_ros.tracking.camera import CameraIntrinsics
from rrto_ros.tracking.kalman import ConstantVelocityKalman, KalmanConfig
from rrto_ros.tracking.poses import Pose
from rrto_ros.tracking.unproject import person_position, UnprojectConfig


@dataclass(frozen=True)
class TrackerConfig:
    gate_m: float = 1.0
    unproject: UnprojectConfig = UnprojectConfig()
    kalman: KalmanConfig = KalmanConfig()

    def validate(self) -> None:
        if not self.gate_m > 0:
            raise ValueError(f'gate_m must be positive, got {self.gate_m}')
        self.unproject.validate()
        self.kalman.validate()


@dataclass
class Estimate:
    stamp_s: float
    position: np.ndarray      # optical frame of the camera, metres
    velocity: np.ndarray
    state: str                # tracking (measured now) | predicting
    measured: Optional[np.ndarray] = None   # this frame's unfiltered position


class PersonTracker:
    def __init__(self, config: TrackerConfig = TrackerConfig()) -> None:
        config.validate()
        self.config = config
        self.kf = ConstantVelocityKalman(config.kalman)
        self.state = 'waiting'    # waiting | tracking | predicting | lost
        self.frames = 0
        self.measurements = 0

    def set_config(self, config: TrackerConfig) -> None:
        config.validate()
        self.config = config
        self.kf.config = config.kalman

    def with_changes(self, **changes: object) -> TrackerConfig:
        """A copy of the config with flat parameter names applied (the node's parameters)."""
        groups = {'unproject': self.config.unproject, 'kalman': self.config.kalman}
        top = {}
        for name, value in changes.items():
            for key, group in groups.items():
                if name in group.__dataclass_fields__:
                    groups[key] = replace(group, **{name: value})
                    break
            else:
                top[name] = value
        return replace(self.config, **top, **groups)

    def observe(self, stamp_s: float, poses: Sequence[Pose], depth: np.ndarray,
                camera: CameraIntrinsics) -> Optional[Estimate]:
        """One frame; returns the estimate at ``stamp_s``, or None while nobody is tracked."""
        self.frames += 1
        candidates = []
        for pose in poses:
            pos = person_position(pose, depth, camera, self.config.unproject)
            if pos is not None:
                candidates.append((pose.score, pos))
        tracking = self.kf.initialized and not self.kf.is_lost(stamp_s)
        chosen = None
        if tracking:
            predicted = self.kf.predict(stamp_s)
            near = [(float(np.linalg.norm(pos - predicted)), pos) for _, pos in candidates]
            near = [n for n in near if n[0] <= self.config.gate_m]
            if near:
                chosen = min(near, key=lambda n: n[0])[1]
        elif candidates:
            chosen = max(candidates, key=lambda c: c[0])[1]
        if chosen is not None:
            self.kf.update(chosen, stamp_s)
            self.measurements += 1
            self.state = 'tracking'
        elif tracking:
            self.state = 'predicting'
        else:
            self.state = 'lost' if self.kf.initialized else 'waiting'
            return None
        return Estimate(float(stamp_s), self.kf.position, self.kf.velocity, self.state, chosen)
