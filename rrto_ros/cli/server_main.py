# Copyright 2026 rrto_ros authors. Apache-2.0.
"""``rrto-server``: the edge side without ROS."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from typing import List, Optional

from rrto_ros.server.server import default_backend
from rrto_ros.server.server import default_cache_dir
from rrto_ros.server.server import Server
from rrto_ros.server.server import ServerConfig


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description='Serve CUDA work of rrto clients on this GPU.')
    ap.add_argument('--bind', default='tcp://*:5555', help='ZeroMQ endpoint to listen on')
    ap.add_argument('--backend', choices=('auto', 'cuda', 'emu'), default='auto',
                    help='cuda: this GPU; emu: CPU stand-in; auto: cuda when a GPU is found')
    ap.add_argument('--device', type=int, default=0, help='CUDA device index')
    ap.add_argument('--cache-dir', default=default_cache_dir(),
                    help="fatbin cache directory ('' for memory only)")
    ap.add_argument('--max-sessions', type=int, default=16)
    ap.add_argument('--lane-port', type=int, default=0,
                    help='TCP port of the replay lane (0: any free one, -1: no lane)')
    ap.add_argument('--log-level', default='INFO')
    a = ap.parse_args(argv)
    logging.basicConfig(level=a.log_level.upper(), format='[rrto-server] %(message)s')
    backend = default_backend() if a.backend == 'auto' else a.backend
    try:
        server = Server(ServerConfig(a.bind, backend, a.device, a.cache_dir or None,
                                     a.max_sessions, lane_port=a.lane_port))
    except (ValueError, OSError) as e:
        logging.error('cannot start: %s', e)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: server.stop())
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == '__main__':
    sys.exit(main())
