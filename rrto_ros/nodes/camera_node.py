# Copyright 2026 rrto_ros authors. Apache-2.0.
"""An RGB-D camera stand-in: the synthetic walking-person scene or a recorded sequence,
published like an RGB-D driver with depth aligned to color.

Topics (relative, remappable): ``image`` (sensor_msgs/Image rgb8), ``depth`` (Image 16UC1,
millimetres, aligned to ``image``), ``camera_info`` (CameraInfo of both) and
``ground_truth/poses`` (the poses PointCloud2 layout, ``rrto_ros.tracking.pose_messages``)
when the source knows them. All four share one header (stamp: publishing time; frame_id: the
camera's optical frame). A real driver replaces this node: remap the pose and tracker
nodes' inputs to its topics (README, "People following").

Run: ``ros2 run rrto_ros rrto_camera_node --ros-args --params-file config/robot.yaml``.
"""

from __future__ import annotations

import logging
from typing import Any, List, Optional

from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import Header

from rrto_ros.nodes.common import (declare_parameters, DiagnosticsPublisher, log,
                                   NodeStartError, run, starting, status_name_prefix)
from rrto_ros.nodes.params import CAMERA_NODE, CAMERA_PARAMS, CAMERA_SOURCES
from rrto_ros.nodes.pipeline_common import (camera_info_msg, image_msg, parameter_values,
                                            poses_msg, record, RESULT_QOS, SENSOR_QOS)
from rrto_ros.nodes.status import OK, StatusRecord, WARN
from rrto_ros.tracking.camera import Frame
from rrto_ros.tracking.recorded import RecordedSequence, SequenceError
from rrto_ros.tracking.scene import SceneConfig, SyntheticScene


class CameraNode(Node):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(CAMERA_NODE, **kwargs)
        with starting(self):
            declare_parameters(self, CAMERA_PARAMS)
            p = parameter_values(self, CAMERA_PARAMS)
            self.source = self._open(p)
            self.camera = self.source.camera
            self.frame_id = p['frame_id'] or self.camera.frame_id
            self.loop = bool(p['loop'])
            self.publish_ground_truth = bool(p['publish_ground_truth'])
            self.index = 0
            self.published = 0
            self.ended = False
            self._image = self.create_publisher(Image, 'image', SENSOR_QOS)
            self._depth = self.create_publisher(Image, 'depth', SENSOR_QOS)
            self._info = self.create_publisher(CameraInfo, 'camera_info', SENSOR_QOS)
            self._truth = self.create_publisher(PointCloud2, 'ground_truth/poses', RESULT_QOS)
            self._diagnostics = DiagnosticsPublisher(self, p['diagnostics_period_s'],
                                                     self.diagnostics)
            self._timer = self.create_timer(1.0 / p['rate_hz'], self._tick)
            count = getattr(self.source, 'count', None)
            log(self, logging.INFO,
                f'ready: publishing {self.camera.width}x{self.camera.height} RGB-D frames at '
                f'{p["rate_hz"]:g} Hz from the {p["source"]} source'
                + (f' ({count} frames in {p["recorded_path"]})' if count else '')
                + f', frame_id {self.frame_id}')

    def _open(self, p: dict) -> Any:
        if p['source'] not in CAMERA_SOURCES:
            raise NodeStartError(f'source must be one of {", ".join(CAMERA_SOURCES)}, not '
                                 f'{p["source"]!r}')
        if p['source'] == 'recorded':
            if not p['recorded_path']:
                raise NodeStartError('source is recorded but recorded_path is empty: set it to '
                                     'a sequence directory (camera_info.yaml + NNNNNN.npz)')
            try:
                return RecordedSequence(p['recorded_path'])
            except SequenceError as e:
                raise NodeStartError(str(e)) from e
        try:
            return SyntheticScene(SceneConfig(width=p['width'], height=p['height'],
                                              fx=p['fx'], fps=p['rate_hz'], seed=p['seed']))
        except ValueError as e:
            raise NodeStartError(f'synthetic scene: {e}') from e

    def next_frame(self) -> Optional[Frame]:
        count = getattr(self.source, 'count', None)
        if count is not None and self.index >= count:
            if not self.loop:
                return None
            self.index = 0
        frame = self.source.frame(self.index)
        self.index += 1
        return frame

    def _tick(self) -> None:
        try:
            frame = self.next_frame()
        except (SequenceError, ValueError) as e:
            log(self, logging.ERROR, f'cannot read frame {self.index}: {e}; stopping')
            self._timer.cancel()
            self.ended = True
            return
        if frame is None:
            if not self.ended:
                log(self, logging.INFO, 'end of the recorded sequence (loop is false): no more '
                    'frames')
                self.ended = True
                self._timer.cancel()
            return
        self.publish_frame(frame)

    def publish_frame(self, frame: Frame) -> Header:
        header = Header(stamp=self.get_clock().now().to_msg(), frame_id=self.frame_id)
        self._image.publish(image_msg(frame.rgb, header))
        self._depth.publish(image_msg(frame.depth, header))
        self._info.publish(camera_info_msg(self.camera, header))
        if self.publish_ground_truth and frame.poses is not None:
            self._truth.publish(poses_msg(frame.poses, header))
        self.published += 1
        return header

    def diagnostics(self) -> List[StatusRecord]:
        level, message = (WARN, 'ended: no more frames') if self.ended else \
            (OK, f'{self.published} frames published')
        return [record(f'{status_name_prefix(self)}: camera', level, message,
                       {'source': type(self.source).__name__, 'frames': self.published,
                        'index': self.index, 'width': self.camera.width,
                        'height': self.camera.height, 'frame_id': self.frame_id})]


def main(args: Optional[List[str]] = None) -> int:
    return run(CameraNode, args)


if __name__ == '__main__':
    raise SystemExit(main())
