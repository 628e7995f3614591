# Copyright 2026 rrto_ros authors. Apache-2.0.
"""KAPAO pose estimation of one RGB frame: letterbox, the network, post-processing.

The GPU part is plain PyTorch, nothing CUDA-specific beyond ``.to(device)``: the input is
uploaded, the network runs in eval mode under ``torch.no_grad()``, and one ``.cpu()`` brings
the raw head output back; decode, NMS and keypoint fusion are numpy. This is the program
that runs unmodified under the rrto interposer.
"""

from __future__ import annotations

import logging
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch

from rrto_ros.tracking.checkpoint import load_weights
from rrto_ros.tracking.kapao_decode import head_layout, HeadLayout, postprocess, \
    PostprocessParams
from rrto_ros.tracking.kapao_model import build_kapao, fuse_conv_bn, KapaoNet
from rrto_ros.tracking.letterbox import letterbox, MAX_STRIDE, to_input
from rrto_ros.tracking.poses import Pose

LOG = logging.getLogger(__name__)
RANDOM_SEED = 0


class PoseEstimator:
    """KAPAO-``size`` ('s', 'm', 'l') at ``img_size`` (a multiple of 64) on ``device``.

    ``weights``: our converted weights file (``rrto-kapao-convert``) or a KAPAO checkpoint;
    None gives seeded random weights (the same on every run), logged as a warning, and
    ``random_init`` is True. The keyword thresholds are ``PostprocessParams``'s (KAPAO's
    video-demo defaults); ``auto`` letterboxes to the smallest stride multiple (KAPAO's
    inference) instead of the full ``img_size`` square.
    """

    def __init__(self, size: str = 's', weights: Optional[str] = None, img_size: int = 640,
                 device: str = 'cuda', conf_thres: float = 0.5, iou_thres: float = 0.45,
                 auto: bool = True, seed: int = RANDOM_SEED, **kapao_defaults: float) -> None:
        if img_size <= 0 or img_size % MAX_STRIDE:
            raise ValueError(f'img_size must be a positive multiple of {MAX_STRIDE} '
                             f'(e.g. 640, 1024, 1280), got {img_size}')
        try:
            self.params = PostprocessParams(conf_thres=conf_thres, iou_thres=iou_thres,
                                            **kapao_defaults)
        except TypeError as e:
            raise ValueError(f'unknown KAPAO option ({e}); known: conf_thres_kp, '
                             f'iou_thres_kp, conf_thres_kp_person, overwrite_tol, '
                             f'use_kp_dets, max_det') from e
        self.img_size = img_size
        self.auto = auto
        self.size = size
        self.random_init = weights is None
        if weights is None:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                model = build_kapao(size)
            self.weights_description = f'RANDOM weights (KAPAO-{size.upper()}, seed {seed})'
            LOG.warning('KAPAO-%s runs with RANDOM weights (seed %d): its poses are MEANINGLESS '
                        'until you give weights; convert your KAPAO checkpoint with '
                        '`rrto-kapao-convert kapao_%s_coco.pt kapao_%s.pt` and pass that file '
                        'as the weights', size.upper(), seed, size, size)
        else:
            w = load_weights(weights)
            if w.size != size:
                raise ValueError(f'{weights} holds KAPAO-{w.size.upper()} weights but '
                                 f'size={size!r} was asked for; set size={w.size!r}')
            model = build_kapao(size)
            model.load_state_dict(w.state_dict)
            for m in model.modules():
                if isinstance(m, torch.nn.BatchNorm2d):
                    m.eps = w.bn_eps
            self.weights_description = w.description
            LOG.info('KAPAO-%s weights: %s', size.upper(), w.description)
        model.eval()
        model = fuse_conv_bn(model, inplace=True)
        self.anchors = model.head.anchors.detach().cpu().numpy().copy()
        self.strides = tuple(model.strides)
        self.device = torch.device(device)
        try:
            self.model: KapaoNet = model.to(self.device)
        except (RuntimeError, AssertionError) as e:
            raise RuntimeError(f'cannot put KAPAO on device {device!r} ({e}); use '
                               f"device='cpu' or a machine with a CUDA GPU (or the rrto "
                               f'interposer)') from e
        self._layouts: Dict[Tuple[int, int], HeadLayout] = {}

    def estimate(self, rgb: np.ndarray) -> List[Pose]:
        """Poses in ``rgb`` (H x W x 3 uint8, RGB), in its pixel coordinates."""
        rgb = np.asarray(rgb)
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f'estimate needs an H x W x 3 uint8 RGB image, got {rgb.dtype} '
                             f'of shape {rgb.shape}')
        box = letterbox(rgb, self.img_size, stride=MAX_STRIDE, auto=self.auto)
        raw = self.run_network(to_input(box.image))
        return postprocess(raw, self.layout(box.input_hw), box, self.params)

    def run_network(self, x: np.ndarray) -> np.ndarray:
        """The network alone: (1, 3, H, W) float32 input -> raw (1, N, 57) head output."""
        with torch.no_grad():
            y = self.model(torch.from_numpy(x).to(self.device))
            return y.cpu().numpy()

    def layout(self, input_hw: Tuple[int, int]) -> HeadLayout:
        if input_hw not in self._layouts:
            self._layouts[input_hw] = head_layout(input_hw, self.anchors, self.strides)
        return self._layouts[input_hw]
