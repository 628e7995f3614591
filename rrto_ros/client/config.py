# Copyright 2026 rrto_ros authors. Apache-2.0.
"""Settings of the client core; the client node maps its ROS parameters onto these."""

from __future__ import annotations

from dataclasses import dataclass

from rrto_ros.client import agent_socket
from rrto_ros.client.compression import check_compression
from rrto_ros.protocol.curve import check_security

MODES = ('rpc', 'pipelined', 'replay')


@dataclass
class ClientConfig:
    server_endpoint: str = 'tcp://127.0.0.1:5555'
    agent_socket: str = ''            # '': $XDG_RUNTIME_DIR/rrto/agent.sock or /tmp/rrto-UID/
    mode: str = 'pipelined'
    connect_timeout_s: float = 3.0
    server_timeout_s: float = 5.0
    heartbeat_s: float = 1.0
    record_window: int = 3
    # 'curve' (the nodes' and rrto-client's default): the two key files below; 'open': no
    # authentication, no encryption, logged as a warning at start.
    security: str = 'open'
    curve_secret_key_file: str = ''   # this client's ZeroMQ certificate (secret)
    curve_server_key_file: str = ''   # the server's public key
    replay_lane: bool = True          # apps send replays straight to the server's lane
    lane_endpoint: str = ''           # tcp://HOST:PORT of the lane; '': server's host
    # Lossless compression of large uploads (client/compression.py): auto (where the
    # measured rule says it pays on this link), off, zstd or lz4 (always).
    compression: str = 'auto'
    link_mbit: float = 0.0            # the link's bandwidth for auto; 0: measure it
    # Copies of at least this many bytes into a fresh device address travel by content
    # key when the server holds them from an earlier start of the app; 0: never.
    content_min_bytes: int = 16 << 10

    def __post_init__(self) -> None:
        self.agent_socket = agent_socket.resolve(self.agent_socket)

    def validate(self) -> None:
        check_mode(self.mode)
        check_security(self.security)
        check_record_window(self.record_window)
        check_compression(self.compression)
        if isinstance(self.link_mbit, bool) or not isinstance(self.link_mbit, (int, float)) \
                or self.link_mbit < 0:
            raise ValueError(f'link_mbit must be a number >= 0 (0: measure), not '
                             f'{self.link_mbit!r}')
        if isinstance(self.content_min_bytes, bool) or \
                not isinstance(self.content_min_bytes, int) or self.content_min_bytes < 0:
            raise ValueError(f'content_min_bytes must be an integer >= 0 (0: off), not '
                             f'{self.content_min_bytes!r}')
        if self.lane_endpoint and not self.lane_endpoint.startswith('tcp://'):
            raise ValueError(f'lane_endpoint {self.lane_endpoint!r} is not tcp://HOST:PORT '
                             "('' uses the server's host and the port it announces)")
        for name in ('connect_timeout_s', 'server_timeout_s', 'heartbeat_s'):
            if getattr(self, name) <= 0:
                raise ValueError(f'{name} must be > 0, not {getattr(self, name)}')
        if not self.server_endpoint.startswith(('tcp://', 'ipc://', 'inproc://')):
            raise ValueError(f'server_endpoint {self.server_endpoint!r} is not a ZeroMQ '
                             'endpoint such as tcp://edge-host:5555')


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f'mode must be one of {", ".join(MODES)}, not {mode!r}')
    return mode


def check_record_window(n: int) -> int:
    """How many consecutive repetitions of a sequence are seen before it is replayed."""
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 1000:
        raise ValueError(f'record_window must be an integer from 1 to 1000, not {n!r}')
    return n
