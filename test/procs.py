# Copyright 2026 rrto_ros authors. Apache-2.0.
"""Helpers for tests that start processes of their own."""

from __future__ import annotations

import contextlib
import subprocess
from typing import Iterator


@contextlib.contextmanager
def reaped(proc: subprocess.Popen) -> Iterator[subprocess.Popen]:
    """Kill and wait for ``proc`` on the way out if it is still running (a failed
    assertion must not leave it behind)."""
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
