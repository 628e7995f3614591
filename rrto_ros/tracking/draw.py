# Copyright 2026 rrto_ros authors. Apache-2.0.
"""The debug image: the skeleton of each pose drawn over the camera image (numpy only)."""

from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np

from rrto_ros.tracking.poses import Pose, SKELETON

LEFT, RIGHT, CENTRE = (0, 220, 0), (230, 60, 0), (255, 230, 0)
_LEFT_KP = {1, 3, 5, 7, 9, 11, 13, 15}
_RIGHT_KP = {2, 4, 6, 8, 10, 12, 14, 16}


def _color(a: int, b: int) -> Tuple[int, int, int]:
    if {a, b} <= _LEFT_KP:
        return LEFT
    if {a, b} <= _RIGHT_KP:
        return RIGHT
    return CENTRE


def _dot(img: np.ndarray, x: np.ndarray, y: np.ndarray, radius: int,
         color: Tuple[int, int, int]) -> None:
    """Square brush of half-size ``radius`` at integer pixel positions, clipped."""
    h, w = img.shape[:2]
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            xx, yy = x + dx, y + dy
            ok = (xx >= 0) & (xx < w) & (yy >= 0) & (yy < h)
            img[yy[ok], xx[ok]] = color


def draw_line(img: np.ndarray, p0: Sequence[float], p1: Sequence[float],
              color: Tuple[int, int, int], thickness: int = 1) -> None:
    """A line from p0 to p1 (pixel x, y), sampled once per pixel of its longer axis."""
    (x0, y0), (x1, y1) = p0, p1
    n = int(max(abs(x1 - x0), abs(y1 - y0))) + 1
    if n > 20000:                       # a wild keypoint: not worth drawing
        return
    t = np.linspace(0.0, 1.0, n)
    x = np.round(x0 + t * (x1 - x0)).astype(np.int64)
    y = np.round(y0 + t * (y1 - y0)).astype(np.int64)
    _dot(img, x, y, thickness // 2, color)


def draw_poses(rgb: np.ndarray, poses: Sequence[Pose], min_confidence: float = 0.3,
               thickness: int = 3) -> np.ndarray:
    """A copy of ``rgb`` with limbs between keypoints seen with ``min_confidence`` and a dot
    on each such keypoint (left side green, right side orange, centre yellow)."""
    out = np.array(rgb, dtype=np.uint8, copy=True)
    for pose in poses:
        kp = pose.keypoints
        seen = np.isfinite(kp).all(axis=1) & (kp[:, 2] >= min_confidence)
        for a, b in SKELETON:
            if seen[a] and seen[b]:
                draw_line(out, kp[a, :2], kp[b, :2], _color(a, b), thickness)
        idx = np.nonzero(seen)[0]
        if len(idx):
            _dot(out, np.round(kp[idx, 0]).astype(np.int64),
                 np.round(kp[idx, 1]).astype(np.int64), thickness // 2 + 1, (255, 255, 255))
    return out
