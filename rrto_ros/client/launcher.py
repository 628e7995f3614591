# Copyright 2026 rrto_ros authors. Apache-2.0.
"""Environment for running an unmodified app under the interposer."""

from __future__ import annotations

import os
from typing import Dict, Mapping, Optional

from rrto_ros import interposer_path


def interposed_env(agent_socket: str, base: Optional[Mapping[str, str]] = None,
                   trace_file: Optional[str] = None) -> Dict[str, str]:
    """``base`` (default: os.environ) plus LD_PRELOAD of librrto_cuda.so and its settings.

    With ``trace_file`` the interposer passes every call to the local CUDA runtime and
    writes per-function call counts there instead of forwarding.
    """
    env = dict(os.environ if base is None else base)
    lib = str(interposer_path())
    preload = [p for p in env.get('LD_PRELOAD', '').split(':') if p and p != lib]
    env['LD_PRELOAD'] = ':'.join([lib] + preload)
    env['RRTO_AGENT_SOCKET'] = agent_socket
    if trace_file:
        env['RRTO_TRACE'] = '1'
        env['RRTO_TRACE_FILE'] = trace_file
    return env
