# Copyright 2026 rrto_ros authors. Apache-2.0.
"""``rrto-client``: the robot side without ROS."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from typing import List, Optional

from rrto_ros.client.config import ClientConfig
from rrto_ros.client.config import MODES
from rrto_ros.client.core import ClientCore


def main(argv: Optional[List[str]] = None) -> int:
    d = ClientConfig()
    ap = argparse.ArgumentParser(description='Forward the CUDA calls of local apps (run with '
                                 'LD_PRELOAD=librrto_cuda.so) to an rrto server.')
    ap.add_argument('--server', default=d.server_endpoint, help='server ZeroMQ endpoint')
    ap.add_argument('--agent-socket', default=d.agent_socket, help='local socket for apps')
    ap.add_argument('--mode', choices=MODES, default=d.mode)
    ap.add_argument('--connect-timeout', type=float, default=d.connect_timeout_s)
    ap.add_argument('--server-timeout', type=float, default=d.server_timeout_s)
    ap.add_argument('--no-replay-lane', action='store_true',
                    help="replays through this client, not on the server's replay lane")
    ap.add_argument('--lane-endpoint', default=d.lane_endpoint,
                    help="tcp://HOST:PORT where apps reach the server's replay lane (default: "
                         "the server's host, the port it announces)")
    ap.add_argument('--log-level', default='INFO')
    a = ap.parse_args(argv)
    logging.basicConfig(level=a.log_level.upper(), format='[rrto-client] %(message)s')
    try:
        core = ClientCore(ClientConfig(a.server, a.agent_socket, a.mode, a.connect_timeout,
                                       a.server_timeout, replay_lane=not a.no_replay_lane,
                                       lane_endpoint=a.lane_endpoint)).start()
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
