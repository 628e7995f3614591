# Copyright 2026 rrto_ros authors. Apache-2.0.
"""The pose node's work without ROS: image -> poses (+ the debug image), and its statistics.

``source`` is ``model`` (an estimator object with ``estimate(rgb) -> List[Pose]``: the
KAPAO network with its letterbox and post-processing, ``pose_estimator.PoseEstimator``) or
``ground_truth`` (poses that come with the frame, e.g. from the synthetic scene; no network
runs). The estimator is injected, so this is tested with a stand-in.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
import statistics
import time
from typing import Any, Deque, Dict, List, Optional, Sequence

import numpy as np

from rrto_ros.tracking.draw import draw_poses
from rrto_ros.tracking.poses import Pose

SOURCES = ('model', 'ground_truth')


@dataclass
class PoseResult:
    poses: List[Pose]
    debug_rgb: Optional[np.ndarray]
    latency_s: float


class PosePipeline:
    def __init__(self, estimator: Any = None, draw_debug: bool = True,
                 draw_min_confidence: float = 0.3) -> None:
        self.estimator = estimator
        self.source = 'model' if estimator is not None else 'ground_truth'
        self.draw_debug = draw_debug
        self.draw_min_confidence = draw_min_confidence
        self.frames = 0
        self.persons_last = 0
        self._latency: Deque[float] = deque(maxlen=50)
        self._times: Deque[float] = deque(maxlen=50)

    @property
    def random_init(self) -> bool:
        return bool(getattr(self.estimator, 'random_init', False))

    @property
    def weights_description(self) -> str:
        if self.estimator is None:
            return 'none (ground truth)'
        return str(getattr(self.estimator, 'weights_description', '?'))

    def estimate(self, rgb: np.ndarray) -> PoseResult:
        """Run the estimator on an (H, W, 3) RGB uint8 image."""
        if self.estimator is None:
            raise RuntimeError('this pipeline has no estimator (source ground_truth): use relay')
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f'the pose estimator needs an (H, W, 3) uint8 RGB image, got '
                             f'{rgb.dtype} {rgb.shape}')
        start = time.perf_counter()
        poses = self.estimator.estimate(rgb)
        if not isinstance(poses, (list, tuple)) or not all(isinstance(p, Pose) for p in poses):
            raise TypeError(f'{type(self.estimator).__name__}.estimate returned '
                            f'{type(poses).__name__}, not a list of tracking.poses.Pose')
        return self._finish(rgb, list(poses), time.perf_counter() - start)

    def relay(self, rgb: Optional[np.ndarray], poses: Sequence[Pose]) -> PoseResult:
        """Ground truth: pass the frame's own poses on (and draw them)."""
        return self._finish(rgb, list(poses), 0.0)

    def _finish(self, rgb: Optional[np.ndarray], poses: List[Pose], latency: float
                ) -> PoseResult:
        debug = None
        if self.draw_debug and rgb is not None:
            debug = draw_poses(rgb, poses, self.draw_min_confidence)
        self.frames += 1
        self.persons_last = len(poses)
        self._latency.append(latency)
        self._times.append(time.monotonic())
        return PoseResult(poses, debug, latency)

    def fps(self) -> Optional[float]:
        if len(self._times) < 2 or self._times[-1] == self._times[0]:
            return None
        return (len(self._times) - 1) / (self._times[-1] - self._times[0])

    def latency_ms_p50(self) -> Optional[float]:
        return statistics.median(self._latency) * 1000.0 if self._latency else None

    def status_values(self) -> Dict[str, Any]:
        return {'source': self.source, 'weights': self.weights_description,
                'random_init': self.random_init, 'frames': self.frames,
                'persons': self.persons_last, 'latency_ms_p50': self.latency_ms_p50(),
                'fps': self.fps()}
