# Copyright 2026 rrto_ros authors. Apache-2.0.
"""What the people-following nodes share: messages <-> the ROS-free types of
``rrto_ros.tracking`` (images, CameraInfo, the poses PointCloud2), the QoS of camera topics,
run-time parameter changes validated through a config, and their /diagnostics records."""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Mapping, Sequence

from rcl_interfaces.msg import SetParametersResult
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import HistoryPolicy, qos_profile_sensor_data, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image, PointCloud2, PointField
from std_msgs.msg import Header

from rrto_ros.nodes.params import ParamSpec
from rrto_ros.nodes.status import fmt, StatusRecord
from rrto_ros.tracking import images, pose_messages
from rrto_ros.tracking.camera import CameraIntrinsics
from rrto_ros.tracking.poses import Pose

# Camera streams: best effort, a few deep (what camera drivers publish; a best-effort
# subscription also receives from reliable publishers).
SENSOR_QOS = qos_profile_sensor_data
RESULT_QOS = 10     # poses, target, cmd_vel: reliable, 10 deep
# The pose network's input: only the newest image (a slow network skips frames, never lags).
LATEST_QOS = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST,
                        reliability=ReliabilityPolicy.BEST_EFFORT)


def stamp_s(header: Header) -> float:
    return header.stamp.sec + header.stamp.nanosec * 1e-9


def image_msg(array: Any, header: Header) -> Image:
    encoding, height, width, step, data = images.encode(array)
    return Image(header=header, height=height, width=width, encoding=encoding,
                 is_bigendian=0, step=step, data=data)


def image_array(msg: Image) -> Any:
    return images.decode(msg.encoding, msg.height, msg.width, msg.step, bytes(msg.data),
                         bool(msg.is_bigendian))


def camera_info_msg(camera: CameraIntrinsics, header: Header) -> CameraInfo:
    p = [camera.fx, 0.0, camera.cx, 0.0, 0.0, camera.fy, camera.cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    return CameraInfo(header=header, width=camera.width, height=camera.height,
                      distortion_model='plumb_bob', d=[0.0] * 5, k=camera.k,
                      r=[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0], p=p)


def intrinsics(msg: CameraInfo) -> CameraIntrinsics:
    return CameraIntrinsics.from_k(list(msg.k), msg.width, msg.height, msg.header.frame_id)


def poses_msg(poses: Sequence[Pose], header: Header) -> PointCloud2:
    points = pose_messages.pack(poses)
    return PointCloud2(
        header=header, height=1, width=len(points),
        fields=[PointField(name=n, offset=o, datatype=d, count=c)
                for n, o, d, c in pose_messages.fields()],
        is_bigendian=False, point_step=pose_messages.POINT_STEP,
        row_step=pose_messages.POINT_STEP * len(points), data=points.tobytes(), is_dense=True)


def poses_of(msg: PointCloud2) -> List[Pose]:
    return pose_messages.unpack(bytes(msg.data),
                                [(f.name, f.offset, f.datatype, f.count) for f in msg.fields],
                                msg.point_step, msg.width, msg.height, bool(msg.is_bigendian))


def parameter_values(node: Node, specs: Sequence[ParamSpec]) -> Dict[str, Any]:
    return {s.name: node.get_parameter(s.name).value for s in specs}


def accept_changes(node: Node, specs: Sequence[ParamSpec],
                   build: Callable[[Mapping[str, Any]], Any],
                   apply: Callable[[Any], None]) -> None:
    """Validate run-time parameter changes by building the config they would give
    (``build`` raises ValueError naming the problem: the change is refused with that
    reason), then ``apply`` it. Read-only parameters are refused by rclpy before this."""
    names = {s.name for s in specs}

    def on_set(params: List[Parameter]) -> SetParametersResult:
        changes = {p.name: p.value for p in params if p.name in names}
        if not changes:
            return SetParametersResult(successful=True)
        values = parameter_values(node, specs)
        values.update(changes)
        try:
            config = build(values)
        except (ValueError, TypeError) as e:
            reason = f'{", ".join(f"{k} := {v!r}" for k, v in changes.items())} refused: {e}'
            node.get_logger().warning(reason)
            return SetParametersResult(successful=False, reason=reason)
        apply(config)
        node.get_logger().info('now ' + ', '.join(f'{k} = {v!r}' for k, v in changes.items()))
        return SetParametersResult(successful=True)

    node.add_on_set_parameters_callback(on_set)


def record(name: str, level: int, message: str, values: Mapping[str, Any],
           hardware_id: str = '') -> StatusRecord:
    return StatusRecord(level, name, message, hardware_id,
                        [(k, fmt(v)) for k, v in values.items()])
