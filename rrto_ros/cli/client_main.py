# Copyright 2026 rrto_ros authors. Apache-2.0.
"""``rrto-client``: the robot side without ROS."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from typing import List, Optional

from rrto_ros.cli import add_log_level, setup_logging
from rrto_ros.client.compression import SETTINGS
from rrto_ros.client.config import ClientConfig
from rrto_ros.client.config import MODES
from rrto_ros.client.core import ClientCore
from rrto_ros.protocol import keys
from rrto_ros.protocol.curve import DEFAULT_SECURITY, SECURITY_MODES


def parser() -> argparse.ArgumentParser:
    d = ClientConfig()
    ap = argparse.ArgumentParser(
        description='Forward the CUDA calls of local apps (started with '
        'LD_PRELOAD=$(rrto-lib) and RRTO_AGENT_SOCKET pointing here) to an rrto server. The '
        'ROS 2 node rrto_client_node does the same with ROS parameters.',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument('--server', default=d.server_endpoint,
                    help="the rrto server's ZeroMQ endpoint, tcp://HOST:PORT")
    ap.add_argument('--agent-socket', default=d.agent_socket,
                    help='local socket apps connect to (their RRTO_AGENT_SOCKET)')
    ap.add_argument('--mode', choices=MODES, default=d.mode,
                    help='rpc: every call waits; pipelined: calls whose result the app does '
                    'not need are sent without waiting; replay: record, then one round trip '
                    'per inference')
    ap.add_argument('--record-window', type=int, default=d.record_window,
                    help='repetitions of the inference sequence seen before it is replayed')
    ap.add_argument('--connect-timeout', type=float, default=d.connect_timeout_s,
                    help='seconds to wait for the server at session start')
    ap.add_argument('--server-timeout', type=float, default=d.server_timeout_s,
                    help='seconds without an answer after which the server counts as lost '
                    '(CUDA calls then fail with cudaErrorDevicesUnavailable)')
    ap.add_argument('--heartbeat', type=float, default=d.heartbeat_s,
                    help='seconds between heartbeats to the server while apps are idle')
    ap.add_argument('--security', choices=SECURITY_MODES, default=DEFAULT_SECURITY,
                    help='curve: encrypted and authenticated with the two key files below; '
                    'open: no authentication, no encryption (logged as a warning)')
    ap.add_argument('--curve-secret-key-file', default=keys.robot_secret_file(),
                    help="this robot's CURVE certificate (secret key file; `rrto-keys "
                    'init-robot NAME` makes it)')
    ap.add_argument('--curve-server-key-file', default=keys.server_public_file(),
                    help="the server's CURVE public key file (a copy of the edge's "
                    'server.key)')
    ap.add_argument('--no-replay-lane', action='store_true',
                    help="replays through this client, not on the server's replay lane")
    ap.add_argument('--lane-endpoint', default=d.lane_endpoint,
                    help="tcp://HOST:PORT where apps reach the server's replay lane (default: "
                         "the server's host, the port it announces)")
    ap.add_argument('--compression', choices=SETTINGS, default=d.compression,
                    help='lossless compression of large uploads: auto where it pays on the '
                    'link (measured rule), off, or always zstd / lz4')
    ap.add_argument('--link-mbit', type=float, default=d.link_mbit,
                    help="the link's bandwidth for --compression auto (0: measure it)")
    ap.add_argument('--content-min-bytes', type=int, default=d.content_min_bytes,
                    help='copies this large into a fresh device address travel as their '
                    'content key when the server holds them from an earlier run (0: off)')
    add_log_level(ap)
    return ap


def main(argv: Optional[List[str]] = None) -> int:
    a = parser().parse_args(argv)
    setup_logging('rrto-client', a.log_level)
    try:
        core = ClientCore(ClientConfig(
            a.server, a.agent_socket, a.mode, a.connect_timeout, a.server_timeout,
            heartbeat_s=a.heartbeat, record_window=a.record_window, security=a.security,
            curve_secret_key_file=a.curve_secret_key_file,
            curve_server_key_file=a.curve_server_key_file,
            replay_lane=not a.no_replay_lane, lane_endpoint=a.lane_endpoint,
            compression=a.compression, link_mbit=a.link_mbit,
            content_min_bytes=a.content_min_bytes)).start()
    except (ValueError, RuntimeError, OSError) as e:
        logging.error('cannot start: %s', e)
        return 2
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        done.wait()
    except KeyboardInterrupt:
        pass
    core.stop()
    return 0


if __name__ == '__main__':
    sys.exit(main())
