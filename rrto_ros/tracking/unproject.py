# Copyright 2026 rrto_ros authors. Apache-2.0.
"""Keypoints + aligned depth + intrinsics -> one 3D position of the person.

For each torso keypoint (shoulders and hips) seen with enough confidence, the valid depths in
a small window around its pixel are gathered (0 = no measurement and values outside
``[min_depth_m, max_depth_m]`` are ignored); the position's depth is the median of all of
them, so a few wrong pixels (the background through a gap, a flying pixel) do not move it.
The keypoints' pixel centroid is unprojected at that depth. None when nothing valid remains.
The depth is the visible surface's: seen side-on, the near half of the body, up to ~0.2 m in
front of the torso's centre.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from rrto_ros.tracking.camera import CameraIntrinsics
from rrto_ros.tracking.poses import Pose, TORSO


@dataclass(frozen=True)
class UnprojectConfig:
    window_px: int = 5                # half-size of the window around each keypoint
    min_confidence: float = 0.3       # keypoints below this are not used
    min_depth_m: float = 0.2
    max_depth_m: float = 10.0
    depth_scale_m: float = 0.001      # metres per depth unit (16UC1: millimetres)
    keypoints: Sequence[int] = TORSO

    def validate(self) -> None:
        if self.window_px < 0 or self.window_px > 50:
            raise ValueError(f'window_px must be in [0, 50], got {self.window_px}')
        if not 0 < self.min_depth_m < self.max_depth_m:
            raise ValueError(f'need 0 < min_depth_m < max_depth_m, got {self.min_depth_m} '
                             f'and {self.max_depth_m}')
        if self.depth_scale_m <= 0:
            raise ValueError(f'depth_scale_m must be positive, got {self.depth_scale_m}')


def person_position(pose: Pose, depth: np.ndarray, camera: CameraIntrinsics,
                    config: UnprojectConfig = UnprojectConfig()) -> Optional[np.ndarray]:
    """(3,) position in the optical frame, or None (no confident torso keypoint with depth).

    ``depth`` is (H, W), registered to the image the keypoints came from; integer depths are
    scaled by ``depth_scale_m``, float depths are metres (NaN: no measurement).
    """
    if depth.ndim != 2:
        raise ValueError(f'depth must be a 2D image, got shape {depth.shape}')
    if depth.shape != (camera.height, camera.width):
        raise ValueError(f'depth image is {depth.shape[1]}x{depth.shape[0]} but camera_info '
                         f'says {camera.width}x{camera.height}: use depth aligned to the color '
                         'image (e.g. realsense2_camera align_depth.enable:=true)')
    h, w = depth.shape
    r = config.window_px
    scale = config.depth_scale_m if np.issubdtype(depth.dtype, np.integer) else 1.0
    samples = []
    used = []
    for i in config.keypoints:
        x, y, conf = (float(v) for v in pose.keypoints[i])
        if not conf >= config.min_confidence:
            continue
        u, v = int(round(x)), int(round(y))
        if not (0 <= u < w and 0 <= v < h):
            continue
        patch = depth[max(v - r, 0):v + r + 1, max(u - r, 0):u + r + 1].astype(np.float64)
        z = patch.ravel() * scale
        z = z[np.isfinite(z) & (z >= config.min_depth_m) & (z <= config.max_depth_m)]
        if z.size:
            samples.append(z)
            used.append((x, y))
    if not samples:
        return None
    z = float(np.median(np.concatenate(samples)))
    u, v = np.mean(np.asarray(used), axis=0)
    return camera.unproject(u, v, z)
