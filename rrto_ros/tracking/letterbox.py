# Copyright 2026 rrto_ros authors. Apache-2.0.
"""Letterboxing a camera frame into KAPAO's network input, and mapping points back.

KAPAO's inference (its ``LoadImages``) resizes the frame so that its longer side fits the
input size (scaling up small frames too), keeps the aspect ratio, and pads with grey 114 to
the smallest multiple of the network's largest stride (64 for the P6 models) when ``auto``
is on, or to the full square input size when it is off. Pure numpy: no OpenCV needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple, Union

import numpy as np

PAD_VALUE = 114
MAX_STRIDE = 64


@dataclass(frozen=True)
class Letterboxed:
    """A letterboxed image and what maps its pixels back to the original frame.

    ``scale`` is (sx, sy), the resized size over the original size per axis (equal up to
    rounding); ``pad`` is (left, top) in pixels of the letterboxed image.
    """

    image: np.ndarray
    scale: Tuple[float, float]
    pad: Tuple[int, int]
    original_hw: Tuple[int, int]

    @property
    def input_hw(self) -> Tuple[int, int]:
        return int(self.image.shape[0]), int(self.image.shape[1])

    def to_original(self, xy: np.ndarray) -> np.ndarray:
        """Map points (..., 2k) of x, y pairs in letterboxed pixels to original pixels."""
        return self._map(xy, forward=False)

    def to_letterboxed(self, xy: np.ndarray) -> np.ndarray:
        """Map points (..., 2k) of x, y pairs in original pixels to letterboxed pixels."""
        return self._map(xy, forward=True)

    def _map(self, xy: np.ndarray, forward: bool) -> np.ndarray:
        a = np.array(xy, dtype=np.float64, copy=True)
        if a.shape[-1] % 2:
            raise ValueError(f'points must be x, y pairs along the last axis, got shape {a.shape}')
        for axis, (s, p) in enumerate(zip(self.scale, self.pad)):
            if forward:
                a[..., axis::2] = a[..., axis::2] * s + p
            else:
                a[..., axis::2] = (a[..., axis::2] - p) / s
        return a


def letterbox(img: np.ndarray, new_shape: Union[int, Tuple[int, int]] = 640,
              stride: int = MAX_STRIDE, auto: bool = True, scaleup: bool = True,
              pad_value: int = PAD_VALUE) -> Letterboxed:
    """Resize ``img`` (H, W, C uint8) into ``new_shape`` (h, w, or one int for a square)
    keeping the aspect ratio, then pad with ``pad_value``; see the module docstring."""
    img = np.asarray(img)
    if img.ndim != 3 or img.shape[0] < 1 or img.shape[1] < 1:
        raise ValueError(f'letterbox needs an H x W x C image, got an array of shape {img.shape}')
    if img.dtype != np.uint8:
        raise ValueError(f'letterbox needs a uint8 image, got {img.dtype}; convert it first')
    new_h, new_w = (new_shape, new_shape) if isinstance(new_shape, int) else new_shape
    if new_h <= 0 or new_w <= 0 or new_h % stride or new_w % stride:
        raise ValueError(f'the input size {new_h}x{new_w} must be a positive multiple of the '
                         f'model stride {stride} (e.g. 640, 1024 or 1280)')
    h, w = img.shape[:2]
    r = min(new_h / h, new_w / w)
    if not scaleup:
        r = min(r, 1.0)
    unpad_w, unpad_h = int(round(w * r)), int(round(h * r))
    dw, dh = new_w - unpad_w, new_h - unpad_h
    if auto:
        dw, dh = dw % stride, dh % stride
    if (unpad_h, unpad_w) != (h, w):
        img = resize_bilinear(img, unpad_h, unpad_w)
    # Split the padding as evenly as possible, the odd pixel going to the right/bottom.
    left, top = dw // 2, dh // 2
    out = np.full((unpad_h + dh, unpad_w + dw, img.shape[2]), pad_value, dtype=np.uint8)
    out[top:top + unpad_h, left:left + unpad_w] = img
    return Letterboxed(out, (unpad_w / w, unpad_h / h), (left, top), (h, w))


def resize_bilinear(img: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Bilinear resize of an H x W x C uint8 image with pixel centres at +0.5 (the
    convention of OpenCV's INTER_LINEAR), separable: rows first, then columns."""
    h, w = img.shape[:2]
    src = img.astype(np.float32)
    y0, y1, wy = _taps(h, out_h)
    rows = src[y1]
    rows -= src[y0]
    rows *= wy[:, None, None]
    rows += src[y0]                       # (1 - wy) * top + wy * bottom
    x0, x1, wx = _taps(w, out_w)
    out = rows[:, x1]
    out -= rows[:, x0]
    out *= wx[None, :, None]
    out += rows[:, x0]
    out += 0.5                            # round half up; values stay within [0, 255]
    return out.astype(np.uint8)


def _taps(n_in: int, n_out: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    pos = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
    pos = np.clip(pos, 0.0, n_in - 1)
    i0 = np.floor(pos).astype(np.int64)
    i1 = np.minimum(i0 + 1, n_in - 1)
    return i0, i1, (pos - i0).astype(np.float32)


def to_input(img: np.ndarray) -> np.ndarray:
    """An H x W x 3 uint8 RGB image as the network's input: (1, 3, H, W) float32 in [0, 1]."""
    img = np.asarray(img)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError(f'to_input needs an H x W x 3 uint8 RGB image, got {img.dtype} '
                         f'of shape {img.shape}')
    x = np.ascontiguousarray(img.transpose(2, 0, 1)[None], dtype=np.float32)
    x /= 255.0
    return x
