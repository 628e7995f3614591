# Copyright 2026 rrto_ros authors. Apache-2.0.
"""Pose estimation: ``image`` -> ``poses`` (the poses PointCloud2 layout) and
``debug_image`` (the skeletons drawn). This is the GPU program of the pipeline: under
``LD_PRELOAD=librrto_cuda.so`` (robot.launch.py with use_rrto:=true) its CUDA work runs on
the edge server.

``source: model`` runs the KAPAO network (``rrto_ros.tracking.pose_estimator``: letterbox to
``img_size``, the network, NMS and keypoint fusion) on each image; ``weights`` empty means
random initialisation, which this node reports loudly (log and diagnostics).
``source: ground_truth`` runs no network: it republishes the camera node's
``ground_truth/poses`` for each image (paired by stamp). That is the only source that works
with the rrto server's ``emu`` backend, which cannot run the real network.

Run: ``ros2 run rrto_ros rrto_pose_node --ros-args --params-file config/robot.yaml``.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Mapping, Optional

from rclpy.node import Node
from sensor_msgs.msg import Image, PointCloud2

from rrto_ros.nodes.common import (declare_parameters, DiagnosticsPublisher, log,
                                   NodeStartError, run, starting, status_name_prefix)
from rrto_ros.nodes.params import MODEL_SIZES, POSE_NODE, POSE_PARAMS, POSE_SOURCES
from rrto_ros.nodes.pipeline_common import (accept_changes, image_array, image_msg,
                                            LATEST_QOS, parameter_values, poses_msg, poses_of,
                                            record, RESULT_QOS, SENSOR_QOS, stamp_s)
from rrto_ros.nodes.status import ERROR, OK, StatusRecord, WARN
from rrto_ros.tracking.pose_pipeline import PosePipeline, PoseResult
from rrto_ros.tracking.stamps import StampMatcher

RANDOM_WARNING = ('the pose network has RANDOM weights (no weights parameter): its poses are '
                  'meaningless. Pass weights:=/path/to/kapao_s.pt (converted to our format) '
                  'for real poses')


def load_estimator(p: Mapping[str, Any]) -> Any:
    """The KAPAO estimator for ``source: model`` (imported here only: torch is heavy and
    ground_truth needs none of it)."""
    if p['model_size'] not in MODEL_SIZES:
        raise NodeStartError(f'model_size must be one of {", ".join(MODEL_SIZES)}, not '
                             f'{p["model_size"]!r}')
    if p['img_size'] % 64:
        raise NodeStartError("img_size must be a multiple of 64 (the network's largest "
                             f'stride), not {p["img_size"]}')
    try:
        from rrto_ros.tracking.pose_estimator import PoseEstimator
    except ImportError as e:
        raise NodeStartError(f'source is model but the KAPAO model cannot be imported ({e}). '
                             'Install torch (and an rrto_ros that has '
                             'rrto_ros/tracking/pose_estimator.py), or use source '
                             'ground_truth with the synthetic camera') from e
    try:
        return PoseEstimator(size=p['model_size'], weights=p['weights'] or None,
                             img_size=p['img_size'], device=p['device'])
    except (OSError, ValueError, RuntimeError) as e:
        raise NodeStartError(f'cannot build the {p["model_size"]} pose model on '
                             f'{p["device"]} with weights {p["weights"] or "(random)"}: {e}'
                             ) from e


class PoseNode(Node):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(POSE_NODE, **kwargs)
        with starting(self):
            declare_parameters(self, POSE_PARAMS)
            p = parameter_values(self, POSE_PARAMS)
            if p['source'] not in POSE_SOURCES:
                raise NodeStartError(f'source must be one of {", ".join(POSE_SOURCES)}, not '
                                     f'{p["source"]!r}')
            self.source = p['source']
            self.errors = 0
            self.last_error = ''
            estimator = load_estimator(p) if self.source == 'model' else None
            self.pipeline = PosePipeline(estimator, p['draw_debug'], p['draw_min_confidence'])
            self.matcher = StampMatcher(p['ground_truth_slop_s'], queue_size=10)
            accept_changes(self, POSE_PARAMS, self._check, self._apply)
            self._poses = self.create_publisher(PointCloud2, 'poses', RESULT_QOS)
            self._debug = self.create_publisher(Image, 'debug_image', SENSOR_QOS)
            self.create_subscription(Image, 'image', self._on_image, LATEST_QOS)
            if self.source == 'ground_truth':
                self.create_subscription(PointCloud2, 'ground_truth/poses', self._on_truth,
                                         RESULT_QOS)
            self._diagnostics = DiagnosticsPublisher(self, p['diagnostics_period_s'],
                                                     self.diagnostics)
            if self.source == 'ground_truth':
                log(self, logging.INFO,
                    'ready: source ground_truth: republishing ground_truth/poses (from the '
                    'camera node) as poses for each image; no network runs. This is the only '
                    "source that works with the rrto server's emu backend, which cannot run "
                    'the real network; use source model with a cuda server or the local GPU')
            else:
                log(self, logging.INFO,
                    f'ready: KAPAO-{p["model_size"].upper()} at {p["img_size"]} on '
                    f'{p["device"]}, weights: {self.pipeline.weights_description}')
                if self.pipeline.random_init:
                    log(self, logging.WARNING, RANDOM_WARNING)

    def _check(self, values: Mapping[str, Any]) -> Dict[str, Any]:
        if not 0.0 <= values['draw_min_confidence'] <= 1.0:
            raise ValueError('draw_min_confidence is in [0, 1]')
        return dict(values)

    def _apply(self, values: Mapping[str, Any]) -> None:
        self.pipeline.draw_min_confidence = values['draw_min_confidence']
        self.matcher.slop_s = values['ground_truth_slop_s']

    # ----------------------------------------------------------- frames
    def _drawing(self) -> bool:
        return bool(self.get_parameter('draw_debug').value) and \
            self._debug.get_subscription_count() > 0

    def _on_image(self, msg: Image) -> None:
        if self.source == 'ground_truth':
            self._pair(self.matcher.add(0, stamp_s(msg.header), msg))
            return
        try:
            rgb = image_array(msg)
            self.pipeline.draw_debug = self._drawing()
            self._publish(msg, self.pipeline.estimate(rgb))
        except Exception as e:  # a bad frame or a CUDA error: report, keep serving frames
            self._failed(e)

    def _on_truth(self, msg: PointCloud2) -> None:
        self._pair(self.matcher.add(1, stamp_s(msg.header), msg))

    def _pair(self, pair: Optional[tuple]) -> None:
        if pair is None:
            return
        image, truth = pair[0], pair[1]
        try:
            self.pipeline.draw_debug = self._drawing()
            rgb = image_array(image) if self.pipeline.draw_debug else None
            self._publish(image, self.pipeline.relay(rgb, poses_of(truth)))
        except Exception as e:  # a malformed message: report, keep serving frames
            self._failed(e)

    def _publish(self, image: Image, result: PoseResult) -> None:
        self._poses.publish(poses_msg(result.poses, image.header))
        if result.debug_rgb is not None:
            self._debug.publish(image_msg(result.debug_rgb, image.header))

    def _failed(self, e: Exception) -> None:
        self.errors += 1
        text = f'{type(e).__name__}: {e}'
        if text != self.last_error:          # once per kind of failure, not per frame
            self.last_error = text
            log(self, logging.ERROR, f'frame dropped: {text}')

    # ----------------------------------------------------------- diagnostics
    def diagnostics(self) -> List[StatusRecord]:
        values = self.pipeline.status_values()
        values['errors'] = self.errors
        p = parameter_values(self, POSE_PARAMS)
        values.update({k: p[k] for k in ('model_size', 'img_size', 'device')})
        level, parts = OK, [f'{self.pipeline.frames} frames, source {self.source}']
        if self.pipeline.random_init:
            level, parts = WARN, [RANDOM_WARNING] + parts
            self.get_logger().warning(RANDOM_WARNING, throttle_duration_sec=30.0)
        if self.errors:
            level = ERROR if not self.pipeline.frames else WARN
            parts.append(f'{self.errors} frames failed, last: {self.last_error}')
        message = '; '.join(parts)
        return [record(f'{status_name_prefix(self)}: poses', level, message, values)]


def main(args: Optional[List[str]] = None) -> int:
    return run(PoseNode, args)


if __name__ == '__main__':
    raise SystemExit(main())
