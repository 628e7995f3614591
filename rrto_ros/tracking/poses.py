# Copyright 2026 rrto_ros authors. Apache-2.0.
"""What a detected person is, shared by the pose estimator, the tracker and the scene.

Keypoints follow the COCO order (17 points). Coordinates are pixels of the original camera
image (not the letterboxed network input); a keypoint with confidence 0 was not seen.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import numpy as np

COCO_KEYPOINTS: Tuple[str, ...] = (
    'nose', 'left_eye', 'right_eye', 'left_ear', 'right_ear',
    'left_shoulder', 'right_shoulder', 'left_elbow', 'right_elbow',
    'left_wrist', 'right_wrist', 'left_hip', 'right_hip',
    'left_knee', 'right_knee', 'left_ankle', 'right_ankle')
NUM_KEYPOINTS = len(COCO_KEYPOINTS)
# Torso keypoints (shoulders and hips): the tracker's robust depth comes from these.
TORSO = (5, 6, 11, 12)
# Limbs drawn on the debug image, as pairs of keypoint indices.
SKELETON: Tuple[Tuple[int, int], ...] = (
    (15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7),
    (6, 8), (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6))


@dataclass
class Pose:
    """One person: ``keypoints`` is a (17, 3) float32 array of x, y (pixels) and confidence;
    ``score`` the person's detection confidence; ``bbox`` x1, y1, x2, y2 in pixels."""

    keypoints: np.ndarray
    score: float
    bbox: Tuple[float, float, float, float]

    def __post_init__(self) -> None:
        self.keypoints = np.asarray(self.keypoints, dtype=np.float32)
        if self.keypoints.shape != (NUM_KEYPOINTS, 3):
            raise ValueError(f'a pose has {NUM_KEYPOINTS} keypoints of (x, y, confidence), '
                             f'got an array of shape {self.keypoints.shape}')
