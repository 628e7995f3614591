# Copyright 2026 rrto_ros authors. Apache-2.0.
"""Letterboxing into KAPAO's input and back (numpy only), on hand-made frames."""

from __future__ import annotations

import numpy as np
import pytest

from rrto_ros.tracking.letterbox import letterbox, Letterboxed, resize_bilinear, to_input


def frame(h: int, w: int) -> np.ndarray:
    rng = np.random.default_rng(h * 1000 + w)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_vga_at_640_pads_to_the_next_multiple_of_64_only():
    img = frame(480, 640)
    lb = letterbox(img, 640)
    assert lb.image.shape == (512, 640, 3)
    assert lb.pad == (0, 16) and lb.scale == (1.0, 1.0) and lb.original_hw == (480, 640)
    assert (lb.image[:16] == 114).all() and (lb.image[496:] == 114).all()
    np.testing.assert_array_equal(lb.image[16:496], img)


def test_auto_off_pads_to_the_full_square():
    lb = letterbox(frame(480, 640), 640, auto=False)
    assert lb.image.shape == (640, 640, 3) and lb.pad == (0, 80)
    assert (lb.image[:80] == 114).all() and (lb.image[560:] == 114).all()


def test_small_frames_scale_up_unless_told_not_to():
    lb = letterbox(frame(240, 320), 640)
    assert lb.image.shape == (512, 640, 3) and lb.scale == (2.0, 2.0) and lb.pad == (0, 16)
    lb = letterbox(frame(240, 320), 640, scaleup=False)
    assert lb.image.shape == (256, 320, 3) and lb.scale == (1.0, 1.0) and lb.pad == (0, 8)


def test_odd_padding_goes_to_the_bottom_and_the_scale_is_the_real_one():
    lb = letterbox(frame(37, 100), 128, auto=False)
    assert lb.image.shape == (128, 128, 3)
    # 100 -> 128 and 37 -> round(47.36) = 47 rows; 81 rows of padding: 40 above, 41 below.
    assert lb.pad == (0, 40)
    assert lb.scale == (1.28, 47 / 37)
    assert (lb.image[:40] == 114).all() and (lb.image[87:] == 114).all()
    assert not (lb.image[40:87] == 114).all()


def test_portrait_frames_pad_left_and_right():
    lb = letterbox(frame(640, 480), 640)
    assert lb.image.shape == (640, 512, 3) and lb.pad == (16, 0)


def test_points_round_trip_and_land_on_the_same_content():
    img = np.zeros((100, 200, 3), dtype=np.uint8)
    img[60:64, 150:154] = 255  # a bright 4x4 square centred at (152, 62)
    lb = letterbox(img, 128, auto=False)
    assert lb.pad == (0, 32) and lb.scale == (0.64, 0.64)
    pts = np.array([[152.0, 62.0, 0.0, 0.0, 199.5, 99.5]])
    there = lb.to_letterboxed(pts)
    np.testing.assert_allclose(there, [[97.28, 71.68, 0.0, 32.0, 127.68, 95.68]])
    np.testing.assert_allclose(lb.to_original(there), pts)
    x, y = np.rint(there[0, :2]).astype(int)
    assert lb.image[y, x].min() > 100  # the square is where the mapping says


def test_bad_inputs_are_refused_by_name():
    with pytest.raises(ValueError, match='multiple of the model stride'):
        letterbox(frame(10, 10), 600)
    with pytest.raises(ValueError, match='uint8'):
        letterbox(np.zeros((10, 10, 3), np.float32), 640)
    with pytest.raises(ValueError, match='H x W x C'):
        letterbox(np.zeros((10, 10), np.uint8), 640)
    with pytest.raises(ValueError, match='pairs'):
        Letterboxed(np.zeros((64, 64, 3), np.uint8), (1.0, 1.0), (0, 0), (64, 64)).to_original(
            np.zeros(3))


def test_bilinear_resize_follows_half_pixel_centres():
    row = np.array([[[0], [255]]], dtype=np.uint8)  # 1 x 2 x 1
    out = resize_bilinear(row, 1, 4)
    np.testing.assert_array_equal(out[0, :, 0], [0, 64, 191, 255])
    flat = np.full((7, 5, 3), 77, dtype=np.uint8)
    assert (resize_bilinear(flat, 13, 9) == 77).all()
    assert (resize_bilinear(flat, 3, 2) == 77).all()


def test_to_input_is_nchw_float_in_unit_range_rgb_kept():
    img = frame(64, 128)
    x = to_input(img)
    assert x.shape == (1, 3, 64, 128) and x.dtype == np.float32 and x.flags.c_contiguous
    assert x[0, 2, 5, 7] == pytest.approx(img[5, 7, 2] / 255.0)
    assert x.min() >= 0.0 and x.max() <= 1.0
    with pytest.raises(ValueError, match='uint8 RGB'):
        to_input(np.zeros((4, 4, 4), np.uint8))
