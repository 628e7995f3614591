# Copyright 2026 rrto_ros authors. Apache-2.0.
"""KAPAO's post-processing in numpy: head decode, NMS and the fusion of keypoint objects
into 17-keypoint poses.

The network's output (see ``kapao_model``) is one row of ``NUM_OUTPUTS`` = 57 raw values
(before the sigmoid) per anchor and grid cell, levels P3..P6 (strides 8, 16, 32, 64) one
after the other, each ordered anchor, grid row, grid column. A row is
``[x, y, w, h, objectness, 18 class scores, 34 keypoint offsets]``: class 0 is a person
("pose object", whose 17 keypoints are the offsets), classes 1..17 are "keypoint objects",
small boxes around one COCO keypoint each. Decoding (KAPAO's formulas), with ``s`` the sigmoid,
``(gx, gy)`` the grid cell, ``stride`` the level's stride and ``(aw, ah)`` the anchor in pixels:

- centre ``((s*2 - 0.5) + g) * stride``, size ``(s*2)**2 * a``;
- keypoint ``(s*4 - 2) * a + g * stride``, per x and y;
- confidence of class c: ``objectness * class_c``.

Then class-separated NMS of the person class and of the keypoint classes, and each keypoint
object overwrites the matching keypoint of the nearest pose when it is confident enough
and close enough (KAPAO's ``post_process_batch``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from rrto_ros.tracking.letterbox import Letterboxed
from rrto_ros.tracking.poses import NUM_KEYPOINTS, Pose

STRIDES: Tuple[int, ...] = (8, 16, 32, 64)
NUM_ANCHORS = 3
NUM_CLASSES = 1 + NUM_KEYPOINTS           # person + 17 keypoint objects
NUM_COORDS = 2 * NUM_KEYPOINTS            # x, y offset of each keypoint of a pose object
NUM_OUTPUTS = 5 + NUM_CLASSES + NUM_COORDS  # 57
# The P6 anchors (w, h in pixels) of KAPAO's yolov5*6 configs; a converted checkpoint
# carries its own (possibly auto-anchored) ones, which take precedence.
DEFAULT_ANCHORS: Tuple[Tuple[Tuple[int, int], ...], ...] = (
    ((19, 27), (44, 40), (38, 94)),
    ((96, 68), (86, 152), (180, 137)),
    ((140, 301), (303, 264), (238, 542)),
    ((436, 615), (739, 380), (925, 792)),
)
MAX_WH = 4096      # class offset of the batched NMS (pixels)
MAX_NMS = 30000    # at most this many boxes go into one NMS
MAX_DET = 300      # at most this many detections come out of one NMS


@dataclass(frozen=True)
class PostprocessParams:
    """KAPAO's inference thresholds. The defaults are its video demo's (a camera stream);
    ``image_defaults()`` gives its still-image demo's."""

    conf_thres: float = 0.5            # person (pose object) confidence
    iou_thres: float = 0.45            # person NMS IoU
    conf_thres_kp: float = 0.5         # keypoint object confidence
    iou_thres_kp: float = 0.45         # keypoint object NMS IoU
    conf_thres_kp_person: float = 0.2  # only persons above this take keypoint objects
    overwrite_tol: float = 50.0        # max distance (original pixels) of a fused keypoint
    use_kp_dets: bool = True           # fuse keypoint objects at all
    max_det: int = MAX_DET

    @classmethod
    def image_defaults(cls) -> 'PostprocessParams':
        return cls(conf_thres=0.7, overwrite_tol=25.0)

    def __post_init__(self) -> None:
        for name in ('conf_thres', 'iou_thres', 'conf_thres_kp', 'iou_thres_kp',
                     'conf_thres_kp_person'):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f'{name} must lie in [0, 1], got {v}')
        if self.overwrite_tol < 0 or self.max_det < 1:
            raise ValueError(f'overwrite_tol must be >= 0 and max_det >= 1, got '
                             f'{self.overwrite_tol} and {self.max_det}')


@dataclass(frozen=True)
class HeadLayout:
    """Per output row: its grid cell, stride and anchor (pixels)."""

    gx: np.ndarray
    gy: np.ndarray
    stride: np.ndarray
    anchor_w: np.ndarray
    anchor_h: np.ndarray

    @property
    def rows(self) -> int:
        return int(self.gx.shape[0])


def level_shapes(input_hw: Tuple[int, int],
                 strides: Sequence[int] = STRIDES) -> List[Tuple[int, int]]:
    """The (ny, nx) grid of each level for an input of ``input_hw`` pixels."""
    h, w = input_hw
    if h % max(strides) or w % max(strides):
        raise ValueError(f'the input {h}x{w} is not a multiple of the largest stride '
                         f'{max(strides)}; letterbox it first')
    return [(h // s, w // s) for s in strides]


def head_layout(input_hw: Tuple[int, int], anchors: np.ndarray,
                strides: Sequence[int] = STRIDES) -> HeadLayout:
    """Which grid cell, stride and anchor each row of the head's output belongs to.

    ``anchors`` is (levels, anchors, 2) of w, h in pixels."""
    anchors = np.asarray(anchors, dtype=np.float32)
    if anchors.ndim != 3 or anchors.shape[0] != len(strides) or anchors.shape[2] != 2:
        raise ValueError(f'anchors must be ({len(strides)}, anchors, 2) pixels, '
                         f'got shape {anchors.shape}')
    parts: Dict[str, List[np.ndarray]] = {k: [] for k in ('gx', 'gy', 's', 'aw', 'ah')}
    for level, ((ny, nx), s) in enumerate(zip(level_shapes(input_hw, strides), strides)):
        na = anchors.shape[1]
        gy, gx = np.meshgrid(np.arange(ny, dtype=np.float32), np.arange(nx, dtype=np.float32),
                             indexing='ij')
        n = ny * nx
        parts['gx'].append(np.tile(gx.reshape(-1), na))
        parts['gy'].append(np.tile(gy.reshape(-1), na))
        parts['s'].append(np.full(na * n, s, dtype=np.float32))
        parts['aw'].append(np.repeat(anchors[level, :, 0], n))
        parts['ah'].append(np.repeat(anchors[level, :, 1], n))
    c = {k: np.concatenate(v) for k, v in parts.items()}
    return HeadLayout(c['gx'], c['gy'], c['s'], c['aw'], c['ah'])


def sigmoid(x: np.ndarray) -> np.ndarray:
    # exp of a float32 overflows to inf for x < -88, which gives the right limit 0.
    with np.errstate(over='ignore'):
        return 1.0 / (1.0 + np.exp(-x))


def decode(raw: np.ndarray, layout: HeadLayout,
           rows: Optional[np.ndarray] = None) -> np.ndarray:
    """Decode raw head rows (N, 57) into ``[cx, cy, w, h, obj, 18 cls, 34 kp]`` with boxes
    and keypoints in input pixels. ``rows`` picks a subset of rows (all when None)."""
    raw = _rows(raw, layout)
    idx = np.arange(layout.rows) if rows is None else np.asarray(rows)
    y = sigmoid(raw[idx].astype(np.float32))
    gx, gy, s = layout.gx[idx], layout.gy[idx], layout.stride[idx]
    aw, ah = layout.anchor_w[idx], layout.anchor_h[idx]
    y[:, 0] = (y[:, 0] * 2.0 - 0.5 + gx) * s
    y[:, 1] = (y[:, 1] * 2.0 - 0.5 + gy) * s
    y[:, 2] = (y[:, 2] * 2.0) ** 2 * aw
    y[:, 3] = (y[:, 3] * 2.0) ** 2 * ah
    k = 5 + NUM_CLASSES
    y[:, k::2] = (y[:, k::2] * 4.0 - 2.0) * aw[:, None] + (gx * s)[:, None]
    y[:, k + 1::2] = (y[:, k + 1::2] * 4.0 - 2.0) * ah[:, None] + (gy * s)[:, None]
    return y


def _rows(raw: np.ndarray, layout: HeadLayout) -> np.ndarray:
    raw = np.asarray(raw)
    if raw.ndim == 3 and raw.shape[0] == 1:
        raw = raw[0]
    if raw.ndim != 2 or raw.shape != (layout.rows, NUM_OUTPUTS):
        raise ValueError(f'the head output must be ({layout.rows}, {NUM_OUTPUTS}) for this '
                         f'input size, got shape {raw.shape}: wrong model or input size?')
    return raw


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one x1, y1, x2, y2 box with each of ``boxes`` (M, 4)."""
    x1 = np.maximum(box[0], boxes[:, 0])
    y1 = np.maximum(box[1], boxes[:, 1])
    x2 = np.minimum(box[2], boxes[:, 2])
    y2 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = area + areas - inter
    with np.errstate(divide='ignore', invalid='ignore'):
        return np.where(union > 0, inter / union, 0.0)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_thres: float) -> np.ndarray:
    """Greedy NMS: indices of the kept boxes, highest score first; a box is dropped when its
    IoU with a kept, higher-scoring box exceeds ``iou_thres`` (torchvision's rule)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if boxes.shape[0] != scores.shape[0]:
        raise ValueError(f'{boxes.shape[0]} boxes but {scores.shape[0]} scores')
    order = np.argsort(-scores, kind='stable')
    keep: List[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        order = rest[box_iou(boxes[i], boxes[rest]) <= iou_thres]
    return np.asarray(keep, dtype=np.int64)


def xywh_to_xyxy(xywh: np.ndarray) -> np.ndarray:
    out = np.empty_like(xywh)
    out[:, :2] = xywh[:, :2] - xywh[:, 2:4] / 2
    out[:, 2:4] = xywh[:, :2] + xywh[:, 2:4] / 2
    return out


def detect(decoded: np.ndarray, conf_thres: float, iou_thres: float,
           classes: Sequence[int], max_det: int = MAX_DET) -> np.ndarray:
    """KAPAO's keypoint-aware NMS over decoded rows: rows with objectness and best-class
    confidence above ``conf_thres`` whose best class is in ``classes``, NMS per class.

    Returns (n, 6 + 34) rows ``[x1, y1, x2, y2, conf, cls, 34 kp]``, best first."""
    x = decoded[decoded[:, 4] > conf_thres]
    if not x.shape[0]:
        return np.zeros((0, 6 + NUM_COORDS), dtype=np.float32)
    cls_conf = x[:, 5:5 + NUM_CLASSES] * x[:, 4:5]
    j = np.argmax(cls_conf, axis=1)
    conf = cls_conf[np.arange(x.shape[0]), j]
    det = np.concatenate([xywh_to_xyxy(x[:, :4]), conf[:, None], j[:, None].astype(np.float32),
                          x[:, -NUM_COORDS:]], axis=1)
    det = det[(conf > conf_thres) & np.isin(j, np.asarray(classes))]
    if det.shape[0] > MAX_NMS:
        det = det[np.argsort(-det[:, 4], kind='stable')[:MAX_NMS]]
    keep = nms(det[:, :4] + det[:, 5:6] * MAX_WH, det[:, 4], iou_thres)[:max_det]
    return det[keep].astype(np.float32)


def fuse_keypoints(poses: np.ndarray, person_scores: np.ndarray, kp_dets: np.ndarray,
                   conf_thres_kp_person: float, overwrite_tol: float) -> np.ndarray:
    """KAPAO's fusion: each keypoint object (rows ``[x1, y1, x2, y2, conf, cls]``, class
    k+1 for keypoint k, in order) overwrites keypoint k of the nearest pose among those
    whose score exceeds ``conf_thres_kp_person`` if its confidence beats that keypoint's
    current one and its box centre lies within ``overwrite_tol`` of it.

    ``poses`` is (P, 17, 3) of x, y, conf; returns a fused copy."""
    poses = np.array(poses, dtype=np.float32, copy=True)
    eligible = np.flatnonzero(np.asarray(person_scores) > conf_thres_kp_person)
    if not eligible.size:
        return poses
    for x1, y1, x2, y2, conf, cls in np.asarray(kp_dets)[:, :6]:
        k = int(cls) - 1
        if not 0 <= k < NUM_KEYPOINTS:
            raise ValueError(f'a keypoint object has class {int(cls)}, expected '
                             f'1..{NUM_KEYPOINTS}')
        c = np.array([(x1 + x2) / 2, (y1 + y2) / 2], dtype=np.float32)
        candidates = poses[eligible, k]
        dist = np.linalg.norm(candidates[:, :2] - c, axis=1)
        m = int(np.argmin(dist))
        if conf > candidates[m, 2] and dist[m] < overwrite_tol:
            poses[eligible[m], k] = (c[0], c[1], conf)
    return poses


def postprocess(raw: np.ndarray, layout: HeadLayout, box: Letterboxed,
                params: PostprocessParams = PostprocessParams()) -> List[Pose]:
    """The head's raw output for one letterboxed frame -> poses in original pixels.

    A keypoint's confidence is that of the keypoint object fused into it; keypoints that
    only the pose object predicted get the person's score (KAPAO leaves 0 there, but for
    ``Pose`` 0 means "not seen"). Boxes are clipped to the image, keypoints are not (a
    predicted keypoint may lie outside the frame)."""
    raw = _rows(raw, layout)
    low = min(params.conf_thres, params.conf_thres_kp if params.use_kp_dets else 1.0)
    cand = np.flatnonzero(sigmoid(raw[:, 4].astype(np.float32)) > low)
    decoded = decode(raw, layout, cand)
    persons = detect(decoded, params.conf_thres, params.iou_thres, [0], params.max_det)
    if not persons.shape[0]:
        return []
    h0, w0 = box.original_hw
    bboxes = box.to_original(persons[:, :4])
    bboxes[:, 0::2] = bboxes[:, 0::2].clip(0, w0)
    bboxes[:, 1::2] = bboxes[:, 1::2].clip(0, h0)
    scores = persons[:, 4]
    kps = box.to_original(persons[:, 6:]).reshape(-1, NUM_KEYPOINTS, 2)
    poses = np.concatenate([kps, np.zeros(kps.shape[:2] + (1,))], axis=2).astype(np.float32)
    if params.use_kp_dets:
        kp = detect(decoded, params.conf_thres_kp, params.iou_thres_kp,
                    range(1, NUM_CLASSES), params.max_det)[:, :6]
        if kp.shape[0]:
            kp[:, :4] = box.to_original(kp[:, :4])
            poses = fuse_keypoints(poses, scores, kp, params.conf_thres_kp_person,
                                   params.overwrite_tol)
    out = []
    for p, s, b in zip(poses, scores, bboxes):
        p[:, 2] = np.where(p[:, 2] > 0, p[:, 2], s)
        out.append(Pose(p, float(s), tuple(float(v) for v in b)))
    return out
