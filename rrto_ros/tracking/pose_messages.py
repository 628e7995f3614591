# Copyright 2026 rrto_ros authors. Apache-2.0.
"""Poses as a ``sensor_msgs/PointCloud2``, without ROS: the layout, packing and unpacking.

Layout (documented in the README, "People following"): one point per keypoint, 17 points per
person in COCO order (``poses.COCO_KEYPOINTS``), persons one after another; ``height`` 1,
``width`` 17 * persons, little-endian, ``is_dense`` true, ``point_step`` 24. Fields, all
FLOAT32 (PointField datatype 7), count 1:

    x (offset 0), y (4)      keypoint pixel coordinates in the image named by the header
    confidence (8)           0..1; 0: not seen
    person (12)              0, 1, 2, ... (index of the person in this message)
    keypoint (16)            0..16 (COCO index)
    score (20)               the person's detection confidence (same on its 17 points)

The header's stamp and frame_id are the source image's, so a consumer can pair poses with
the depth image of the same instant. An empty cloud (width 0) means "nobody seen".
"""

from __future__ import annotations

from typing import List, Sequence, Tuple

import numpy as np

from rrto_ros.tracking.poses import NUM_KEYPOINTS, Pose

FLOAT32 = 7                      # sensor_msgs/PointField.FLOAT32
FIELD_NAMES = ('x', 'y', 'confidence', 'person', 'keypoint', 'score')
POINT_DTYPE = np.dtype({'names': list(FIELD_NAMES), 'formats': ['<f4'] * len(FIELD_NAMES),
                        'offsets': [4 * i for i in range(len(FIELD_NAMES))], 'itemsize': 24})
POINT_STEP = POINT_DTYPE.itemsize

Field = Tuple[str, int, int, int]    # name, offset, datatype, count (as sensor_msgs/PointField)


def fields() -> List[Field]:
    return [(n, 4 * i, FLOAT32, 1) for i, n in enumerate(FIELD_NAMES)]


def pack(poses: Sequence[Pose]) -> np.ndarray:
    """Poses -> a structured array of 17 * len(poses) points (``.tobytes()`` is the data)."""
    out = np.zeros(NUM_KEYPOINTS * len(poses), dtype=POINT_DTYPE)
    for p, pose in enumerate(poses):
        rows = out[p * NUM_KEYPOINTS:(p + 1) * NUM_KEYPOINTS]
        rows['x'] = pose.keypoints[:, 0]
        rows['y'] = pose.keypoints[:, 1]
        rows['confidence'] = pose.keypoints[:, 2]
        rows['person'] = p
        rows['keypoint'] = np.arange(NUM_KEYPOINTS)
        rows['score'] = pose.score
    return out


def bbox_of(keypoints: np.ndarray, min_confidence: float = 0.0) -> Tuple[float, ...]:
    seen = keypoints[keypoints[:, 2] > min_confidence, :2]
    if not len(seen):
        return (0.0, 0.0, 0.0, 0.0)
    (x1, y1), (x2, y2) = seen.min(axis=0), seen.max(axis=0)
    return (float(x1), float(y1), float(x2), float(y2))


def unpack(data: bytes, cloud_fields: Sequence[Field], point_step: int, width: int,
           height: int = 1, is_bigendian: bool = False) -> List[Pose]:
    """A PointCloud2's parts -> poses (bbox: the extent of the seen keypoints, as the layout
    does not carry one). Raises ValueError naming what does not match the layout."""
    got = [tuple(f) for f in cloud_fields]
    if got != fields() or point_step != POINT_STEP or is_bigendian:
        raise ValueError(f'not an rrto_ros poses cloud: expected little-endian fields '
                         f'{fields()} with point_step {POINT_STEP}, got {got} with point_step '
                         f'{point_step}{" big-endian" if is_bigendian else ""}')
    n = int(width) * int(height)
    if n % NUM_KEYPOINTS:
        raise ValueError(f'a poses cloud has 17 points per person, got {n} points')
    if len(data) < n * POINT_STEP:
        raise ValueError(f'poses cloud data is {len(data)} bytes, {n} points need '
                         f'{n * POINT_STEP}')
    points = np.frombuffer(bytes(data[:n * POINT_STEP]), dtype=POINT_DTYPE)
    poses = []
    for p in range(n // NUM_KEYPOINTS):
        rows = points[p * NUM_KEYPOINTS:(p + 1) * NUM_KEYPOINTS]
        if not (np.array_equal(rows['keypoint'], np.arange(NUM_KEYPOINTS)) and
                (rows['person'] == rows['person'][0]).all()):
            raise ValueError(f'poses cloud person {p}: points must be keypoints 0..16 of one '
                             'person, in order')
        kp = np.stack([rows['x'], rows['y'], rows['confidence']], axis=1)
        poses.append(Pose(kp, float(rows['score'][0]), bbox_of(kp)))
    return poses
