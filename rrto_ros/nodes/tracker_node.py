# Copyright 2026 rrto_ros authors. Apache-2.0.
"""Tracking the followed person: ``poses`` + ``depth`` (aligned to the image the poses came
from) + ``camera_info`` -> ``target`` (geometry_msgs/PointStamped, the person's torso in the
camera's optical frame, or ``frame_id`` if set), Kalman-filtered.

Poses and depth are paired by header stamp (``rrto_ros.tracking.stamps``, within
``slop_s``); camera_info is the latest received. Each pair gives a position (robust median
over the torso keypoints' depths); through short losses (nobody seen, no valid depth) the
filter's prediction is published, stamped with the frame's stamp; after ``lost_after_s``
without a measurement nothing is published (the follower then stops).

Run: ``ros2 run rrto_ros rrto_tracker_node --ros-args --params-file config/robot.yaml``.
"""

from __future__ import annotations

import logging
from typing import Any, List, Mapping, Optional

from geometry_msgs.msg import Point, PointStamped
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import Header

from rrto_ros.nodes.common import (declare_parameters, DiagnosticsPublisher, log,
                                   NodeStartError, run, starting, status_name_prefix)
from rrto_ros.nodes.params import TRACKER_NODE, TRACKER_PARAMS
from rrto_ros.nodes.pipeline_common import (accept_changes, image_array, intrinsics,
                                            parameter_values, poses_of, record, RESULT_QOS,
                                            SENSOR_QOS, stamp_s)
from rrto_ros.nodes.status import OK, StatusRecord, WARN
from rrto_ros.tracking.camera import CameraIntrinsics
from rrto_ros.tracking.stamps import StampMatcher
from rrto_ros.tracking.tracker import PersonTracker, TrackerConfig

_TRACKER_KEYS = ('gate_m', 'window_px', 'min_confidence', 'min_depth_m', 'max_depth_m',
                 'depth_scale_m', 'accel_std', 'measurement_std', 'lost_after_s')


class TrackerNode(Node):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(TRACKER_NODE, **kwargs)
        with starting(self):
            declare_parameters(self, TRACKER_PARAMS)
            p = parameter_values(self, TRACKER_PARAMS)
            self.tracker = PersonTracker()
            try:
                self.tracker.set_config(self._config(p))
            except ValueError as e:
                raise NodeStartError(str(e)) from e
            self.frame_id = p['frame_id']
            self.matcher = StampMatcher(p['slop_s'], p['queue_size'])
            self.camera: Optional[CameraIntrinsics] = None
            self.published = 0
            self.errors = 0
            self._last_error = ''
            accept_changes(self, TRACKER_PARAMS, self._build, self._apply)
            self._target = self.create_publisher(PointStamped, 'target', RESULT_QOS)
            self.create_subscription(PointCloud2, 'poses', self._on_poses, RESULT_QOS)
            self.create_subscription(Image, 'depth', self._on_depth, SENSOR_QOS)
            self.create_subscription(CameraInfo, 'camera_info', self._on_info, SENSOR_QOS)
            self._diagnostics = DiagnosticsPublisher(self, p['diagnostics_period_s'],
                                                     self.diagnostics)
            log(self, logging.INFO, 'ready: tracking the person in poses + depth + camera_info, '
                'publishing target')

    def _config(self, values: Mapping[str, Any]) -> TrackerConfig:
        return self.tracker.with_changes(**{k: values[k] for k in _TRACKER_KEYS})

    def _build(self, values: Mapping[str, Any]) -> Any:
        config = self._config(values)
        config.validate()
        return config, values['slop_s']

    def _apply(self, built: Any) -> None:
        config, slop = built
        self.tracker.set_config(config)
        self.matcher.slop_s = slop

    # ----------------------------------------------------------- inputs
    def _on_info(self, msg: CameraInfo) -> None:
        try:
            self.camera = intrinsics(msg)
        except ValueError as e:
            self._failed(f'camera_info unusable: {e}')

    def _on_poses(self, msg: PointCloud2) -> None:
        self._pair(self.matcher.add(0, stamp_s(msg.header), msg))

    def _on_depth(self, msg: Image) -> None:
        self._pair(self.matcher.add(1, stamp_s(msg.header), msg))

    def _pair(self, pair: Optional[tuple]) -> None:
        if pair is None:
            return
        poses_cloud, depth_msg, stamp, _ = pair
        if self.camera is None:
            self._failed('no camera_info received yet: is the camera_info topic remapped to '
                         "the color camera's?")
            return
        try:
            estimate = self.tracker.observe(stamp, poses_of(poses_cloud), image_array(depth_msg),
                                            self.camera)
        except ValueError as e:
            self._failed(str(e))
            return
        if estimate is None:
            return
        x, y, z = (float(v) for v in estimate.position)
        header = Header(stamp=poses_cloud.header.stamp,
                        frame_id=self.frame_id or poses_cloud.header.frame_id)
        self._target.publish(PointStamped(header=header, point=Point(x=x, y=y, z=z)))
        self.published += 1

    def _failed(self, text: str) -> None:
        self.errors += 1
        if text != self._last_error:
            self._last_error = text
            log(self, logging.WARNING, text)

    def diagnostics(self) -> List[StatusRecord]:
        t = self.tracker
        position = t.kf.position if t.kf.initialized else None
        values = {'state': t.state, 'frames': t.frames, 'measurements': t.measurements,
                  'published': self.published, 'errors': self.errors,
                  'x': None if position is None else float(position[0]),
                  'y': None if position is None else float(position[1]),
                  'z': None if position is None else float(position[2]),
                  'pending_poses': self.matcher.pending(0),
                  'pending_depth': self.matcher.pending(1)}
        level = WARN if self.errors and t.state in ('waiting', 'lost') else OK
        message = t.state + (f', last problem: {self._last_error}' if self._last_error else '')
        return [record(f'{status_name_prefix(self)}: tracker', level, message, values)]


def main(args: Optional[List[str]] = None) -> int:
    return run(TrackerNode, args)


if __name__ == '__main__':
    raise SystemExit(main())
