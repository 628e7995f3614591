# Copyright 2026 rrto_ros authors. Apache-2.0.
"""CURVE keys for the client node <-> server link (ZeroMQ's CurveZMQ: encryption, and with
the server's allow-list authentication of both sides).

``security`` is ``curve`` (the shipped configs: the server admits only robots whose public
keys are in its allow-list, ``curve_allowed_clients_dir``) or ``open`` (no authentication,
no encryption: an explicit choice that each side logs as a warning at start). Key files are
ZeroMQ certificates; ``rrto-keys`` (rrto_ros/protocol/keys.py) makes them and fills the
allow-list."""

from __future__ import annotations

import os
from typing import Any, Dict, Optional, Tuple

import zmq
import zmq.auth

SECURITY_MODES = ('curve', 'open')
DEFAULT_SECURITY = 'curve'   # of the nodes, the CLIs and config/*.yaml


class CurveError(ValueError):
    """A key file that is missing or unreadable, or a libzmq without CURVE."""


def check_security(value: str) -> str:
    if value not in SECURITY_MODES:
        raise ValueError(f"security must be 'curve' (keys and an allow-list) or 'open' (no "
                         f'authentication, no encryption), not {value!r}')
    return value


def _load(path: str, want_secret: bool, fix: str) -> Tuple[bytes, Optional[bytes]]:
    if not zmq.has('curve'):
        raise CurveError('this libzmq has no CURVE support; install the pyzmq wheels (or set '
                         'security open)')
    path = os.path.expanduser(path)
    if not os.path.isfile(path):
        raise CurveError(f'CURVE key file {path} does not exist: {fix}')
    try:
        public, secret = zmq.auth.load_certificate(path)
    except (OSError, ValueError) as e:
        raise CurveError(f'CURVE key file {path!r} is not a ZeroMQ certificate: {e}') from None
    if want_secret and not secret:
        raise CurveError(f'{path!r} holds no secret key: give the .key_secret file')
    return public, secret


def server_keys(secret_file: str) -> Tuple[bytes, bytes]:
    """(public, secret) of the server (security curve)."""
    if not secret_file:
        raise CurveError("security curve needs curve_secret_key_file, the server's "
                         '.key_secret (`rrto-keys init-server` makes one)')
    public, secret = _load(secret_file, True, 'make it with `rrto-keys init-server` on this '
                           'edge machine, or set curve_secret_key_file')
    assert secret is not None
    return public, secret


def client_keys(secret_file: str, server_public_file: str) -> Dict[str, Any]:
    """The client's keys and the server's public key (security curve), with the files they
    came from (``secret_file``, ``server_file``: for messages)."""
    if not secret_file or not server_public_file:
        raise CurveError("security curve needs both curve_secret_key_file (this robot's "
                         '.key_secret, `rrto-keys init-robot NAME` makes one) and '
                         "curve_server_key_file (a copy of the edge's server.key)")
    public, secret = _load(secret_file, True, 'make it with `rrto-keys init-robot NAME` on '
                           'this robot, or set curve_secret_key_file')
    server_public, _ = _load(server_public_file, False, "copy the edge's server.key "
                             '(made by `rrto-keys init-server` there) to this path, or set '
                             'curve_server_key_file')
    assert secret is not None
    return {'public': public, 'secret': secret, 'server': server_public,
            'secret_file': secret_file, 'server_file': server_public_file}


def open_warning(side: str, endpoint: str) -> str:
    """What each side logs at start when it runs open."""
    risk = ('anyone who reaches it can run code on this GPU' if side == 'server' else
            'anyone on the network can read or change what the apps send')
    return (f'security open: the link {endpoint} is neither authenticated nor encrypted; '
            f'{risk}. Set security curve (keys: `rrto-keys init-server`, `rrto-keys '
            'init-robot NAME`, `rrto-keys allow NAME.key`)')
