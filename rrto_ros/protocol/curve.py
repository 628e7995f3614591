# Copyright 2026 rrto_ros authors. Apache-2.0.
"""CURVE keys for the client node <-> server link (ZeroMQ's CurveZMQ: encryption and server
authentication). Key files are ZeroMQ certificates, e.g. made with
``python -c "import zmq.auth; zmq.auth.create_certificates('.', 'server')"``: the server
keeps ``server.key_secret``, clients get ``server.key`` (public) and their own
``client.key_secret``."""

from __future__ import annotations

import os
from typing import Dict, Optional, Tuple

import zmq
import zmq.auth


class CurveError(ValueError):
    """A key file that is missing or unreadable, or a libzmq without CURVE."""


def _load(path: str, want_secret: bool) -> Tuple[bytes, Optional[bytes]]:
    if not zmq.has('curve'):
        raise CurveError('this libzmq has no CURVE support; install pyzmq wheels, or leave '
                         'the CURVE key files empty')
    path = os.path.expanduser(path)
    if not os.path.isfile(path):
        raise CurveError(f'CURVE key file {path!r} does not exist')
    try:
        public, secret = zmq.auth.load_certificate(path)
    except (OSError, ValueError) as e:
        raise CurveError(f'CURVE key file {path!r} is not a ZeroMQ certificate: {e}') from None
    if want_secret and not secret:
        raise CurveError(f'{path!r} holds no secret key: give the .key_secret file')
    return public, secret


def server_keys(secret_file: str) -> Optional[Tuple[bytes, bytes]]:
    """(public, secret) of the server, or None when CURVE is off (empty path)."""
    if not secret_file:
        return None
    public, secret = _load(secret_file, True)
    assert secret is not None
    return public, secret


def client_keys(secret_file: str, server_public_file: str) -> Optional[Dict[str, bytes]]:
    """The client's keys and the server's public key, or None when CURVE is off."""
    if not secret_file and not server_public_file:
        return None
    if not secret_file or not server_public_file:
        raise CurveError('CURVE needs both the client secret key file and the server public '
                         'key file (or neither)')
    public, secret = _load(secret_file, True)
    server_public, _ = _load(server_public_file, False)
    assert secret is not None
    return {'public': public, 'secret': secret, 'server': server_public}
