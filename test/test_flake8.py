# Copyright 2026 rrto_ros authors. Apache-2.0.
"""The code follows ament's flake8 style (setup.cfg: 99 columns, single quotes, google
import order), as ament_flake8 would check it in a ROS workspace."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.mark.linter
def test_flake8():
    pytest.importorskip('flake8')
    r = subprocess.run([sys.executable, '-m', 'flake8', 'rrto_ros', 'test', 'bench', 'launch'],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, 'flake8 found:\n' + r.stdout + r.stderr
