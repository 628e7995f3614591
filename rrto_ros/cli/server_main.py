# Copyright 2026 rrto_ros authors. Apache-2.0.
"""``rrto-server``: the edge side without ROS."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from typing import List, Optional

from rrto_ros.protocol import keys
from rrto_ros.protocol.curve import DEFAULT_SECURITY, SECURITY_MODES
from rrto_ros.server.backend import BackendUnavailable, choose_backend
from rrto_ros.server.server import default_cache_dir
from rrto_ros.server.server import Server
from rrto_ros.server.server import ServerConfig
from rrto_ros.server.server import ServerStartError

_DEFAULTS = ServerConfig()


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        description='Serve the CUDA work of rrto clients (robots) on this machine: on its GPU '
        '(backend cuda) or on a CPU stand-in (emu). The ROS 2 node rrto_server_node does '
        'the same with ROS parameters.',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument('--bind', default=_DEFAULTS.bind_endpoint,
                    help='ZeroMQ endpoint to listen on for client nodes: tcp://*:PORT (every '
                    'interface) or tcp://ADDRESS:PORT')
    ap.add_argument('--backend', choices=('auto', 'cuda', 'emu'), default='auto',
                    help='cuda: this GPU (needs cuda-python and a driver); emu: CPU stand-in; '
                    'auto: cuda when a GPU is usable, else emu (the log says why)')
    ap.add_argument('--device', type=int, default=_DEFAULTS.device, help='CUDA device index')
    ap.add_argument('--cache-dir', default=default_cache_dir(),
                    help="disk cache of shipped fatbins ('' for memory only)")
    ap.add_argument('--max-sessions', type=int, default=_DEFAULTS.max_sessions,
                    help='most app sessions served at once; more are refused')
    ap.add_argument('--session-timeout', type=float, default=_DEFAULTS.session_timeout_s,
                    help='seconds without a message after which a session is dropped')
    ap.add_argument('--security', choices=SECURITY_MODES, default=DEFAULT_SECURITY,
                    help='curve: encrypted, and only robots in the allow-list get in; open: '
                    'no authentication, no encryption (logged as a warning)')
    ap.add_argument('--curve-secret-key-file', default=keys.server_secret_file(),
                    help="the server's CURVE certificate (secret key file; `rrto-keys "
                    'init-server` makes it)')
    ap.add_argument('--curve-allowed-clients-dir', default=keys.allowed_clients_dir(),
                    help='directory of the public keys (NAME.key) of the robots let in '
                    '(`rrto-keys allow NAME.key` adds one; read again when it changes)')
    ap.add_argument('--lane-port', type=int, default=_DEFAULTS.lane_port,
                    help='TCP port of the replay lane (0: any free one, -1: no lane)')
    ap.add_argument('--log-level', default='INFO',
                    choices=('DEBUG', 'INFO', 'WARNING', 'ERROR'), type=str.upper,
                    help='how much to log')
    return ap


def main(argv: Optional[List[str]] = None) -> int:
    a = parser().parse_args(argv)
    logging.basicConfig(level=a.log_level, format='[rrto-server] %(message)s')
    try:
        backend, why = choose_backend(a.backend, a.device)
        logging.info('backend %s: %s', backend, why)
        server = Server(ServerConfig(a.bind, backend, a.device, a.cache_dir or None,
                                     a.max_sessions, session_timeout_s=a.session_timeout,
                                     security=a.security,
                                     curve_secret_key_file=a.curve_secret_key_file,
                                     curve_allowed_clients_dir=a.curve_allowed_clients_dir,
                                     lane_port=a.lane_port))
    except (BackendUnavailable, ServerStartError, ValueError, OSError) as e:
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
