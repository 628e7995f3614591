# Copyright 2026 rrto_ros authors. Apache-2.0.
"""The people-following nodes with real rclpy on the synthetic scene: camera -> pose
(ground_truth, or a stand-in estimator for source model) -> tracker -> follower, in one
process and a DDS domain of the test's own (test_nodes.Ros)."""

from __future__ import annotations

import statistics
import sys
import threading
import types
from typing import Any, Dict, List, Tuple

import numpy as np
import pytest
import test_nodes  # noqa: I100  (test/ helpers, before the ROS imports it checks for)
from test_nodes import p, ROBOT_YAML, Ros, wait_for

from diagnostic_msgs.msg import DiagnosticArray  # noqa: I100
from geometry_msgs.msg import PointStamped, Twist
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image, PointCloud2

from rrto_ros.nodes.camera_node import CameraNode
from rrto_ros.nodes.common import NodeStartError
from rrto_ros.nodes.follower_node import FollowerNode
from rrto_ros.nodes.pipeline_common import image_array, poses_of, SENSOR_QOS, stamp_s
from rrto_ros.nodes.pose_node import PoseNode
from rrto_ros.nodes.tracker_node import TrackerNode
from rrto_ros.tracking.poses import Pose
from rrto_ros.tracking.recorded import write_sequence
from rrto_ros.tracking.scene import SceneConfig, SyntheticScene

ros_env = test_nodes.ros_env    # the fixtures: a DDS domain of our own, rclpy in a thread
made = test_nodes.made
ros = test_nodes.ros
SMALL = [*p('width', 320), *p('height', 240), *p('fx', 262.5), *p('seed', 5),
         *p('rate_hz', 15.0)]


def node(ros: Ros, cls: Any, *args: str) -> Any:
    return ros.add(cls(context=ros.context, namespace=ros.namespace,
                       cli_args=['--ros-args', '--params-file', ROBOT_YAML,
                                 *p('diagnostics_period_s', 0.2), *args]))


class Listener:
    """Keeps what arrives on a few topics of the test's namespace."""

    def __init__(self, ros: Ros) -> None:
        self.node = ros.tuner()
        self.lock = threading.Lock()
        self.msgs: Dict[str, List[Any]] = {}

    def listen(self, topic: str, msg_type: Any, qos: Any = 10) -> None:
        self.msgs[topic] = []

        def keep(msg: Any) -> None:
            with self.lock:
                self.msgs[topic].append(msg)
        self.node.create_subscription(msg_type, topic, keep, qos)

    def get(self, topic: str) -> List[Any]:
        with self.lock:
            return list(self.msgs[topic])


def _record_frames(camera: CameraNode) -> Dict[Tuple[int, int], int]:
    """(sec, nanosec) of each published header -> the scene frame index."""
    sent: Dict[Tuple[int, int], int] = {}
    publish = camera.publish_frame

    def wrapped(frame: Any) -> Any:
        header = publish(frame)
        sent[(header.stamp.sec, header.stamp.nanosec)] = frame.index
        return header
    camera.publish_frame = wrapped
    return sent


def test_pipeline_follows_the_synthetic_person_and_stops_when_lost(ros):
    camera = node(ros, CameraNode, *SMALL)
    sent = _record_frames(camera)
    node(ros, PoseNode, *p('source', 'ground_truth'))
    # The tracker gives up first, then the follower: a prediction the tracker still
    # publishes must not arrive after the follower has stopped.
    tracker = node(ros, TrackerNode, *p('lost_after_s', 0.3))
    follower = node(ros, FollowerNode, *p('lost_timeout_s', 0.6))
    seen = Listener(ros)
    seen.listen('target', PointStamped)
    seen.listen('cmd_vel', Twist)
    wait_for(lambda: len(seen.get('target')) >= 15, 40, '15 target messages')
    scene = SyntheticScene(SceneConfig(width=320, height=240, fx=262.5, seed=5, fps=15.0))
    errors = []
    for msg in seen.get('target'):
        index = sent[(msg.header.stamp.sec, msg.header.stamp.nanosec)]
        assert msg.header.frame_id == 'camera_color_optical_frame'
        truth = scene.torso_position(scene.time_of(index))
        errors.append(np.linalg.norm(np.array([msg.point.x, msg.point.y, msg.point.z]) - truth))
    # Which frames arrive varies (best-effort QoS); seen side-on the depth is the near half of
    # the body's, up to ~0.25 m in front of the torso's centre (test_tracking.py).
    assert statistics.median(errors) < 0.2 and max(errors) < 0.35, errors
    assert tracker.tracker.state == 'tracking'
    # The person is 2-4 m away, the stand-off 1.5 m: the robot drives towards them.
    wait_for(lambda: any(m.linear.x > 0.05 for m in seen.get('cmd_vel')), 5, 'forward motion')
    assert all(m.linear.x <= 0.6 + 1e-9 and abs(m.angular.z) <= 1.0 + 1e-9
               for m in seen.get('cmd_vel'))
    # The camera goes away: the tracker predicts, then stops publishing; the follower stops.
    ros.executor.remove_node(camera)
    wait_for(lambda: follower.follower.state == 'lost', 5, 'the follower to report lost')
    # Frames already on their way (one executor runs every node here, late on a loaded
    # machine) may wake the follower once more; then it stops and stays stopped.

    def stopped() -> bool:
        tail = [(m.linear.x, m.angular.z) for m in seen.get('cmd_vel')[-10:]]
        return len(tail) == 10 and all(t == (0.0, 0.0) for t in tail)
    wait_for(stopped, 15, 'ten zero Twists in a row')


def test_pose_node_ground_truth_debug_image_and_diagnostics(ros):
    node(ros, CameraNode, *SMALL)
    node(ros, PoseNode, *p('source', 'ground_truth'))
    seen = Listener(ros)
    seen.listen('poses', PointCloud2)
    seen.listen('image', Image, SENSOR_QOS)
    seen.listen('debug_image', Image, SENSOR_QOS)
    seen.listen('/diagnostics', DiagnosticArray)
    wait_for(lambda: seen.get('debug_image') and seen.get('poses'), 15, 'poses and debug')
    (pose,) = poses_of(seen.get('poses')[0])
    assert pose.keypoints[:, 2].sum() > 10                   # the figure is in view
    debug = seen.get('debug_image')[-1]
    wait_for(lambda: stamp_s(debug.header) in {stamp_s(m.header) for m in seen.get('image')},
             5, 'the image of the debug image')
    images = {stamp_s(m.header): m for m in seen.get('image')}
    drawn = image_array(debug) != image_array(images[stamp_s(debug.header)])
    assert 50 < drawn.any(axis=2).sum() < 0.2 * 320 * 240   # a skeleton, not a new image

    def status() -> Dict[str, str]:
        for msg in seen.get('/diagnostics'):
            for s in msg.status:
                if s.name == f'{ros.namespace.lstrip("/")}/rrto_pose: poses':
                    return {kv.key: kv.value for kv in s.values}
        return {}
    values = wait_for(status, 15, 'pose diagnostics')
    assert values['source'] == 'ground_truth' and values['random_init'] == 'false'


def test_pose_node_model_source_with_a_stand_in_estimator(ros, monkeypatch):
    made: List[Dict[str, Any]] = []

    class StandIn:
        random_init = True
        weights_description = 'random initialisation'

        def __init__(self, **kwargs: Any) -> None:
            made.append(kwargs)

        def estimate(self, rgb: np.ndarray) -> List[Pose]:
            kp = np.zeros((17, 3), np.float32)
            kp[:, 0], kp[:, 1], kp[:, 2] = rgb.shape[1] / 2, rgb.shape[0] / 2, 0.7
            return [Pose(kp, 0.6, (0, 0, 1, 1))]

    module = types.ModuleType('rrto_ros.tracking.pose_estimator')
    module.PoseEstimator = StandIn
    monkeypatch.setitem(sys.modules, 'rrto_ros.tracking.pose_estimator', module)
    node(ros, CameraNode, *SMALL)
    pose = node(ros, PoseNode, *p('source', 'model'), *p('img_size', 320),
                *p('device', 'cpu'))
    assert made == [{'size': 's', 'weights': None, 'img_size': 320, 'device': 'cpu'}]
    seen = Listener(ros)
    seen.listen('poses', PointCloud2)
    wait_for(lambda: seen.get('poses'), 10, 'poses from the model')
    (got,) = poses_of(seen.get('poses')[0])
    assert np.allclose(got.keypoints[0], (160, 120, 0.7)) and abs(got.score - 0.6) < 1e-6
    (rec,) = pose.diagnostics()
    assert rec.level == 1 and 'RANDOM weights' in rec.message
    assert rec.as_dict()['random_init'] == 'true'


def test_pose_node_model_source_fails_clearly_without_the_model(ros, monkeypatch):
    monkeypatch.setitem(sys.modules, 'rrto_ros.tracking.pose_estimator', None)
    with pytest.raises(NodeStartError, match='source ground_truth'):
        node(ros, PoseNode, *p('source', 'model'))
    with pytest.raises(NodeStartError, match='multiple of 64'):
        node(ros, PoseNode, *p('source', 'model'), *p('img_size', 600))


def test_camera_node_recorded_sequence_and_bad_sources(ros, tmp_path):
    scene = SyntheticScene(SceneConfig(width=64, height=48, fx=50.0))
    write_sequence(str(tmp_path), scene.camera, (scene.frame(i) for i in range(3)), 15.0)
    seen = Listener(ros)
    seen.listen('depth', Image, SENSOR_QOS)
    camera = node(ros, CameraNode, *p('source', 'recorded'), *p('recorded_path', str(tmp_path)),
                  *p('loop', False), *p('rate_hz', 30.0))
    wait_for(lambda: camera.ended, 10, 'the end of the sequence')
    assert camera.published == 3
    depth = seen.get('depth')
    if depth:   # best effort: a message may be missed, none may differ
        assert image_array(depth[0]).dtype == np.uint16
    with pytest.raises(NodeStartError, match='source must be one of'):
        node(ros, CameraNode, *p('source', 'webcam'))
    with pytest.raises(NodeStartError, match='recorded_path is empty'):
        node(ros, CameraNode, *p('source', 'recorded'))
    (tmp_path / 'empty').mkdir()
    with pytest.raises(NodeStartError, match='camera_info.yaml'):
        node(ros, CameraNode, *p('source', 'recorded'),
             *p('recorded_path', str(tmp_path / 'empty')))


def test_follower_and_tracker_parameters_change_at_run_time(ros):
    follower = node(ros, FollowerNode)
    tracker = node(ros, TrackerNode)
    r = follower.set_parameters([Parameter('standoff_m', value=2.5)])
    assert r[0].successful and follower.follower.config.standoff_m == 2.5
    r = follower.set_parameters([Parameter('frame_convention', value='ned')])
    assert not r[0].successful and 'frame_convention must be one of' in r[0].reason
    r = follower.set_parameters([Parameter('max_linear_mps', value=50.0)])
    assert not r[0].successful and follower.follower.config.max_linear_mps == 0.6
    r = follower.set_parameters([Parameter('control_rate_hz', value=5.0)])
    assert not r[0].successful and 'read-only' in r[0].reason
    r = tracker.set_parameters([Parameter('min_depth_m', value=20.0)])
    assert not r[0].successful and 'min_depth_m' in r[0].reason
    r = tracker.set_parameters([Parameter('gate_m', value=0.5), Parameter('slop_s', value=0.1)])
    assert all(x.successful for x in r)
    assert tracker.tracker.config.gate_m == 0.5 and tracker.matcher.slop_s == 0.1
