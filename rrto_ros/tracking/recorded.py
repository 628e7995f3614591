# Copyright 2026 rrto_ros authors. Apache-2.0.
"""A recorded RGB-D sequence on disk: reading it (the camera node's ``source: recorded``) and
writing one (tests, or turning another recording into this layout).

Layout of a sequence directory (numpy only: no image library is a dependency)::

    camera_info.yaml    width, height, k (9 numbers, row-major fx 0 cx 0 fy cy 0 0 1),
                        frame_id (optional), fps (optional, default 15)
    000000.npz          one frame: rgb (H, W, 3) uint8, depth (H, W) uint16 millimetres
    000001.npz          (0: no measurement), aligned to rgb; optional: stamp_s (float),
    ...                 keypoints (P, 17, 3) float32 and scores (P,): ground-truth poses

Frames are the files named by six or more digits, in numeric order. ``python -m
rrto_ros.tracking.recorded DIR --frames N`` writes N frames of the synthetic scene there.
"""

from __future__ import annotations

import argparse
import pathlib
import re
import sys
from typing import Iterable, List, Optional

import numpy as np

from rrto_ros.tracking.camera import CameraIntrinsics, check_frame_arrays, Frame
from rrto_ros.tracking.pose_messages import bbox_of
from rrto_ros.tracking.poses import NUM_KEYPOINTS, Pose

CAMERA_INFO = 'camera_info.yaml'
_FRAME = re.compile(r'^(\d{6,})\.npz$')


class SequenceError(ValueError):
    """The directory is not a readable sequence; the message says what is wrong."""


class RecordedSequence:
    """``frame(i)`` reads frame i (0 <= i < count) of the sequence in ``path``."""

    def __init__(self, path: str) -> None:
        import yaml
        self.path = pathlib.Path(path).expanduser()
        info_path = self.path / CAMERA_INFO
        if not self.path.is_dir():
            raise SequenceError(f'recorded sequence {self.path} is not a directory (see the '
                                'layout in rrto_ros/tracking/recorded.py)')
        try:
            info = yaml.safe_load(info_path.read_text()) or {}
        except OSError as e:
            raise SequenceError(f'cannot read {info_path}: {e}; a sequence needs its '
                                f'{CAMERA_INFO} (width, height, k)') from e
        except yaml.YAMLError as e:
            raise SequenceError(f'{info_path} is not valid YAML: {e}') from e
        try:
            self.camera = CameraIntrinsics.from_k(info['k'], info['width'], info['height'],
                                                  str(info.get('frame_id') or
                                                      'camera_color_optical_frame'))
            self.fps = float(info.get('fps', 15.0))
        except (KeyError, TypeError, ValueError) as e:
            raise SequenceError(f'{info_path}: needs width, height and k (9 numbers): '
                                f'{e!r}') from e
        files = [(int(m.group(1)), p) for p in self.path.iterdir()
                 if (m := _FRAME.match(p.name))]
        self._files = [p for _, p in sorted(files)]
        if not self._files:
            raise SequenceError(f'{self.path} has no frames (NNNNNN.npz files)')

    @property
    def count(self) -> int:
        return len(self._files)

    def frame(self, index: int) -> Frame:
        path = self._files[index]
        try:
            with np.load(path) as z:
                rgb, depth = z['rgb'], z['depth']
                stamp = float(z['stamp_s']) if 'stamp_s' in z else index / self.fps
                poses = _poses(z['keypoints'], z['scores'] if 'scores' in z else None) \
                    if 'keypoints' in z else None
        except (OSError, KeyError, ValueError) as e:
            raise SequenceError(f'{path}: not a frame (rgb and depth arrays): {e}') from e
        try:
            check_frame_arrays(rgb, depth)
        except ValueError as e:
            raise SequenceError(f'{path}: {e}') from e
        if rgb.shape[:2] != (self.camera.height, self.camera.width):
            raise SequenceError(f'{path}: image is {rgb.shape[1]}x{rgb.shape[0]}, '
                                f'{CAMERA_INFO} says {self.camera.width}x{self.camera.height}')
        return Frame(index, stamp, rgb, depth, poses)


def _poses(keypoints: np.ndarray, scores: Optional[np.ndarray]) -> List[Pose]:
    kp = np.asarray(keypoints, dtype=np.float32).reshape(-1, NUM_KEYPOINTS, 3)
    s = np.ones(len(kp)) if scores is None else np.asarray(scores, dtype=np.float64)
    return [Pose(k, float(sc), bbox_of(k)) for k, sc in zip(kp, s)]


def write_camera_info(path: str, camera: CameraIntrinsics, fps: float) -> None:
    import yaml
    d = pathlib.Path(path)
    d.mkdir(parents=True, exist_ok=True)
    (d / CAMERA_INFO).write_text(yaml.safe_dump(
        {'width': camera.width, 'height': camera.height, 'k': camera.k,
         'frame_id': camera.frame_id, 'fps': float(fps)}, sort_keys=False))


def write_frame(path: str, frame: Frame) -> pathlib.Path:
    check_frame_arrays(frame.rgb, frame.depth)
    out = pathlib.Path(path) / f'{frame.index:06d}.npz'
    arrays = {'rgb': frame.rgb, 'depth': frame.depth, 'stamp_s': np.float64(frame.stamp_s)}
    if frame.poses is not None:
        arrays['keypoints'] = np.stack([p.keypoints for p in frame.poses]) if frame.poses \
            else np.zeros((0, NUM_KEYPOINTS, 3), np.float32)
        arrays['scores'] = np.array([p.score for p in frame.poses], np.float64)
    np.savez_compressed(out, **arrays)
    return out


def write_sequence(path: str, camera: CameraIntrinsics, frames: Iterable[Frame],
                   fps: float) -> int:
    write_camera_info(path, camera, fps)
    return sum(1 for f in frames if write_frame(path, f))


def main(argv: Optional[List[str]] = None) -> int:
    from rrto_ros.tracking.scene import SceneConfig, SyntheticScene
    ap = argparse.ArgumentParser(prog='python -m rrto_ros.tracking.recorded',
                                 description='Write frames of the synthetic scene as a '
                                 'recorded sequence (the layout the camera node reads).')
    ap.add_argument('directory')
    ap.add_argument('--frames', type=int, default=60)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--fps', type=float, default=15.0)
    a = ap.parse_args(argv)
    scene = SyntheticScene(SceneConfig(seed=a.seed, fps=a.fps))
    n = write_sequence(a.directory, scene.camera, (scene.frame(i) for i in range(a.frames)),
                       a.fps)
    print(f'wrote {n} frames to {a.directory}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
