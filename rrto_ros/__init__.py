# Copyright 2026 rrto_ros authors. Apache-2.0.
"""rrto_ros: record/replay transparent offloading of CUDA inference for ROS 2 robots.

The package's core (protocol, client, server, record) imports no ROS; ``rrto_ros.nodes``
holds the thin rclpy nodes.
"""

import os
import pathlib

__version__ = '0.1.0'

PACKAGE_DIR = pathlib.Path(__file__).resolve().parent


def interposer_path() -> pathlib.Path:
    """Path of ``librrto_cuda.so``: $RRTO_INTERPOSER, the package's lib/, or a ROS prefix."""
    env = os.environ.get('RRTO_INTERPOSER')
    cands = [pathlib.Path(env)] if env else []
    cands.append(PACKAGE_DIR / 'lib' / 'librrto_cuda.so')
    for prefix in os.environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep):
        if prefix:
            cands.append(pathlib.Path(prefix) / 'lib' / 'rrto_ros' / 'librrto_cuda.so')
    for c in cands:
        if c.is_file():
            return c
    raise FileNotFoundError(
        'librrto_cuda.so not found (looked in: ' + ', '.join(map(str, cands)) + '). '
        'Build it with `make lib` or `python -m rrto_ros.interposer.build`, or reinstall the '
        'package.')
