# Copyright 2026 rrto_ros authors. Apache-2.0.
"""The follower's control law: a velocity command (geometry_msgs/Twist linear.x, angular.z)
that keeps the robot ``standoff_m`` from the person and facing them.

Frames. The tracker reports the person in the camera's optical frame (REP 103
``*_optical_frame``: x right, y down, z forward). The robot's base frame (REP 103
``base_link``) is x forward, y left, z up. With the camera looking straight ahead along the
robot's x axis (its mount offset ignored, fine for a camera near the robot's centre):
``forward = z_optical`` and ``left = -x_optical``; the height (y_optical) is not used. A target
already in a base-like frame is taken as is (``frame_convention: base``).

Law. distance = hypot(forward, left), bearing = atan2(left, forward) (positive: the person
is to the left, so turn left, angular.z > 0).
``linear = linear_gain * (distance - standoff_m) * max(0, cos(bearing))`` (0 inside
``distance_tolerance_m``; the cosine slows the robot while it still has to turn), clamped to
``[-max_reverse_mps, max_linear_mps]``; ``angular = angular_gain * bearing`` clamped to
``+-max_angular_rps``. Both change by at most ``max_*_accel * dt`` per step. When the target
is older than ``lost_timeout_s`` (or there never was one) the command is zero at once, not
ramped: stopping is the safe action, and the base's own controller limits the deceleration.
"""

from __future__ import annotations

from dataclasses import dataclass
import math
from typing import Optional, Sequence, Tuple

FRAME_CONVENTIONS = ('optical', 'base')


@dataclass(frozen=True)
class FollowerConfig:
    standoff_m: float = 1.5
    distance_tolerance_m: float = 0.1
    linear_gain: float = 0.8          # 1/s
    angular_gain: float = 1.5         # 1/s
    max_linear_mps: float = 0.6
    max_reverse_mps: float = 0.0      # > 0: back away when the person comes closer
    max_angular_rps: float = 1.0
    max_linear_accel: float = 0.8     # m/s^2
    max_angular_accel: float = 3.0    # rad/s^2
    lost_timeout_s: float = 1.0
    frame_convention: str = 'optical'

    def validate(self) -> None:
        positive = ('standoff_m', 'linear_gain', 'angular_gain', 'max_linear_mps',
                    'max_angular_rps', 'max_linear_accel', 'max_angular_accel',
                    'lost_timeout_s')
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f'{name} must be positive, got {getattr(self, name)}')
        for name in ('distance_tolerance_m', 'max_reverse_mps'):
            if not getattr(self, name) >= 0:
                raise ValueError(f'{name} must be >= 0, got {getattr(self, name)}')
        if self.frame_convention not in FRAME_CONVENTIONS:
            raise ValueError(f'frame_convention must be one of {", ".join(FRAME_CONVENTIONS)}'
                             f', not {self.frame_convention!r}')


def to_base(point: Sequence[float], convention: str = 'optical') -> Tuple[float, float]:
    """(forward, left) of a target point given in an optical or a base-like frame."""
    x, y, z = (float(v) for v in point)
    if convention == 'optical':
        return z, -x
    if convention == 'base':
        return x, y
    raise ValueError(f'frame_convention must be one of {", ".join(FRAME_CONVENTIONS)}')


def _clamp(v: float, lo: float, hi: float) -> float:
    return min(max(v, lo), hi)


class Follower:
    """``step(target, age_s, dt_s)`` -> (linear.x, angular.z); ``state`` says why."""

    def __init__(self, config: FollowerConfig = FollowerConfig()) -> None:
        config.validate()
        self.config = config
        self.linear = 0.0
        self.angular = 0.0
        self.state = 'waiting'      # waiting | following | holding | lost
        self.distance: Optional[float] = None
        self.bearing: Optional[float] = None

    def set_config(self, config: FollowerConfig) -> None:
        config.validate()
        self.config = config

    def desired(self, forward: float, left: float) -> Tuple[float, float]:
        """The unlimited-in-time command for a person at (forward, left) in the base frame."""
        c = self.config
        self.distance = math.hypot(forward, left)
        self.bearing = math.atan2(left, forward)
        error = self.distance - c.standoff_m
        if abs(error) <= c.distance_tolerance_m:
            error = 0.0
        linear = c.linear_gain * error * max(0.0, math.cos(self.bearing))
        linear = _clamp(linear, -c.max_reverse_mps, c.max_linear_mps)
        angular = _clamp(c.angular_gain * self.bearing, -c.max_angular_rps, c.max_angular_rps)
        return linear, angular

    def step(self, target: Optional[Sequence[float]], age_s: float, dt_s: float
             ) -> Tuple[float, float]:
        """One control step: ``target`` is the latest point (in ``frame_convention``), ``age_s``
        how old it is, ``dt_s`` the time since the previous step."""
        c = self.config
        if target is None or age_s > c.lost_timeout_s:
            self.state = 'lost' if target is not None or self.state != 'waiting' else 'waiting'
            self.linear = self.angular = 0.0
            return 0.0, 0.0
        forward, left = to_base(target, c.frame_convention)
        linear, angular = self.desired(forward, left)
        dt = max(0.0, float(dt_s))
        self.linear += _clamp(linear - self.linear, -c.max_linear_accel * dt,
                              c.max_linear_accel * dt)
        self.angular += _clamp(angular - self.angular, -c.max_angular_accel * dt,
                               c.max_angular_accel * dt)
        self.state = 'following' if linear != 0.0 else 'holding'
        return self.linear, self.angular
