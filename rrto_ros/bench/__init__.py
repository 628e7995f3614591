# Copyright 2026 rrto_ros authors. Apache-2.0.
"""Benchmark support: link emulation, the robot energy model, the modes harness."""
