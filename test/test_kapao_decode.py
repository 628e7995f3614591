# Copyright 2026 rrto_ros authors. Apache-2.0.
"""KAPAO's head decode, NMS and keypoint-object fusion (numpy only), on hand-made cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rrto_ros.tracking.kapao_decode import (decode, DEFAULT_ANCHORS, detect, fuse_keypoints,
                                            head_layout, level_shapes, nms, NUM_CLASSES,
                                            NUM_OUTPUTS, postprocess, PostprocessParams)
from rrto_ros.tracking.letterbox import Letterboxed
from rrto_ros.tracking.poses import Pose

ANCHORS = np.array(DEFAULT_ANCHORS, dtype=np.float32)
LOGIT_075 = math.log(3.0)  # sigmoid = 0.75
KP = 5 + NUM_CLASSES       # first keypoint column


def sig(x):
    return 1.0 / (1.0 + math.exp(-x))


def row_index(input_hw, level, anchor, gy, gx):
    shapes = level_shapes(input_hw)
    start = sum(3 * ny * nx for ny, nx in shapes[:level])
    ny, nx = shapes[level]
    return start + anchor * ny * nx + gy * nx + gx


def test_layout_rows_follow_level_anchor_row_column():
    lay = head_layout((128, 192), ANCHORS)
    assert lay.rows == 3 * (16 * 24 + 8 * 12 + 4 * 6 + 2 * 3) == 1530
    i = row_index((128, 192), 1, 2, 3, 5)
    assert (lay.gx[i], lay.gy[i], lay.stride[i]) == (5, 3, 16)
    assert (lay.anchor_w[i], lay.anchor_h[i]) == (180, 137)
    last = lay.rows - 1
    assert (lay.gx[last], lay.gy[last], lay.stride[last], lay.anchor_w[last]) == (2, 1, 64, 925)
    with pytest.raises(ValueError, match='multiple of the largest stride'):
        head_layout((100, 128), ANCHORS)
    with pytest.raises(ValueError, match='anchors'):
        head_layout((128, 128), ANCHORS[:3])


def test_decode_applies_kapaos_formulas():
    lay = head_layout((64, 64), ANCHORS)
    raw = np.zeros((lay.rows, NUM_OUTPUTS), np.float32)
    i = row_index((64, 64), 0, 1, 2, 3)   # stride 8, anchor (44, 40), cell x 3, y 2
    raw[i, 0] = LOGIT_075                 # x: (0.75 * 2 - 0.5 + 3) * 8 = 32
    raw[i, 3] = LOGIT_075                 # h: (0.75 * 2) ** 2 * 40 = 90
    raw[i, KP] = LOGIT_075                # kp 0 x: (0.75 * 4 - 2) * 44 + 3 * 8 = 68
    raw[i, KP + 3] = -LOGIT_075           # kp 1 y: (0.25 * 4 - 2) * 40 + 2 * 8 = -24
    d = decode(raw[None], lay)
    assert d.shape == (lay.rows, NUM_OUTPUTS)
    np.testing.assert_allclose(d[i, :5], [32.0, (0.5 + 2) * 8, 44.0, 90.0, 0.5], rtol=1e-6)
    np.testing.assert_allclose(d[i, KP:KP + 4], [68.0, 16.0, 24.0, -24.0], rtol=1e-6)
    np.testing.assert_allclose(d[i, 5:KP], 0.5)
    sub = decode(raw, lay, np.array([i]))
    np.testing.assert_array_equal(sub[0], d[i])
    with pytest.raises(ValueError, match='wrong model or input size'):
        decode(raw[:-1], lay)


def test_nms_keeps_the_best_of_each_overlapping_group():
    boxes = np.array([[0, 0, 10, 10],      # 0: score .9
                      [1, 1, 11, 11],      # 1: IoU with 0 = 81/119 = .68 -> dropped
                      [20, 20, 30, 30],    # 2: alone
                      [0, 0, 10, 5],       # 3: IoU with 0 = .5 -> kept at .5, dropped at .45
                      [21, 21, 31, 31]],   # 4: IoU with 2 = .68, higher score -> wins
                     np.float32)
    scores = np.array([0.9, 0.8, 0.5, 0.7, 0.6])
    assert nms(boxes, scores, 0.5).tolist() == [0, 3, 4]
    assert nms(boxes, scores, 0.45).tolist() == [0, 4]
    assert nms(boxes, scores, 0.9).tolist() == [0, 1, 3, 4, 2]
    assert nms(np.zeros((0, 4)), np.zeros(0), 0.5).tolist() == []
    with pytest.raises(ValueError, match='scores'):
        nms(boxes, scores[:2], 0.5)


def decoded_rows(*rows):
    """Decoded rows from (cx, cy, w, h, obj, cls, cls_score)."""
    out = np.zeros((len(rows), NUM_OUTPUTS), np.float32)
    for r, (cx, cy, w, h, obj, cls, score) in zip(out, rows):
        r[:5] = cx, cy, w, h, obj
        r[5 + cls] = score
        r[KP:] = np.arange(34) + cls  # recognisable keypoints
    return out


def test_detect_filters_by_confidence_and_class_and_suppresses_per_class():
    d = decoded_rows((50, 50, 20, 20, 0.9, 0, 0.9),    # person, conf .81
                     (51, 51, 20, 20, 0.9, 0, 0.8),    # same person, lower: suppressed
                     (50, 50, 20, 20, 0.9, 3, 0.95),   # same box, keypoint class 3: kept
                     (90, 90, 10, 10, 0.6, 0, 0.9),    # conf .54 < .6: dropped
                     (10, 10, 4, 4, 0.4, 0, 1.0))      # objectness .4 < .6: dropped
    persons = detect(d, 0.6, 0.45, [0])
    assert persons.shape == (1, 40)
    np.testing.assert_allclose(persons[0, :6], [40, 40, 60, 60, 0.81, 0], rtol=1e-6)
    np.testing.assert_array_equal(persons[0, 6:], np.arange(34))
    kps = detect(d, 0.6, 0.45, range(1, NUM_CLASSES))
    assert kps[:, 5].tolist() == [3] and kps[0, 4] == pytest.approx(0.855)
    both = detect(d, 0.6, 0.45, range(NUM_CLASSES))
    assert both[:, 5].tolist() == [3, 0]  # best first, across classes
    assert detect(d, 0.99, 0.45, [0]).shape == (0, 40)


def poses_at(*centres):
    """(P, 17, 3) poses whose keypoint k sits at centre + (k, 0), confidence 0."""
    p = np.zeros((len(centres), 17, 3), np.float32)
    for pose, (x, y) in zip(p, centres):
        pose[:, 0] = x + np.arange(17)
        pose[:, 1] = y
    return p


def kp_det(x, y, conf, kp):
    return [x - 2, y - 2, x + 2, y + 2, conf, kp + 1]


def test_fusion_overwrites_the_nearest_pose_when_close_and_more_confident():
    poses = poses_at((100, 100), (300, 100))
    dets = np.array([kp_det(105, 103, 0.8, 5),    # near pose 0's kp 5 (105, 100): taken
                     kp_det(106, 100, 0.6, 5),    # same keypoint, less confident: ignored
                     kp_det(330, 100, 0.9, 0),    # pose 1's kp 0 is 30 px away: > tol 25
                     kp_det(316, 120, 0.7, 16),   # pose 1's kp 16 (316, 100), 20 px: taken
                     kp_det(200, 100, 0.9, 2)])   # 98 px from either: ignored
    out = fuse_keypoints(poses, np.array([0.9, 0.9]), dets, 0.2, 25)
    np.testing.assert_allclose(out[0, 5], [105, 103, 0.8])
    np.testing.assert_allclose(out[1, 16], [316, 120, 0.7])
    changed = np.argwhere((out != poses).any(axis=2)).tolist()
    assert changed == [[0, 5], [1, 16]]
    assert (poses[:, :, 2] == 0).all()  # the input is not modified


def test_fusion_skips_weak_persons_and_checks_classes():
    poses = poses_at((100, 100), (110, 100))
    dets = np.array([kp_det(111, 100, 0.8, 0)])   # nearest is pose 1 (110, 100)...
    out = fuse_keypoints(poses, np.array([0.9, 0.1]), dets, 0.2, 25)
    np.testing.assert_allclose(out[0, 0], [111, 100, 0.8])  # ...but it is too weak
    assert (out[1] == poses[1]).all()
    untouched = fuse_keypoints(poses, np.array([0.1, 0.1]), dets, 0.2, 25)
    assert (untouched == poses).all()
    with pytest.raises(ValueError, match='class 18'):
        fuse_keypoints(poses, np.array([0.9, 0.9]), np.array([kp_det(1, 1, 0.9, 17)]), 0.2, 25)


def test_postprocess_end_to_end_maps_to_the_original_frame():
    # A 100 x 200 frame letterboxed (auto off) into 128 x 128: scale .64, 32 rows above.
    box = Letterboxed(np.zeros((128, 128, 3), np.uint8), (0.64, 0.64), (0, 32), (100, 200))
    lay = head_layout((128, 128), ANCHORS)
    raw = np.full((lay.rows, NUM_OUTPUTS), -20.0, np.float32)
    p = row_index((128, 128), 0, 0, 8, 8)   # the person: stride 8, anchor (19, 27), cell 8, 8
    raw[p, :4] = 0.0                         # centre (68, 68), size 19 x 27
    raw[p, 4] = raw[p, 5] = 5.0              # objectness and person class .9933
    raw[p, KP:] = 0.0                        # every keypoint at 8 * 8 = (64, 64)...
    raw[p, KP] = LOGIT_075                   # ...but the nose x at 64 + 19 = 83
    k = row_index((128, 128), 0, 0, 8, 10)   # a nose keypoint object centred at (84, 68)
    raw[k, :4] = 0.0
    raw[k, 4] = raw[k, 6] = 3.0              # conf .9526 ** 2 = .9074
    person = sig(5.0) ** 2
    kconf = sig(3.0) ** 2

    poses = postprocess(raw[None], lay, box)
    assert len(poses) == 1 and isinstance(poses[0], Pose)
    pose = poses[0]
    assert pose.score == pytest.approx(person, rel=1e-5)
    np.testing.assert_allclose(pose.bbox, [58.5 / 0.64, 22.5 / 0.64, 77.5 / 0.64, 49.5 / 0.64],
                               rtol=1e-5)
    np.testing.assert_allclose(pose.keypoints[0], [84 / 0.64, 36 / 0.64, kconf], rtol=1e-5)
    np.testing.assert_allclose(pose.keypoints[1:, :2], np.tile([100.0, 50.0], (16, 1)),
                               rtol=1e-5)
    np.testing.assert_allclose(pose.keypoints[1:, 2], person, rtol=1e-5)

    alone = postprocess(raw, lay, box, PostprocessParams(use_kp_dets=False))[0]
    np.testing.assert_allclose(alone.keypoints[0], [83 / 0.64, 50.0, person], rtol=1e-5)
    far = postprocess(raw, lay, box, PostprocessParams(overwrite_tol=5))[0]
    assert far.keypoints[0, 0] == pytest.approx(83 / 0.64)
    assert postprocess(raw, lay, box, PostprocessParams(conf_thres=0.99)) == []


def test_params_are_checked():
    with pytest.raises(ValueError, match='conf_thres must lie'):
        PostprocessParams(conf_thres=1.5)
    assert PostprocessParams.image_defaults().conf_thres == 0.7
