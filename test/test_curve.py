# Copyright 2026 rrto_ros authors. Apache-2.0.
"""CURVE on the client node <-> server link: the right keys connect, others get nothing."""

from __future__ import annotations

import pytest
import zmq
import zmq.auth

from rrto_ros.client.uplink import ServerLost, Uplink
from rrto_ros.protocol.curve import client_keys, CurveError, server_keys
from rrto_ros.protocol.ops import Op
from rrto_ros.server.server import Server, ServerConfig

pytestmark = pytest.mark.skipif(not zmq.has('curve'), reason='libzmq without CURVE')


@pytest.fixture
def keys(tmp_path):
    server_public, server_secret = zmq.auth.create_certificates(str(tmp_path), 'server')
    _, client_secret = zmq.auth.create_certificates(str(tmp_path), 'client')
    _, other_secret = zmq.auth.create_certificates(str(tmp_path), 'other')
    return {'server_public': server_public, 'server_secret': server_secret,
            'client_secret': client_secret, 'other_public': other_secret[:-len('_secret')]}


def hello(endpoint: str, curve) -> int:
    link = Uplink(zmq.Context.instance(), endpoint, server_timeout_s=1.0, heartbeat_s=0.2,
                  curve=curve)
    try:
        return link.call(Op.HELLO, [1]).err
    finally:
        link.close()


def test_curve_link(keys):
    srv = Server(ServerConfig('tcp://127.0.0.1:*', 'emu', module_cache_dir=None,
                              curve_secret_key_file=keys['server_secret'])).start()
    try:
        assert hello(srv.endpoint, client_keys(keys['client_secret'],
                                               keys['server_public'])) == 0
        with pytest.raises(ServerLost):          # no keys: the handshake never completes
            hello(srv.endpoint, None)
        with pytest.raises(ServerLost):          # a wrong server key: neither
            hello(srv.endpoint, client_keys(keys['client_secret'], keys['other_public']))
    finally:
        srv.stop()


def test_bad_key_files_are_named(keys, tmp_path):
    assert server_keys('') is None and client_keys('', '') is None
    with pytest.raises(CurveError, match='does not exist'):
        server_keys(str(tmp_path / 'missing.key_secret'))
    with pytest.raises(CurveError, match='no secret key'):
        server_keys(keys['server_public'])
    with pytest.raises(CurveError, match='both'):
        client_keys(keys['client_secret'], '')
