# Copyright 2026 rrto_ros authors. Apache-2.0.
"""The pinhole camera every tracking stage shares, and what one RGB-D frame carries.

Coordinates are the camera's *optical* frame (REP 103 ``*_optical_frame``): x right, y down,
z forward (the viewing direction), metres. A pixel (u, v) sees the ray
``((u - cx) / fx, (v - cy) / fy, 1)``; depth images hold z along that ray, not the range.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence

import numpy as np

from rrto_ros.tracking.poses import Pose


@dataclass(frozen=True)
class CameraIntrinsics:
    """What ``sensor_msgs/CameraInfo`` says about a rectified image: size and K."""

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    frame_id: str = 'camera_color_optical_frame'

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f'camera size must be positive, got {self.width}x{self.height}')
        if not (self.fx > 0 and self.fy > 0):
            raise ValueError(f'camera focal lengths must be positive, got fx={self.fx} '
                             f'fy={self.fy} (is K all zeros? an uncalibrated camera_info)')

    @classmethod
    def from_k(cls, k: Sequence[float], width: int, height: int,
               frame_id: str = 'camera_color_optical_frame') -> 'CameraIntrinsics':
        """From CameraInfo's row-major 3x3 ``k`` (fx 0 cx; 0 fy cy; 0 0 1)."""
        k = [float(v) for v in k]
        if len(k) != 9:
            raise ValueError(f'K has 9 entries (row-major 3x3), got {len(k)}')
        return cls(int(width), int(height), k[0], k[4], k[2], k[5], frame_id)

    @property
    def k(self) -> List[float]:
        return [self.fx, 0.0, self.cx, 0.0, self.fy, self.cy, 0.0, 0.0, 1.0]

    def project(self, points: np.ndarray) -> np.ndarray:
        """(..., 3) points in the optical frame -> (..., 2) pixel coordinates."""
        p = np.asarray(points, dtype=np.float64)
        z = p[..., 2]
        return np.stack([self.fx * p[..., 0] / z + self.cx,
                         self.fy * p[..., 1] / z + self.cy], axis=-1)

    def unproject(self, u: np.ndarray, v: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Pixels and their depth (z, metres) -> (..., 3) points in the optical frame."""
        u, v, z = (np.asarray(a, dtype=np.float64) for a in (u, v, z))
        return np.stack([(u - self.cx) * z / self.fx, (v - self.cy) * z / self.fy, z], axis=-1)


@dataclass
class Frame:
    """One aligned RGB-D frame: ``rgb`` (H, W, 3) uint8, ``depth`` (H, W) uint16 millimetres
    (0: no measurement) registered to the RGB image, and ground-truth poses when the source
    knows them (synthetic scene, annotated recordings)."""

    index: int
    stamp_s: float
    rgb: np.ndarray
    depth: np.ndarray
    poses: Optional[List[Pose]] = None

    def __post_init__(self) -> None:
        check_frame_arrays(self.rgb, self.depth)


def check_frame_arrays(rgb: np.ndarray, depth: np.ndarray) -> None:
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f'rgb must be an (H, W, 3) uint8 array, got {rgb.dtype} {rgb.shape}')
    if depth.dtype != np.uint16 or depth.shape != rgb.shape[:2]:
        raise ValueError(f'depth must be an (H, W) uint16 array (millimetres) the size of the '
                         f'rgb image {rgb.shape[:2]}, got {depth.dtype} {depth.shape}')
