# Copyright 2026 rrto_ros authors. Apache-2.0.
"""``rrto-server``: the edge side without ROS."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from typing import List, Optional

from rrto_ros.cli import add_log_level, setup_logging
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
    ap.add_argument('--cache-mem-bytes', type=int, default=_DEFAULTS.module_cache_mem_bytes,
                    help='bytes of the content store (fatbins, weights) kept in memory '
                    '(least recently used go first; the disk cache keeps them)')
    ap.add_argument('--module-cache-disk-bytes', type=int,
                    default=_DEFAULTS.module_cache_disk_bytes,
                    help='bytes of the content store kept on disk (least recently used '
                    'files are removed beyond it)')
    ap.add_argument('--max-sessions', type=int, default=_DEFAULTS.max_sessions,
                    help='most app sessions served at once; more are refused')
    ap.add_argument('--max-sessions-per-client', type=int,
                    default=_DEFAULTS.max_sessions_per_client,
                    help='most sessions one robot (CURVE client key) holds at once')
    ap.add_argument('--max-message-bytes', type=int, default=_DEFAULTS.max_message_bytes,
                    help='largest payload of one request; a larger frame is dropped before '
                    'it is read')
    ap.add_argument('--session-memory-bytes', type=int,
                    default=_DEFAULTS.session_memory_bytes,
                    help='device memory one session may allocate (0: no cap)')
    ap.add_argument('--max-module-bytes', type=int, default=_DEFAULTS.max_module_bytes,
                    help='largest module (fatbin) a session may load')
    ap.add_argument('--session-timeout', type=float, default=_DEFAULTS.session_timeout_s,
                    help='seconds without a message after which a session is dropped')
    ap.add_argument('--unused-session-timeout', type=float,
                    default=_DEFAULTS.unused_session_timeout_s,
                    help='seconds after which a session that did no CUDA work since its '
                    'hello ends (it also gives its place to a new app when the server is '
                    'full)')
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
    add_log_level(ap)
    return ap


def main(argv: Optional[List[str]] = None) -> int:
    a = parser().parse_args(argv)
    setup_logging('rrto-server', a.log_level)
    try:
        backend, why = choose_backend(a.backend, a.device)
        logging.info('backend %s: %s', backend, why)
        server = Server(ServerConfig(
            bind_endpoint=a.bind, backend=backend, device=a.device,
            module_cache_dir=a.cache_dir or None, module_cache_mem_bytes=a.cache_mem_bytes,
            module_cache_disk_bytes=a.module_cache_disk_bytes,
            max_sessions=a.max_sessions, max_sessions_per_client=a.max_sessions_per_client,
            max_message_bytes=a.max_message_bytes,
            max_module_bytes=a.max_module_bytes, session_memory_bytes=a.session_memory_bytes,
            session_timeout_s=a.session_timeout,
            unused_session_timeout_s=a.unused_session_timeout,
            security=a.security, curve_secret_key_file=a.curve_secret_key_file,
            curve_allowed_clients_dir=a.curve_allowed_clients_dir, lane_port=a.lane_port))
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
