# Copyright 2026 rrto_ros authors. Apache-2.0.
"""A synthetic RGB-D scene: a person-like figure walking in front of a static camera.

The figure is 17 COCO joints in 3D (``poses.COCO_KEYPOINTS``) with a walking gait (legs and
arms swing, the body bobs), moving along an ellipse on the floor while facing where it
walks. Each frame is rendered to an RGB image and an aligned depth image (uint16 mm, 0 where
the sensor would report nothing: a small fraction of random drop-outs, depth edges, beyond
``max_range_m``), with the ground truth: the projected 2D keypoints and the 3D torso position
(the centroid of shoulders and hips). Everything is in the camera's optical frame (x right,
y down, z forward, see ``camera``); the floor is the plane ``y = camera_height_m``.

Limbs are capsules, the head a sphere, the torso a flat board through the torso joints plus a
thin capsule (so it has depth seen side-on). A frame depends only on the seed and its index.
"""

from __future__ import annotations

from dataclasses import dataclass
import math
from typing import Optional, Tuple

import numpy as np

from rrto_ros.tracking.camera import CameraIntrinsics, Frame
from rrto_ros.tracking.poses import NUM_KEYPOINTS, Pose, TORSO

# Body-frame joint positions (lateral: + is the person's left, height above the floor,
# forward), metres, for a 1.7 m person standing upright; the gait moves elbows, wrists,
# knees and ankles.
_HEAD = {0: (0.0, 1.60, 0.09), 1: (0.032, 1.64, 0.075), 2: (-0.032, 1.64, 0.075),
         3: (0.075, 1.62, 0.0), 4: (-0.075, 1.62, 0.0)}
_SHOULDER_LAT, _SHOULDER_H = 0.19, 1.42
_HIP_LAT, _HIP_H = 0.11, 0.94
_UPPER_ARM, _FOREARM, _THIGH, _SHIN = 0.29, 0.26, 0.46, 0.45
_STRIDE_M = 1.3          # distance per gait cycle (two steps)
_LEG_SWING, _ARM_SWING = 0.42, 0.35   # radians

SKIN = (222, 170, 120)
PANTS = (45, 55, 110)


@dataclass(frozen=True)
class SceneConfig:
    width: int = 640
    height: int = 480
    fx: float = 525.0                 # pixels; fy = fx, principal point at the centre
    fps: float = 15.0                 # scene time advances 1/fps per frame
    seed: int = 0
    camera_height_m: float = 1.0      # camera above the floor
    center_z_m: float = 3.2           # the walking ellipse, in front of the camera
    radius_x_m: float = 0.9
    radius_z_m: float = 0.7
    speed_mps: float = 0.9            # roughly: along the ellipse
    wall_z_m: float = 6.5
    max_range_m: float = 8.0
    dropout: float = 0.02             # fraction of pixels without depth
    frame_id: str = 'camera_color_optical_frame'

    def validate(self) -> None:
        if self.width < 32 or self.height < 32:
            raise ValueError(f'scene image must be at least 32x32, got '
                             f'{self.width}x{self.height}')
        if self.fps <= 0 or self.fx <= 0 or self.speed_mps < 0:
            raise ValueError('scene fps and fx must be positive and speed_mps >= 0')
        if not 0.0 <= self.dropout < 0.5:
            raise ValueError(f'dropout is a fraction in [0, 0.5), got {self.dropout}')
        if self.center_z_m - self.radius_z_m < 1.0:
            raise ValueError('the walking path comes closer than 1 m to the camera')


class SyntheticScene:
    """``frame(i)`` renders frame i; ``joints(t)`` / ``torso_position(t)`` are the truth."""

    def __init__(self, config: SceneConfig = SceneConfig()) -> None:
        config.validate()
        self.config = config
        c = config
        self.camera = CameraIntrinsics(c.width, c.height, c.fx, c.fx, (c.width - 1) / 2.0,
                                       (c.height - 1) / 2.0, c.frame_id)
        rng = np.random.default_rng(c.seed)
        self._theta0 = float(rng.uniform(0, 2 * math.pi))
        self._direction = 1.0 if rng.random() < 0.5 else -1.0
        self._shirt = tuple(int(v) for v in rng.integers(60, 230, 3))
        self._background_rgb, self._background_z = self._background(rng)
        mean_radius = (c.radius_x_m + c.radius_z_m) / 2.0
        self._omega = c.speed_mps / mean_radius

    # ----------------------------------------------------------- ground truth
    def time_of(self, index: int) -> float:
        return index / self.config.fps

    def _root(self, t: float) -> Tuple[np.ndarray, np.ndarray, float]:
        """Where the person stands (on the floor), which way they face, gait phase."""
        c = self.config
        theta = self._theta0 + self._direction * self._omega * t
        root = np.array([c.radius_x_m * math.cos(theta), c.camera_height_m,
                         c.center_z_m + c.radius_z_m * math.sin(theta)])
        tangent = self._direction * np.array([-c.radius_x_m * math.sin(theta), 0.0,
                                              c.radius_z_m * math.cos(theta)])
        forward = tangent / np.linalg.norm(tangent)
        phase = 2 * math.pi * self._omega * t * (c.radius_x_m + c.radius_z_m) / 2.0 / _STRIDE_M
        return root, forward, phase

    def joints(self, t: float) -> np.ndarray:
        """(17, 3) COCO joints in the optical frame at scene time ``t`` (seconds)."""
        root, forward, phase = self._root(t)
        up = np.array([0.0, -1.0, 0.0])
        left = np.cross(up, forward)
        bob = 0.02 * math.cos(2 * phase)
        body = np.zeros((NUM_KEYPOINTS, 3))
        for i, p in _HEAD.items():
            body[i] = p
        for side, sign, off in ((0, 1.0, 0.0), (1, -1.0, math.pi)):   # left, right
            shoulder = np.array([sign * _SHOULDER_LAT, _SHOULDER_H, 0.0])
            hip = np.array([sign * _HIP_LAT, _HIP_H, 0.0])
            leg = _LEG_SWING * math.sin(phase + off)
            bend = 0.5 * (1 - math.cos(phase + off + math.pi / 2)) * 0.6
            knee = hip + _THIGH * np.array([0.0, -math.cos(leg), math.sin(leg)])
            ankle = knee + _SHIN * np.array([0.0, -math.cos(leg - bend), math.sin(leg - bend)])
            arm = -_ARM_SWING * math.sin(phase + off)
            elbow = shoulder + _UPPER_ARM * np.array([0.0, -math.cos(arm), math.sin(arm)])
            wrist = elbow + _FOREARM * np.array([0.0, -math.cos(arm + 0.35),
                                                 math.sin(arm + 0.35)])
            for idx, p in zip((5, 11, 13, 15, 7, 9), (shoulder, hip, knee, ankle, elbow, wrist)):
                body[idx + side] = p
        body[:, 1] += bob
        return root + np.outer(body[:, 0], left) + np.outer(body[:, 1], up) + \
            np.outer(body[:, 2], forward)

    def torso_position(self, t: float) -> np.ndarray:
        """The tracker's target: the centroid of the shoulders and hips (optical frame)."""
        return self.joints(t)[list(TORSO)].mean(axis=0)

    def pose(self, t: float) -> Pose:
        """The ground-truth 2D pose: projected joints, confidence 1 inside the image."""
        joints = self.joints(t)
        uv = self.camera.project(joints)
        inside = ((uv[:, 0] >= 0) & (uv[:, 0] <= self.camera.width - 1) & (uv[:, 1] >= 0) &
                  (uv[:, 1] <= self.camera.height - 1) & (joints[:, 2] > 0))
        kp = np.concatenate([uv, inside[:, None].astype(np.float64)], axis=1)
        seen = uv[inside] if inside.any() else uv
        x1, y1 = seen.min(axis=0) - 10
        x2, y2 = seen.max(axis=0) + 10
        return Pose(kp, 1.0, (float(x1), float(y1), float(x2), float(y2)))

    # ----------------------------------------------------------- rendering
    def frame(self, index: int) -> Frame:
        t = self.time_of(index)
        rgb, z = self._render(self.joints(t))
        depth = self._sensor_depth(z, np.random.default_rng((self.config.seed, index)))
        return Frame(index, t, rgb, depth, [self.pose(t)])

    def _rays(self) -> Tuple[np.ndarray, np.ndarray]:
        cam = self.camera
        u = (np.arange(cam.width) - cam.cx) / cam.fx
        v = (np.arange(cam.height) - cam.cy) / cam.fy
        return np.meshgrid(u, v)

    def _background(self, rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
        c = self.config
        xn, yn = self._rays()
        z = np.full(xn.shape, c.wall_z_m)
        with np.errstate(divide='ignore'):
            floor_z = np.where(yn > 1e-6, c.camera_height_m / np.maximum(yn, 1e-6), np.inf)
        on_floor = floor_z < z
        z = np.where(on_floor, floor_z, z)
        rgb = np.empty(xn.shape + (3,), np.float64)
        shade = 0.7 + 0.3 * (1 - np.clip(yn + 0.5, 0, 1))
        for ch, base in enumerate((170, 180, 190)):
            rgb[..., ch] = base * shade
        fx, fz = xn * z, z                       # floor texture: 0.5 m tiles
        tiles = ((np.floor(fx / 0.5) + np.floor(fz / 0.5)) % 2).astype(bool)
        floor_rgb = np.where(tiles[..., None], (120, 100, 80), (150, 130, 105))
        rgb = np.where(on_floor[..., None], floor_rgb, rgb)
        rgb += rng.normal(0, 3, rgb.shape)
        return np.clip(rgb, 0, 255).astype(np.uint8), z

    def _render(self, joints: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """RGB (uint8) and true depth z (float metres, inf where nothing)."""
        rgb = self._background_rgb.copy()
        zbuf = self._background_z.copy()
        self._draw_torso_board(joints, rgb, zbuf)
        neck = (joints[5] + joints[6]) / 2
        pelvis = (joints[11] + joints[12]) / 2
        head = joints[[3, 4]].mean(axis=0)
        capsules = [(neck, pelvis, 0.10, self._shirt), (head, head, 0.11, SKIN),
                    (neck, head, 0.05, SKIN)]
        for a, b in ((5, 7), (6, 8)):
            capsules.append((joints[a], joints[b], 0.05, self._shirt))
        for a, b in ((7, 9), (8, 10)):
            capsules.append((joints[a], joints[b], 0.04, SKIN))
        for a, b in ((11, 13), (12, 14), (13, 15), (14, 16)):
            capsules.append((joints[a], joints[b], 0.065, PANTS))
        for p0, p1, r, color in capsules:
            self._draw_capsule(p0, p1, r, color, rgb, zbuf)
        return rgb, zbuf

    def _box(self, uv: np.ndarray, margin: float) -> Optional[Tuple[slice, slice]]:
        cam = self.camera
        x0 = max(int(math.floor(uv[:, 0].min() - margin)), 0)
        x1 = min(int(math.ceil(uv[:, 0].max() + margin)) + 1, cam.width)
        y0 = max(int(math.floor(uv[:, 1].min() - margin)), 0)
        y1 = min(int(math.ceil(uv[:, 1].max() + margin)) + 1, cam.height)
        if x0 >= x1 or y0 >= y1:
            return None
        return slice(y0, y1), slice(x0, x1)

    def _draw_capsule(self, p0: np.ndarray, p1: np.ndarray, radius: float,
                      color: Tuple[int, int, int], rgb: np.ndarray, zbuf: np.ndarray) -> None:
        if p0[2] <= 0.1 or p1[2] <= 0.1:
            return
        q = self.camera.project(np.stack([p0, p1]))
        box = self._box(q, self.camera.fx * radius / min(p0[2], p1[2]) + 1)
        if box is None:
            return
        ys, xs = box
        v, u = np.mgrid[ys, xs]
        d = q[1] - q[0]
        dd = float(d @ d)
        t = np.zeros(u.shape) if dd < 1e-9 else \
            np.clip(((u - q[0, 0]) * d[0] + (v - q[0, 1]) * d[1]) / dd, 0, 1)
        dist = np.hypot(u - (q[0, 0] + t * d[0]), v - (q[0, 1] + t * d[1]))
        z_axis = p0[2] + t * (p1[2] - p0[2])
        r_px = self.camera.fx * radius / z_axis
        inside = dist <= r_px
        depth = z_axis - radius * np.sqrt(np.clip(1 - (dist / r_px) ** 2, 0, 1))
        self._paint(ys, xs, inside, depth, color, np.clip(1 - dist / r_px, 0, 1), rgb, zbuf)

    def _draw_torso_board(self, joints: np.ndarray, rgb: np.ndarray, zbuf: np.ndarray) -> None:
        """A flat board through the torso joints, a little larger than they span."""
        ls, rs, lh, rh = (joints[i] for i in TORSO)
        mid_s, mid_h = (ls + rs) / 2, (lh + rh) / 2
        up = mid_s - mid_h                       # hips -> shoulders
        # Wider than the joints and a little above the shoulders and below the hips, so that
        # a window around each torso keypoint lies on the body.
        corners = np.stack([mid_s + 1.2 * (ls - mid_s) + 0.09 * up,
                            mid_s + 1.2 * (rs - mid_s) + 0.09 * up,
                            mid_h + 1.5 * (rh - mid_h) - 0.1 * up,
                            mid_h + 1.5 * (lh - mid_h) - 0.1 * up])
        if (corners[:, 2] <= 0.1).any():
            return
        q = self.camera.project(corners)
        box = self._box(q, 1)
        if box is None:
            return
        ys, xs = box
        v, u = np.mgrid[ys, xs]
        signs = []
        for i in range(4):                       # convex quad: same side of every edge
            a, b = q[i], q[(i + 1) % 4]
            signs.append((b[0] - a[0]) * (v - a[1]) - (b[1] - a[1]) * (u - a[0]))
        s = np.stack(signs)
        inside = (s >= 0).all(axis=0) | (s <= 0).all(axis=0)
        normal = np.cross(ls - rh, rs - lh)
        centre = corners.mean(axis=0)
        ray = np.stack([(u - self.camera.cx) / self.camera.fx,
                        (v - self.camera.cy) / self.camera.fy, np.ones(u.shape)], axis=-1)
        denom = ray @ normal
        if np.linalg.norm(normal) < 1e-9:
            return
        with np.errstate(divide='ignore', invalid='ignore'):
            depth = np.where(np.abs(denom) > 1e-9, (centre @ normal) / denom, np.inf)
        inside &= np.isfinite(depth) & (depth > 0.1)
        self._paint(ys, xs, inside, depth, self._shirt, np.full(u.shape, 0.8), rgb, zbuf)

    @staticmethod
    def _paint(ys: slice, xs: slice, inside: np.ndarray, depth: np.ndarray,
               color: Tuple[int, int, int], light: np.ndarray, rgb: np.ndarray,
               zbuf: np.ndarray) -> None:
        region = zbuf[ys, xs]
        nearer = inside & (depth < region)
        region[nearer] = depth[nearer]
        shaded = np.asarray(color, np.float64) * (0.55 + 0.45 * np.sqrt(light))[..., None]
        rgb[ys, xs][nearer] = np.clip(shaded[nearer], 0, 255).astype(np.uint8)

    def _sensor_depth(self, z: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """True depth -> what an RGB-D sensor reports: noise growing with z**2, millimetres,
        0 for drop-outs, pixels on depth edges (mixed pixels) and beyond max_range_m."""
        c = self.config
        noisy = z + rng.normal(0.0, 1.0, z.shape) * 0.0015 * np.square(np.minimum(z, 50))
        valid = np.isfinite(z) & (noisy > 0.1) & (noisy < c.max_range_m)
        valid &= rng.random(z.shape) >= c.dropout
        zc = np.where(np.isfinite(z), z, c.max_range_m * 2)
        edge = np.zeros(z.shape, bool)
        edge[:, 1:] |= np.abs(np.diff(zc, axis=1)) > 0.3
        edge[1:, :] |= np.abs(np.diff(zc, axis=0)) > 0.3
        valid &= ~(edge & (rng.random(z.shape) < 0.5))
        mm = np.where(valid, np.round(noisy * 1000.0), 0)
        return np.clip(mm, 0, 65535).astype(np.uint16)
