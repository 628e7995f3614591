# Copyright 2026 rrto_ros authors. Apache-2.0.
"""PoseEstimator on CPU torch: seeded random weights reported loudly, frames in, poses out."""

from __future__ import annotations

import logging

import numpy as np
import pytest

torch = pytest.importorskip('torch')

from rrto_ros.tracking.pose_estimator import PoseEstimator  # noqa: E402
from rrto_ros.tracking.poses import Pose  # noqa: E402


@pytest.fixture(scope='module')
def est():
    # Random weights with thresholds 0 and a nudged head (anchor 0 says "person", anchor 1
    # "nose") give persons and keypoint objects, which exercises the whole path.
    e = PoseEstimator('s', img_size=64, device='cpu', conf_thres=0.0, conf_thres_kp=0.0,
                      conf_thres_kp_person=0.0, overwrite_tol=1e9)
    with torch.no_grad():
        for conv in e.model.head.convs:
            conv.bias[0 * 57 + 5] += 5.0
            conv.bias[1 * 57 + 6] += 5.0
    return e


def test_random_init_is_seeded_and_loud(caplog):
    with caplog.at_level(logging.WARNING, logger='rrto_ros.tracking.pose_estimator'):
        a = PoseEstimator('s', img_size=64, device='cpu')
    assert a.random_init and 'RANDOM' in a.weights_description
    msgs = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(msgs) == 1 and 'MEANINGLESS' in msgs[0] and 'rrto-kapao-convert' in msgs[0]
    b = PoseEstimator('s', img_size=64, device='cpu')
    c = PoseEstimator('s', img_size=64, device='cpu', seed=1)
    wa, wb, wc = (e.model.head.convs[0].weight for e in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_estimate_gives_poses_in_the_frames_pixels(est):
    rgb = np.random.default_rng(1).integers(0, 256, (48, 80, 3), dtype=np.uint8)
    poses = est.estimate(rgb)
    assert poses and all(isinstance(p, Pose) for p in poses)
    assert len(poses) <= est.params.max_det
    for p in poses:
        x1, y1, x2, y2 = p.bbox
        assert 0 <= x1 <= x2 <= 80 and 0 <= y1 <= y2 <= 48
        assert p.keypoints.shape == (17, 3) and (p.keypoints[:, 2] > 0).all()
    # Some nose is a fused keypoint object (its confidence is not the person's score).
    assert any(p.keypoints[0, 2] != p.score for p in poses)
    scores = [p.score for p in poses]
    assert scores == sorted(scores, reverse=True)
    # The letterboxed input of this frame is 64 x 64 (auto pads to the stride multiple).
    assert list(est._layouts) == [(64, 64)]


def test_bad_arguments_are_refused_by_name(est):
    with pytest.raises(ValueError, match='uint8 RGB'):
        est.estimate(np.zeros((48, 80, 3), np.float32))
    with pytest.raises(ValueError, match='multiple of 64'):
        PoseEstimator('s', img_size=600, device='cpu')
    with pytest.raises(ValueError, match='unknown KAPAO option'):
        PoseEstimator('s', img_size=64, device='cpu', conf_thresh=0.3)
    with pytest.raises(ValueError, match='unknown KAPAO size'):
        PoseEstimator('xl', img_size=64, device='cpu')


@pytest.mark.skipif(torch.cuda.is_available(), reason='needs a machine without CUDA')
def test_a_missing_gpu_is_reported_with_what_to_do():
    with pytest.raises(RuntimeError, match="device='cpu'"):
        PoseEstimator('s', img_size=64, device='cuda')
