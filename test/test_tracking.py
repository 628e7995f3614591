# Copyright 2026 rrto_ros authors. Apache-2.0.
"""The people-following pipeline's ROS-free parts: the synthetic scene, unprojection, the
Kalman filter, the tracker, the follower's control law, the stamp matcher, the poses
PointCloud2 layout, image conversion, drawing, recorded sequences and the pose pipeline."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rrto_ros.tracking import images, pose_messages
from rrto_ros.tracking.camera import CameraIntrinsics, Frame
from rrto_ros.tracking.draw import draw_poses
from rrto_ros.tracking.follower import Follower, FollowerConfig, to_base
from rrto_ros.tracking.kalman import ConstantVelocityKalman, KalmanConfig
from rrto_ros.tracking.pose_pipeline import PosePipeline
from rrto_ros.tracking.poses import NUM_KEYPOINTS, Pose, TORSO
from rrto_ros.tracking.recorded import (RecordedSequence, SequenceError, write_frame,
                                        write_sequence)
from rrto_ros.tracking.scene import SceneConfig, SyntheticScene
from rrto_ros.tracking.stamps import StampMatcher
from rrto_ros.tracking.tracker import PersonTracker, TrackerConfig
from rrto_ros.tracking.unproject import person_position, UnprojectConfig

CAM = CameraIntrinsics(64, 48, 50.0, 50.0, 31.5, 23.5, 'cam')


@pytest.fixture(scope='module')
def scene() -> SyntheticScene:
    return SyntheticScene(SceneConfig(width=320, height=240, fx=262.5, seed=3))


def _pose_at(points, conf=1.0, score=0.9) -> Pose:
    kp = np.zeros((NUM_KEYPOINTS, 3), np.float32)
    for i, (x, y) in zip(TORSO, points):
        kp[i] = (x, y, conf)
    return Pose(kp, score, (0, 0, 1, 1))


# ----------------------------------------------------------------- scene
def test_scene_is_deterministic_and_differs_by_seed(scene):
    a, b = scene.frame(7), SyntheticScene(scene.config).frame(7)
    assert np.array_equal(a.rgb, b.rgb) and np.array_equal(a.depth, b.depth)
    other = SyntheticScene(SceneConfig(width=320, height=240, fx=262.5, seed=4)).frame(7)
    assert not np.array_equal(a.depth, other.depth)
    assert a.rgb.dtype == np.uint8 and a.rgb.shape == (240, 320, 3)
    assert a.depth.dtype == np.uint16 and a.depth.shape == (240, 320)
    invalid = (a.depth == 0).mean()
    assert 0.01 < invalid < 0.2, invalid       # drop-outs exist, most pixels are measured


def test_scene_projection_matches_its_depth(scene):
    """Every torso joint projects onto pixels whose depth is the joint's (the figure's
    surface), and the 2D ground truth is the projection of the 3D joints."""
    for index in (0, 11, 40, 77):
        f = scene.frame(index)
        joints = scene.joints(scene.time_of(index))
        (pose,) = f.poses
        assert np.allclose(pose.keypoints[:, :2], scene.camera.project(joints), atol=1e-3)
        error = {}
        for i in TORSO:
            u, v = (int(round(c)) for c in pose.keypoints[i, :2])
            patch = f.depth[v - 2:v + 3, u - 2:u + 3].astype(float) / 1000
            patch = patch[patch > 0]
            assert patch.size, (index, i)
            error[i] = np.median(patch) - joints[i, 2]
            # Its own surface, or (seen side-on) the nearer half of the body in front of it.
            assert -0.6 < error[i] < 0.1, (index, i, error[i])
        assert min(abs(error[5]), abs(error[6])) < 0.12, error     # a shoulder is seen
        assert min(abs(error[11]), abs(error[12])) < 0.12, error   # and a hip
        bg = f.depth[5, 5] / 1000                 # the wall, far behind the person
        assert bg == 0 or bg > joints[:, 2].max() + 1


def test_scene_person_walks_with_a_gait(scene):
    times = np.arange(0, 6, 1 / 15)
    torso = np.array([scene.torso_position(t) for t in times])
    speed = np.linalg.norm(np.diff(torso[:, [0, 2]], axis=0), axis=1) * 15
    assert 0.5 < speed.mean() < 1.3
    ankles = np.array([scene.joints(t)[15, 2] - scene.joints(t)[16, 2] for t in times])
    assert ankles.max() > 0.2 or ankles.min() < -0.2 or np.ptp(ankles) > 0.3   # legs swing
    assert (torso[:, 2] > 2.0).all() and np.ptp(torso[:, 0]) > 1.0


# ----------------------------------------------------------------- unprojection
def test_unproject_flat_depth():
    depth = np.full((48, 64), 2000, np.uint16)
    pos = person_position(_pose_at([(20, 10), (40, 10), (22, 30), (38, 30)]), depth, CAM)
    assert pos is not None
    assert np.allclose(pos, [(30 - 31.5) * 2 / 50, (20 - 23.5) * 2 / 50, 2.0], atol=1e-6)


def test_unproject_ignores_invalid_and_out_of_range_depth():
    depth = np.full((48, 64), 3000, np.uint16)
    depth[::2, :] = 0                               # half the rows have no measurement
    depth[:, 30:] = 60000                           # 60 m: out of range
    pos = person_position(_pose_at([(10, 10), (40, 10), (12, 30), (45, 30)]), depth, CAM)
    assert pos is not None and abs(pos[2] - 3.0) < 1e-9
    assert person_position(_pose_at([(10, 10)] * 4), np.zeros((48, 64), np.uint16), CAM) is None
    low = _pose_at([(20, 10), (40, 10), (22, 30), (38, 30)], conf=0.1)
    assert person_position(low, depth, CAM) is None     # keypoints not confident enough
    off = _pose_at([(-30, 10), (400, 10), (22, 300), (38, -5)])
    assert person_position(off, depth, CAM) is None     # keypoints outside the image


def test_unproject_is_robust_to_outliers():
    depth = np.full((48, 64), 2500, np.uint16)
    rng = np.random.default_rng(0)
    mask = rng.random(depth.shape) < 0.3
    depth[mask] = rng.choice([300, 7000, 9000], mask.sum())   # background, flying pixels
    pos = person_position(_pose_at([(20, 10), (40, 10), (22, 30), (38, 30)]), depth, CAM)
    assert abs(pos[2] - 2.5) < 0.05
    depth32 = np.where(depth == 2500, 2.5, np.nan).astype(np.float32)   # 32FC1, metres
    pos = person_position(_pose_at([(20, 10), (40, 10), (22, 30), (38, 30)]), depth32, CAM)
    assert abs(pos[2] - 2.5) < 1e-6


def test_unproject_refuses_unaligned_depth():
    with pytest.raises(ValueError, match='aligned to the color'):
        person_position(_pose_at([(1, 1)] * 4), np.zeros((10, 10), np.uint16), CAM)
    with pytest.raises(ValueError, match='min_depth_m'):
        UnprojectConfig(min_depth_m=5, max_depth_m=1).validate()


def test_unproject_on_the_scene(scene):
    errors = []
    for index in range(0, 90, 3):
        f = scene.frame(index)
        pos = person_position(f.poses[0], f.depth, scene.camera)
        errors.append(np.linalg.norm(pos - scene.torso_position(scene.time_of(index))))
    assert np.median(errors) < 0.1 and max(errors) < 0.25


# ----------------------------------------------------------------- Kalman filter
def _trajectory(t: np.ndarray) -> np.ndarray:
    return np.stack([0.8 * t - 1, np.zeros_like(t), 3 + 0.3 * np.sin(0.5 * t)], axis=1)


def test_kalman_converges_on_a_noisy_trajectory():
    kf = ConstantVelocityKalman(KalmanConfig(measurement_std=0.08))
    rng = np.random.default_rng(1)
    t = np.arange(0, 10, 1 / 15)
    truth = _trajectory(t)
    est = []
    for ti, p in zip(t, truth):
        est.append(kf.update(p + rng.normal(0, 0.08, 3), ti))
    err = np.linalg.norm(np.array(est) - truth, axis=1)
    raw = 0.08 * math.sqrt(3)
    assert err[-60:].mean() < 0.7 * raw             # filtered beats the raw measurement
    assert abs(kf.velocity[0] - 0.8) < 0.2          # and it learned the velocity


def test_kalman_predicts_through_a_short_loss_then_reports_lost():
    kf = ConstantVelocityKalman(KalmanConfig(lost_after_s=1.0))
    for ti in np.arange(0, 3, 0.1):
        kf.update(np.array([ti * 1.0, 0, 3.0]), ti)
    last = kf.last_update
    assert not kf.is_lost(last + 0.5)
    predicted = kf.predict(last + 0.5)
    assert abs(predicted[0] - (last + 0.5)) < 0.05       # kept walking at 1 m/s
    assert kf.is_lost(last + 1.2)
    kf.update(np.array([-5.0, 0, 2.0]), last + 1.2)      # after the loss: a new track
    assert np.allclose(kf.position, [-5, 0, 2]) and np.allclose(kf.velocity, 0)
    with pytest.raises(RuntimeError, match='start'):
        ConstantVelocityKalman().predict(1.0)
    with pytest.raises(ValueError, match='accel_std'):
        KalmanConfig(accel_std=0).validate()


# ----------------------------------------------------------------- tracker
def test_tracker_follows_the_scene_and_predicts_through_losses(scene):
    tracker = PersonTracker(TrackerConfig())
    errors = []
    for index in range(0, 75):
        f = scene.frame(index)
        t = scene.time_of(index)
        poses = f.poses if not 40 <= index < 48 else []      # ~0.5 s without a detection
        est = tracker.observe(t, poses, f.depth, scene.camera)
        assert est is not None
        assert est.state == ('predicting' if 40 <= index < 48 else 'tracking')
        errors.append(np.linalg.norm(est.position - scene.torso_position(t)))
    # Seen side-on, the depth camera sees the near half of the body: up to ~0.25 m in front
    # of the torso's centre (the ground truth).
    assert np.median(errors) < 0.15 and max(errors[5:]) < 0.3
    later = scene.time_of(75) + 2.0                           # nobody for 2 s: lost
    assert tracker.observe(later, [], scene.frame(0).depth, scene.camera) is None
    assert tracker.state == 'lost'


def test_tracker_keeps_the_person_it_follows():
    depth = np.full((48, 64), 2000, np.uint16)
    depth[:, 32:] = 4000
    near = _pose_at([(5, 10), (15, 10), (6, 30), (14, 30)], score=0.5)   # 2 m
    far = _pose_at([(40, 10), (50, 10), (41, 30), (49, 30)], score=0.9)  # 4 m, higher score
    tracker = PersonTracker()
    assert tracker.observe(0.0, [far], depth, CAM).position[2] == pytest.approx(4.0)
    for k in range(1, 5):   # both visible: stays with the tracked one, not the other
        est = tracker.observe(0.1 * k, [near, far], depth, CAM)
        assert est.position[2] == pytest.approx(4.0, abs=0.05)
    only_near = tracker.observe(0.6, [near], depth, CAM)     # 2 m away from it: gated out
    assert only_near.state == 'predicting' and only_near.position[2] > 3.5


# ----------------------------------------------------------------- follower
def test_follower_frames():
    assert to_base([0.5, -0.2, 3.0], 'optical') == (3.0, -0.5)
    assert to_base([3.0, 0.5, 0.2], 'base') == (3.0, 0.5)
    with pytest.raises(ValueError, match='frame_convention'):
        FollowerConfig(frame_convention='ned').validate()


def test_follower_control_law_and_limits():
    c = FollowerConfig(standoff_m=1.5, linear_gain=0.5, angular_gain=2.0, max_linear_mps=0.6,
                       max_angular_rps=1.0, max_linear_accel=100, max_angular_accel=100)
    f = Follower(c)
    v, w = f.step([0.0, 0.0, 2.5], 0.0, 1.0)            # straight ahead, 1 m too far
    assert v == pytest.approx(0.5) and w == pytest.approx(0.0)
    v, w = f.step([0.0, 0.0, 9.0], 0.0, 1.0)            # far: speed limit
    assert v == pytest.approx(0.6)
    v, w = f.step([-1.0, 0.0, 2.0], 0.0, 1.0)           # to the left (x < 0): turn left
    assert w > 0 and 0 < v < 0.5 * (math.hypot(1, 2) - 1.5) + 1e-9
    v, w = f.step([-5.0, 0.0, 0.5], 0.0, 1.0)           # far to the side: turn-rate limit
    assert w == pytest.approx(1.0)
    assert v == pytest.approx(0.5 * (math.hypot(5, 0.5) - 1.5) * math.cos(math.atan2(5, 0.5)))
    v, w = f.step([0.0, 0.0, 1.55], 0.0, 1.0)           # at the stand-off: hold
    assert (v, w) == (0.0, 0.0) and f.state == 'holding'
    v, w = f.step([0.0, 0.0, 0.5], 0.0, 1.0)            # too close, no reversing by default
    assert v == 0.0
    back = Follower(FollowerConfig(max_reverse_mps=0.2, max_linear_accel=100))
    assert back.step([0.0, 0.0, 0.5], 0.0, 1.0)[0] == pytest.approx(-0.2)
    v, w = f.step([2.0, 0.0, -1.0], 0.0, 1.0)           # behind the robot: turn, don't drive
    assert v == 0.0 and w == pytest.approx(-1.0)


def test_follower_acceleration_limits():
    f = Follower(FollowerConfig(max_linear_accel=0.5, max_angular_accel=1.0))
    speeds = [f.step([0.0, 0.0, 5.0], 0.0, 0.1)[0] for _ in range(20)]
    assert speeds[0] == pytest.approx(0.05) and np.all(np.diff(speeds) <= 0.05 + 1e-12)
    assert speeds[-1] == pytest.approx(0.6)             # reached the limit after 1.2 s
    w = f.step([-3.0, 0.0, 1.0], 0.0, 0.1)[1]
    assert w == pytest.approx(0.1)


def test_follower_stops_when_the_target_is_lost():
    f = Follower(FollowerConfig(lost_timeout_s=1.0, max_linear_accel=100))
    assert f.step(None, 0.0, 0.1) == (0.0, 0.0) and f.state == 'waiting'
    assert f.step([0.0, 0.0, 4.0], 0.5, 0.1)[0] > 0
    assert f.step([0.0, 0.0, 4.0], 1.01, 0.1) == (0.0, 0.0)   # stops at once
    assert f.state == 'lost'
    assert f.step([0.0, 0.0, 4.0], 0.0, 0.1)[0] > 0          # and resumes when seen again


@pytest.mark.parametrize('field, value', [('standoff_m', 0), ('max_linear_mps', -1),
                                          ('max_reverse_mps', -0.1), ('lost_timeout_s', 0)])
def test_follower_config_errors(field, value):
    with pytest.raises(ValueError, match=field):
        FollowerConfig(**{field: value}).validate()


# ----------------------------------------------------------------- stamp matcher
def test_stamp_matcher_pairs_nearest_within_slop():
    m = StampMatcher(slop_s=0.02, queue_size=5)
    assert m.add(1, 1.00, 'd1') is None
    assert m.add(1, 1.10, 'd2') is None
    assert m.add(0, 1.105, 'p2') == ('p2', 'd2', 1.105, 1.10)   # nearest, not the first
    assert m.pending(1) == 0                                    # d1 is dropped as stale
    assert m.add(0, 1.20, 'p3') is None                         # waits for its depth
    assert m.add(1, 1.25, 'd4') is None                         # 50 ms off: no pair
    assert m.add(1, 1.21, 'd3') == ('p3', 'd3', 1.20, 1.21)
    assert m.pending(0) == 0 and m.pending(1) == 1              # d4 is newer: kept
    for k in range(20):                                         # bounded queues
        m.add(0, 10 + k, k)
    assert m.pending(0) == 5 and m.matched == 2
    with pytest.raises(ValueError):
        m.add(2, 0.0, None)


# ----------------------------------------------------------------- poses PointCloud2 layout
def test_pose_cloud_round_trip():
    rng = np.random.default_rng(2)
    poses = [Pose(np.concatenate([rng.uniform(0, 600, (17, 2)), rng.uniform(0, 1, (17, 1))],
                                 axis=1), s, (0, 0, 0, 0)) for s in (0.9, 0.4)]
    cloud = pose_messages.pack(poses)
    assert cloud.dtype.itemsize == pose_messages.POINT_STEP == 24 and len(cloud) == 34
    assert [f[0] for f in pose_messages.fields()] == ['x', 'y', 'confidence', 'person',
                                                      'keypoint', 'score']
    back = pose_messages.unpack(cloud.tobytes(), pose_messages.fields(), 24, len(cloud))
    assert len(back) == 2
    for a, b in zip(poses, back):
        assert np.array_equal(a.keypoints, b.keypoints) and b.score == pytest.approx(a.score)
        assert b.bbox == pose_messages.bbox_of(a.keypoints)
    assert cloud['person'][17] == 1 and cloud['keypoint'][20] == 3
    assert pose_messages.unpack(b'', pose_messages.fields(), 24, 0) == []


def test_pose_cloud_errors_name_the_problem():
    good = pose_messages.pack([Pose(np.zeros((17, 3)), 1.0, (0, 0, 0, 0))])
    fields = pose_messages.fields()
    with pytest.raises(ValueError, match='not an rrto_ros poses cloud'):
        pose_messages.unpack(good.tobytes(), [('x', 0, 7, 1), ('y', 4, 7, 1)], 8, 17)
    with pytest.raises(ValueError, match='17 points per person'):
        pose_messages.unpack(good.tobytes(), fields, 24, 16)
    with pytest.raises(ValueError, match='bytes'):
        pose_messages.unpack(good.tobytes()[:100], fields, 24, 17)
    shuffled = good.copy()
    shuffled['keypoint'] = shuffled['keypoint'][::-1]
    with pytest.raises(ValueError, match='keypoints 0..16'):
        pose_messages.unpack(shuffled.tobytes(), fields, 24, 17)


# ----------------------------------------------------------------- images, drawing
def test_image_encode_decode():
    rgb = np.random.default_rng(3).integers(0, 255, (5, 7, 3), dtype=np.uint8)
    enc, h, w, step, data = images.encode(rgb)
    assert (enc, h, w, step) == ('rgb8', 5, 7, 21)
    assert np.array_equal(images.decode(enc, h, w, step, data), rgb)
    padded = b''.join(rgb[::, :, ::-1][y].tobytes() + b'\0' * 3 for y in range(5))
    assert np.array_equal(images.decode('bgr8', 5, 7, 24, padded), rgb)   # bgr, row padding
    depth = np.arange(35, dtype=np.uint16).reshape(5, 7) * 100
    assert np.array_equal(images.decode(*images.encode(depth)), depth)
    big = depth.astype('>u2').tobytes()
    assert np.array_equal(images.decode('16UC1', 5, 7, 14, big, is_bigendian=True), depth)
    with pytest.raises(ValueError, match='not supported'):
        images.decode('yuv422', 5, 7, 14, big)
    with pytest.raises(ValueError, match='too small'):
        images.decode('rgb8', 5, 7, 21, data[:50])


def test_draw_poses_marks_the_skeleton_only():
    rgb = np.zeros((60, 80, 3), np.uint8)
    kp = np.zeros((17, 3), np.float32)
    kp[5], kp[11] = (10, 10, 1), (10, 50, 1)          # left shoulder -> left hip
    kp[6] = (70, 10, 0.1)                              # not confident: not drawn
    out = draw_poses(rgb, [Pose(kp, 1.0, (0, 0, 1, 1))])
    assert (out[30, 10] == (0, 220, 0)).all()          # on the limb, the left colour
    assert (out[10, 70] == 0).all() and (out[30, 40] == 0).all()
    assert (rgb == 0).all()                            # input untouched


# ----------------------------------------------------------------- recorded sequences
def test_recorded_sequence_round_trip(tmp_path, scene):
    frames = [scene.frame(i) for i in range(3)]
    assert write_sequence(str(tmp_path), scene.camera, frames, 15.0) == 3
    seq = RecordedSequence(str(tmp_path))
    assert seq.count == 3 and seq.camera == scene.camera and seq.fps == 15.0
    for f in frames:
        g = seq.frame(f.index)
        assert np.array_equal(g.rgb, f.rgb) and np.array_equal(g.depth, f.depth)
        assert g.stamp_s == f.stamp_s
        assert np.array_equal(g.poses[0].keypoints, f.poses[0].keypoints)
    plain = Frame(0, 0.0, frames[0].rgb, frames[0].depth, None)   # no ground truth
    (tmp_path / 'x').mkdir()
    write_frame(str(tmp_path / 'x'), plain)
    (tmp_path / 'x' / 'camera_info.yaml').write_text((tmp_path / 'camera_info.yaml').read_text())
    assert RecordedSequence(str(tmp_path / 'x')).frame(0).poses is None


def test_recorded_sequence_errors(tmp_path):
    with pytest.raises(SequenceError, match='not a directory'):
        RecordedSequence(str(tmp_path / 'none'))
    with pytest.raises(SequenceError, match='camera_info.yaml'):
        RecordedSequence(str(tmp_path))
    (tmp_path / 'camera_info.yaml').write_text('width: 4\nheight: 4\n')
    with pytest.raises(SequenceError, match='needs width, height and k'):
        RecordedSequence(str(tmp_path))
    (tmp_path / 'camera_info.yaml').write_text('width: 4\nheight: 4\nk: [2,0,2,0,2,2,0,0,1]\n')
    with pytest.raises(SequenceError, match='no frames'):
        RecordedSequence(str(tmp_path))
    np.savez(tmp_path / '000000.npz', rgb=np.zeros((4, 4, 3), np.uint8),
             depth=np.zeros((4, 4), np.float32))
    with pytest.raises(SequenceError, match='uint16'):
        RecordedSequence(str(tmp_path)).frame(0)


# ----------------------------------------------------------------- pose pipeline
class FakeEstimator:
    """Stands in for PoseEstimator: a fixed pose, and what it was given."""

    random_init = True
    weights_description = 'random initialisation (no weights given)'

    def __init__(self, result=None) -> None:
        self.seen = []
        self.result = result

    def estimate(self, rgb):
        self.seen.append(rgb.shape)
        if self.result is not None:
            return self.result
        kp = np.zeros((17, 3), np.float32)
        kp[5], kp[11] = (4, 4, 0.9), (4, 30, 0.9)
        return [Pose(kp, 0.8, (0, 0, 10, 10))]


def test_pose_pipeline_with_an_estimator():
    est = FakeEstimator()
    pipe = PosePipeline(est)
    rgb = np.zeros((40, 30, 3), np.uint8)
    r = pipe.estimate(rgb)
    assert est.seen == [(40, 30, 3)] and len(r.poses) == 1 and r.latency_s >= 0
    assert r.debug_rgb is not None and r.debug_rgb[20, 4].any() and not rgb.any()
    values = pipe.status_values()
    assert values['source'] == 'model' and values['random_init'] is True
    assert values['frames'] == 1 and values['persons'] == 1
    assert 'random' in values['weights']
    with pytest.raises(ValueError, match='uint8 RGB'):
        pipe.estimate(np.zeros((40, 30), np.uint8))
    with pytest.raises(TypeError, match='not a list of'):
        PosePipeline(FakeEstimator(result=np.zeros((1, 17, 3)))).estimate(rgb)


def test_pose_pipeline_ground_truth(scene):
    pipe = PosePipeline(None)
    f = scene.frame(0)
    r = pipe.relay(f.rgb, f.poses)
    assert r.poses == f.poses and not np.array_equal(r.debug_rgb, f.rgb)
    assert pipe.status_values()['source'] == 'ground_truth'
    assert pipe.status_values()['random_init'] is False
    with pytest.raises(RuntimeError, match='relay'):
        pipe.estimate(f.rgb)
