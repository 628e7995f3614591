# Copyright 2026 rrto_ros authors. Apache-2.0.
"""``sensor_msgs/Image`` data <-> numpy, without ROS or cv_bridge (which is not on PyPI).

Color: rgb8, bgr8, rgba8, bgra8 (decoded to (H, W, 3) RGB uint8). Depth: 16UC1 / mono16
(uint16, millimetres by convention) and 32FC1 (float32 metres, NaN: no measurement).
"""

from __future__ import annotations

from typing import Tuple

import numpy as np

COLOR_ENCODINGS = ('rgb8', 'bgr8', 'rgba8', 'bgra8')
DEPTH_ENCODINGS = ('16UC1', 'mono16', '32FC1')
_LAYOUT = {'rgb8': ('u1', 3), 'bgr8': ('u1', 3), 'rgba8': ('u1', 4), 'bgra8': ('u1', 4),
           '16UC1': ('u2', 1), 'mono16': ('u2', 1), '32FC1': ('f4', 1)}


def decode(encoding: str, height: int, width: int, step: int, data: bytes,
           is_bigendian: bool = False) -> np.ndarray:
    """The image as an array: (H, W, 3) RGB uint8 for color, (H, W) for depth."""
    if encoding not in _LAYOUT:
        raise ValueError(f'image encoding {encoding!r} is not supported (color: '
                         f'{", ".join(COLOR_ENCODINGS)}; depth: {", ".join(DEPTH_ENCODINGS)})')
    kind, channels = _LAYOUT[encoding]
    dtype = np.dtype(('>' if is_bigendian else '<') + kind)
    row = width * channels * dtype.itemsize
    if step < row or len(data) < step * height:
        raise ValueError(f'{encoding} image {width}x{height}: step {step} and {len(data)} '
                         f'bytes are too small (a row needs {row} bytes)')
    rows = np.frombuffer(bytes(data[:step * height]), np.uint8).reshape(height, step)[:, :row]
    img = np.ascontiguousarray(rows).view(dtype).reshape(height, width, channels)
    img = img.astype(dtype.newbyteorder('='), copy=False)
    if channels == 1:
        return img[:, :, 0]
    if encoding.startswith('bgr'):
        img = img[:, :, 2::-1]
    return np.ascontiguousarray(img[:, :, :3])


def encode(img: np.ndarray) -> Tuple[str, int, int, int, bytes]:
    """(encoding, height, width, step, data) of an RGB uint8, uint16 or float32 image."""
    img = np.ascontiguousarray(img)
    if img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3:
        encoding = 'rgb8'
    elif img.dtype == np.uint16 and img.ndim == 2:
        encoding = '16UC1'
    elif img.dtype == np.float32 and img.ndim == 2:
        encoding = '32FC1'
    else:
        raise ValueError(f'cannot encode an image of {img.dtype} {img.shape}: use (H, W, 3) '
                         'uint8, (H, W) uint16 or (H, W) float32')
    h, w = img.shape[:2]
    little = img.astype(img.dtype.newbyteorder('<'), copy=False)
    return encoding, h, w, img.strides[0], little.tobytes()
