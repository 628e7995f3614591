# Copyright 2026 rrto_ros authors. Apache-2.0.
"""The client node answers a broken interposer or server with an error, never by dying."""

from __future__ import annotations

import logging
import socket
import threading

import msgpack
import pytest
import zmq

from rrto_ros.client.config import ClientConfig
from rrto_ros.client.core import ClientCore
from rrto_ros.protocol import agent_wire as wire
from rrto_ros.protocol import ops

from rrto_ros.protocol.ops import Op
from rrto_ros.server.server import Server
from rrto_ros.server.server import ServerConfig


class App:
    """Talks to the client node like librrto_cuda.so."""

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(path)

    def call(self, op, args, data: bytes = b'', flags: int = 0):
        self.sock.sendall(wire.encode_request(op, args, data, flags))
        if flags & wire.F_NOREPLY:
            return None
        return wire.read_reply(self.sock)

    def hello(self) -> None:
        err, _, data, _, _ = self.call(Op.HELLO, [1, wire.PROTO_VERSION], b'/bin/app')
        assert err == 0, data

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def node(tmp_path):
    server = Server(ServerConfig('tcp://127.0.0.1:*', 'emu', module_cache_dir=None,
                                 max_message_bytes=1 << 20)).start()
    core = ClientCore(ClientConfig(server.endpoint, str(tmp_path / 'a.sock'),
                                   server_timeout_s=2.0)).start()
    yield core
    core.stop()
    server.stop()


def alive(app: App) -> bool:
    err, res, _, _, _ = app.call(Op.MALLOC, [64])
    return err == 0 and res[0] != 0


@pytest.mark.parametrize('args, says', [
    ([7], 'MODULE_LOAD takes 3 arguments, not 1'),
    ([], 'MODULE_LOAD takes 3 arguments, not 0'),
    ([7, 0, 4], 'does not fit a module of 4 bytes'),
    ([7, 0, 1 << 62], 'does not fit a module of'),
])
def test_malformed_module_load_is_refused_by_name(node, args, says):
    """Regression: ``req.args[:3]`` / ``req.args[2]`` killed the app's session thread."""
    app = App(node.config.agent_socket)
    app.hello()
    err, _, msg, _, flags = app.call(Op.MODULE_LOAD, args, b'fatbin-bytes')
    assert err == ops.CUDA_ERROR_INVALID_VALUE and flags & wire.R_MESSAGE
    assert says in msg.decode()
    assert alive(app)
    app.close()


def test_wrong_argument_counts_and_unknown_ops_are_refused(node):
    app = App(node.config.agent_socket)
    app.hello()
    err, _, msg, _, _ = app.call(Op.REPLAY_RUN, [1])
    assert err == ops.CUDA_ERROR_INVALID_VALUE and b'REPLAY_RUN takes 3' in msg
    err, _, msg, _, _ = app.call(Op.REPLAY_LOAD, [1, 0])
    assert err == ops.CUDA_ERROR_NOT_SUPPORTED and b'not an op the interposer sends' in msg
    err, _, msg, _, _ = app.call(999, [])
    assert err == ops.CUDA_ERROR_NOT_SUPPORTED and b'does not know op 999' in msg
    app.call(Op.LAUNCH, [1], flags=wire.F_NOREPLY)      # refused, and not answered
    assert alive(app)
    app.close()


def test_divergence_error_beyond_int32_is_refused(node):
    """Regression: an error code that does not fit int32 killed the session when replied."""
    app = App(node.config.agent_socket)
    app.hello()
    app.call(Op.REPLAY_DIVERGE, [(1 << 64) - 1, 0, 1 << 40], flags=wire.F_NOREPLY)
    assert alive(app)
    # The interposer's negative int32 travels as uint32 and comes back as itself.
    app.call(Op.REPLAY_DIVERGE, [(1 << 64) - 1, 0, 0xFFFFFFFF], flags=wire.F_NOREPLY)
    err, _, _, _, _ = app.call(Op.MALLOC, [64])
    assert err == -1
    assert alive(app)
    app.close()


class BadServer:
    """A ROUTER that answers every request with one scripted reply header."""

    def __init__(self, head: dict) -> None:
        self.sock = zmq.Context.instance().socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.bind('tcp://127.0.0.1:*')
        self.endpoint = self.sock.getsockopt_string(zmq.LAST_ENDPOINT)
        self.head = head
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            if not self.sock.poll(50):
                continue
            ident, raw = self.sock.recv_multipart()[:2]
            seq = msgpack.unpackb(raw)['seq']
            self.sock.send_multipart([ident, msgpack.packb(dict(self.head, seq=seq))])

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close(0)


@pytest.mark.parametrize('head, says', [
    ({'err': 1 << 40, 'r': []}, "'err' a 32-bit CUDA error code"),
    ({'err': 0, 'r': ['x']}, "'r' must be a list of 64-bit integers"),
    ({'err': 0, 'r': [1]}, 'without a valid session id'),
    ({'err': 0, 'r': [1], 'sid': b'0' * 16, 'lane_port': 'x'}, 'or lane port'),
])
def test_a_malformed_server_reply_fails_the_app_by_name(tmp_path, head, says):
    bad = BadServer(head)
    core = ClientCore(ClientConfig(bad.endpoint, str(tmp_path / 'a.sock'),
                                   connect_timeout_s=2.0)).start()
    try:
        app = App(core.config.agent_socket)
        err, _, msg, _, flags = app.call(Op.HELLO, [1, wire.PROTO_VERSION], b'/bin/app')
        assert err == ops.CUDA_ERROR_NO_DEVICE and flags & wire.R_MESSAGE
        assert says in msg.decode()
        app.close()
    finally:
        core.stop()
        bad.close()


def test_payload_over_the_servers_limit_is_refused_by_the_client(node, caplog):
    app = App(node.config.agent_socket)
    app.hello()
    err, res, _, _, _ = app.call(Op.MALLOC, [4 << 20])
    with caplog.at_level(logging.INFO, logger='rrto_ros.client.session'):
        err, _, _, _, _ = app.call(Op.MEMCPY_HTOD, [res[0], 0, 0], b'x' * (2 << 20))
    assert err == ops.CUDA_ERROR_INVALID_VALUE
    assert 'MEMCPY_HTOD with 2097152 bytes of payload exceeds the max_message_bytes ' \
        '(1048576)' in caplog.text and 'raise it there' in caplog.text
    assert alive(app)
    app.close()


def test_a_module_larger_than_a_message_is_uploaded_in_chunks(node):
    app = App(node.config.agent_socket)
    app.hello()
    image = bytes(range(256)) * (12 << 10)      # 3 MiB; the server takes 1 MiB a message
    err, res, data, _, _ = app.call(Op.MODULE_LOAD, [1, 0, len(image)], image)
    assert err == 0 and res == (1,), data
    assert node.sessions and next(iter(node.sessions.values())).stats.modules_uploaded == 1
    app.close()


def test_oversized_frame_from_the_app_is_refused_before_it_is_read(node, caplog):
    """The local socket's length prefix is checked before anything is allocated for it."""
    app = App(node.config.agent_socket)
    app.hello()
    with caplog.at_level(logging.WARNING, logger='rrto_ros.client.session'):
        app.sock.sendall(wire.REQ.pack(wire.MAGIC, int(Op.MEMCPY_HTOD), 0, 3, wire.CHUNK + 1))
        assert app.sock.recv(1) == b''       # the node closed the connection
    assert f'frame too large: 3 args, {wire.CHUNK + 1} bytes' in caplog.text
    app.close()


def _deferred_copies(app: App, base: int, pieces, then=Op.DEVICE_SYNC):
    """Sends deferred MEMCPY_DTOH requests back to back, then a blocking call, and reads
    every answer after that, as the interposer does when the app synchronises."""
    for off, n in pieces:
        app.sock.sendall(wire.encode_request(Op.MEMCPY_DTOH, [base + off, n, 0, 1],
                                             flags=wire.F_DEFERRED))
    app.sock.sendall(wire.encode_request(then, []))
    return [wire.read_reply(app.sock) for _ in range(len(pieces) + 1)]


def test_deferred_copies_travel_together_and_are_answered_in_order(node):
    app = App(node.config.agent_socket)
    app.hello()
    n = 12 * 65536
    payload = bytes(range(256)) * (n // 256)
    err, (base,), _, _, _ = app.call(Op.MALLOC, [n])
    assert err == 0 and app.call(Op.MEMCPY_HTOD, [base, 0, 0], payload)[0] == 0
    pieces = [(i * 65536, 65536) for i in range(12)]
    pieces[5] = (n, 64)    # past the allocation: this one fails, the others still arrive
    replies = _deferred_copies(app, base, pieces)
    for (off, size), (err, _, data, _, _) in zip(pieces, replies):
        if off == n:
            assert err == ops.CUDA_ERROR_INVALID_VALUE
        else:
            assert err == 0 and data == payload[off:off + size]
    assert replies[-1][0] == 0          # the sync
    assert alive(app)
    app.close()


def test_deferred_copies_get_answers_when_the_server_is_gone(tmp_path):
    server = Server(ServerConfig('tcp://127.0.0.1:*', 'emu', module_cache_dir=None)).start()
    core = ClientCore(ClientConfig(server.endpoint, str(tmp_path / 'a.sock'),
                                   server_timeout_s=1.0, heartbeat_s=0.2)).start()
    try:
        app = App(core.config.agent_socket)
        app.hello()
        err, (base,), _, _, _ = app.call(Op.MALLOC, [4096])
        server.stop()
        replies = _deferred_copies(app, base, [(0, 1024), (1024, 1024), (2048, 1024)])
        assert [r[0] for r in replies] == [ops.CUDA_ERROR_DEVICES_UNAVAILABLE] * 4
        assert b'no answer from the rrto server' in replies[0][2]   # said once, first
        app.close()
    finally:
        core.stop()
