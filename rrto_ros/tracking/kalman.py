# Copyright 2026 rrto_ros authors. Apache-2.0.
"""A constant-velocity Kalman filter for one 3D point (the followed person).

State: position and velocity (x, y, z, vx, vy, vz). Between measurements the state is
predicted with the velocity; the process noise is white acceleration of standard deviation
``accel_std`` (m/s^2), the measurement noise isotropic ``measurement_std`` (m). Without a
measurement for ``lost_after_s`` the target counts as lost and the next measurement starts a
new track. Times are seconds on any monotonic clock (message stamps). The ~40 lines of
textbook algebra are kept here rather than pulling filterpy (and its scipy and matplotlib
dependencies) onto the robot; the covariance update uses the Joseph form (stays symmetric).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np


@dataclass(frozen=True)
class KalmanConfig:
    accel_std: float = 1.5          # m/s^2: how fast a walking person changes velocity
    measurement_std: float = 0.08   # m: noise of one depth-based position
    initial_velocity_std: float = 1.0
    lost_after_s: float = 1.5       # predicting longer than this: the target is lost
    max_gap_s: float = 0.5          # a single predict step longer than this is clamped

    def validate(self) -> None:
        for name in ('accel_std', 'measurement_std', 'initial_velocity_std', 'lost_after_s',
                     'max_gap_s'):
            if not getattr(self, name) > 0:
                raise ValueError(f'{name} must be positive, got {getattr(self, name)}')


class ConstantVelocityKalman:
    def __init__(self, config: KalmanConfig = KalmanConfig()) -> None:
        config.validate()
        self.config = config
        self.x = np.zeros(6)
        self.P = np.eye(6)
        self.t: Optional[float] = None            # time of the state
        self.last_update: Optional[float] = None  # time of the last measurement

    @property
    def initialized(self) -> bool:
        return self.t is not None

    @property
    def position(self) -> np.ndarray:
        return self.x[:3].copy()

    @property
    def velocity(self) -> np.ndarray:
        return self.x[3:].copy()

    def reset(self) -> None:
        self.__init__(self.config)   # type: ignore[misc]

    def is_lost(self, t: float) -> bool:
        return self.last_update is None or t - self.last_update > self.config.lost_after_s

    def start(self, z: np.ndarray, t: float) -> None:
        c = self.config
        self.x = np.concatenate([np.asarray(z, dtype=np.float64), np.zeros(3)])
        self.P = np.diag([c.measurement_std ** 2] * 3 + [c.initial_velocity_std ** 2] * 3)
        self.t = self.last_update = float(t)

    def predict(self, t: float) -> np.ndarray:
        """Advance the state to time ``t`` (earlier times leave it as it is)."""
        if self.t is None:
            raise RuntimeError('predict before the first measurement: call start() first')
        dt = float(t) - self.t
        if dt <= 0:
            return self.position
        q = self.config.accel_std ** 2
        remaining = dt
        while remaining > 1e-12:       # long gaps in steps, so Q stays a good approximation
            step = min(remaining, self.config.max_gap_s)
            F = np.eye(6)
            F[:3, 3:] = np.eye(3) * step
            Q = np.zeros((6, 6))
            Q[:3, :3] = np.eye(3) * step ** 3 / 3 * q
            Q[:3, 3:] = Q[3:, :3] = np.eye(3) * step ** 2 / 2 * q
            Q[3:, 3:] = np.eye(3) * step * q
            self.x = F @ self.x
            self.P = F @ self.P @ F.T + Q
            remaining -= step
        self.t = float(t)
        return self.position

    def innovation_distance(self, z: np.ndarray) -> float:
        """Mahalanobis distance of a measurement from the current prediction."""
        y = np.asarray(z, dtype=np.float64) - self.x[:3]
        S = self.P[:3, :3] + np.eye(3) * self.config.measurement_std ** 2
        return float(np.sqrt(y @ np.linalg.solve(S, y)))

    def update(self, z: np.ndarray, t: float) -> np.ndarray:
        """Predict to ``t``, then correct with the measured position ``z``; a measurement
        after the target was lost starts a new track."""
        if self.t is None or self.is_lost(t):
            self.start(z, t)
            return self.position
        self.predict(t)
        H = np.zeros((3, 6))
        H[:, :3] = np.eye(3)
        R = np.eye(3) * self.config.measurement_std ** 2
        y = np.asarray(z, dtype=np.float64) - H @ self.x
        S = H @ self.P @ H.T + R
        K = self.P @ H.T @ np.linalg.inv(S)
        self.x = self.x + K @ y
        IKH = np.eye(6) - K @ H
        self.P = IKH @ self.P @ IKH.T + K @ R @ K.T
        self.last_update = max(self.last_update or t, float(t))
        return self.position
