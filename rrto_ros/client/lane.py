# Copyright 2026 rrto_ros authors. Apache-2.0.
"""Where a session's replay lane is: the interposer connects to it itself (see
``rrto_ros.protocol.lane_wire``); the client node works out the address and hands it over in
its hello reply."""

from __future__ import annotations

import socket
from typing import Tuple

from rrto_ros.protocol import lane_wire


def lane_address(server_endpoint: str, port: int, override: str = '') -> Tuple[str, int]:
    """Where the lane is: ``override`` (``tcp://HOST:PORT``) when set, else the server
    endpoint's host with the port the server announced."""
    if override:
        host, _, p = override[len('tcp://'):].rpartition(':') if override.startswith(
            'tcp://') else ('', '', '')
        if not host or not p.isdigit():
            raise ValueError(f'lane_endpoint {override!r} is not tcp://HOST:PORT')
        return host.strip('[]'), int(p)
    host = server_endpoint[len('tcp://'):].rpartition(':')[0].strip('[]')
    return host, port


def lane_descriptor(server_endpoint: str, port: int, override: str, timeout_s: float,
                    sid: bytes) -> bytes:
    """The interposer's description of the lane, its host resolved to a numeric address
    (the interposer does no name lookups). Raises OSError when the host does not resolve."""
    host, lane_port = lane_address(server_endpoint, port, override)
    numeric = socket.getaddrinfo(host, lane_port, type=socket.SOCK_STREAM)[0][4][0]
    return lane_wire.describe(numeric, lane_port, timeout_s, sid)
