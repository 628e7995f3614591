# Copyright 2026 rrto_ros authors. Apache-2.0.
"""The server answers bad requests with an error reply and keeps serving everyone else."""

from __future__ import annotations

import time

import msgpack
import pytest
import zmq

from rrto_ros.client.uplink import ServerLost
from rrto_ros.client.uplink import Uplink
from rrto_ros.protocol import ops
from rrto_ros.protocol.messages import decode_reply
from rrto_ros.protocol.messages import MAX_HEADER_BYTES
from rrto_ros.protocol.messages import PING
from rrto_ros.protocol.messages import PROTOCOL_VERSION
from rrto_ros.protocol.ops import Op
from rrto_ros.server.server import Server
from rrto_ros.server.server import ServerConfig


@pytest.fixture
def server():
    s = Server(ServerConfig('tcp://127.0.0.1:*', 'emu', module_cache_dir=None,
                            max_message_bytes=1 << 20, max_sessions=3)).start()
    yield s
    s.stop()


def raw(server):
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, 3000)
    sock.connect(server.endpoint)
    return sock


def session(server) -> Uplink:
    link = Uplink(zmq.Context.instance(), server.endpoint, server_timeout_s=3.0)
    rep = link.call(Op.HELLO, [1], pid=1, app='test')
    assert rep.err == 0
    link.sid = rep.extra['sid']
    return link


def test_malformed_header_gets_error_reply(server):
    sock = raw(server)
    sock.send_multipart([b'\xc1 definitely not msgpack'])
    rep = decode_reply(sock.recv_multipart())
    assert rep.err == ops.CUDA_ERROR_INVALID_VALUE and 'malformed' in rep.message
    sock.send_multipart([msgpack.packb({'v': PROTOCOL_VERSION, 'seq': 4})])
    rep = decode_reply(sock.recv_multipart())
    assert rep.err and 'lacks' in rep.message
    sock.close()


def test_wrong_protocol_version_is_named(server):
    sock = raw(server)
    sock.send_multipart([msgpack.packb({'v': 99, 'sid': b'', 'seq': 1, 'op': 1, 'a': []})])
    rep = decode_reply(sock.recv_multipart())
    assert rep.err and 'protocol version 99' in rep.message
    sock.close()


def test_oversized_request_rejected_then_session_continues(server):
    link = session(server)
    ptr = link.call(Op.MALLOC, [4 << 20]).res[0]
    rep = link.call(Op.MEMCPY_HTOD, [ptr, 0, 0], [b'x' * ((1 << 20) + 1)])   # frame fits
    assert rep.err == ops.CUDA_ERROR_INVALID_VALUE and 'max_message_bytes' in rep.message
    rep = link.call(Op.MEMCPY_HTOD, [ptr, 0, 0], [b'abcd'])
    assert rep.err == 0
    rep = link.call(Op.MEMCPY_DTOH, [ptr, 4, 0, 0])
    assert bytes(rep.frames[0]) == b'abcd'
    link.close()


def test_foreign_and_unknown_sessions_rejected(server):
    owner, intruder = session(server), session(server)
    ptr = owner.call(Op.MALLOC, [64]).res[0]
    stolen_sid = intruder.sid
    intruder.sid = owner.sid
    rep = intruder.call(Op.FREE, [ptr])
    assert rep.err == ops.CUDA_ERROR_INVALID_RESOURCE_HANDLE and 'another' in rep.message
    intruder.sid = b'\0' * 16
    rep = intruder.call(Op.FREE, [ptr])
    assert rep.err == ops.CUDA_ERROR_DEVICES_UNAVAILABLE and 'unknown session' in rep.message
    intruder.sid = stolen_sid
    assert owner.call(Op.FREE, [ptr]).err == 0           # the owner was never disturbed
    owner.close()
    intruder.close()


def test_unknown_op_and_bad_arguments(server):
    link = session(server)
    assert link.call(250, []).err == ops.CUDA_ERROR_NOT_SUPPORTED
    rep = link.call(Op.MEMCPY_DTOH, [0x1234, 16, 0, 0])     # not an allocation
    assert rep.err == ops.CUDA_ERROR_INVALID_VALUE and '0x1234' in rep.message
    rep = link.call(Op.LAUNCH, [1, 2])                       # too few arguments
    assert rep.err == ops.CUDA_ERROR_INVALID_VALUE and 'malformed' in rep.message
    assert link.call(Op.DEVICE_SYNC, []).err == 0
    link.close()


def test_max_sessions_refused_with_reason(server):
    links = [session(server) for _ in range(3)]
    for link in links:                          # sessions in use are never evicted
        assert link.call(Op.MALLOC, [16]).err == 0
    extra = Uplink(zmq.Context.instance(), server.endpoint, server_timeout_s=3.0)
    rep = extra.call(Op.HELLO, [1])
    assert rep.err == ops.CUDA_ERROR_DEVICES_UNAVAILABLE and 'max_sessions' in rep.message
    for link in links + [extra]:
        link.close()


def test_module_cache_skips_second_upload(tmp_path):
    import hashlib
    image = b'\x50\xed\x55\xba' + b'fatbin' * 100
    key = hashlib.sha256(image).hexdigest()
    for expect_upload in (True, False):   # the second server starts from the disk cache
        srv = Server(ServerConfig('tcp://127.0.0.1:*', 'emu',
                                  module_cache_dir=str(tmp_path))).start()
        link = session(srv)
        rep = link.call(Op.MODULE_LOAD, [1], hash=key)
        assert bool(rep.extra.get('need_data')) is expect_upload
        if expect_upload:
            assert link.call(Op.MODULE_LOAD, [1], [image], hash=key).err == 0
            wrong = link.call(Op.MODULE_LOAD, [2], [image + b'!'], hash=key)
            assert wrong.err == ops.CUDA_ERROR_INVALID_VALUE
        link.close()
        srv.stop()


def test_dead_server_is_detected_not_waited_on():
    link = Uplink(zmq.Context.instance(), 'tcp://127.0.0.1:1', server_timeout_s=0.5,
                  heartbeat_s=0.1)
    with pytest.raises(ServerLost, match='no answer'):
        link.call(Op.HELLO, [1])
    link.close()


@pytest.mark.parametrize('op', [[1, 2], {'x': 1}, 1.5, True, b'\x05', None])
def test_op_of_a_wrong_type_is_refused_by_name(server, op):
    """Regression: an unhashable op (list, map) killed the session's thread."""
    link = session(server)
    link.seq += 1
    head = {'v': PROTOCOL_VERSION, 'sid': link.sid, 'seq': link.seq, 'op': op, 'a': []}
    link.sock.send_multipart([msgpack.packb(head, use_bin_type=True)])
    rep = link.wait(link.seq)
    assert rep.err == ops.CUDA_ERROR_INVALID_VALUE
    assert "'op'" in rep.message and 'malformed' in rep.message
    assert link.call(Op.MALLOC, [16]).err == 0          # the session thread still serves
    link.close()


@pytest.mark.parametrize('field, value', [('a', [-1]), ('a', [1 << 64 - 1, 'x']),
                                          ('a', [True]), ('seq', 'x'), ('sid', 'text')])
def test_header_fields_of_wrong_type_or_range_are_named(server, field, value):
    sock = raw(server)
    head = {'v': PROTOCOL_VERSION, 'sid': b'', 'seq': 3, 'op': int(Op.MALLOC), 'a': [1]}
    head[field] = value
    sock.send_multipart([msgpack.packb(head, use_bin_type=True)])
    rep = decode_reply(sock.recv_multipart())
    assert rep.err == ops.CUDA_ERROR_INVALID_VALUE and f"'{field}'" in rep.message
    sock.close()


def test_oversized_frame_is_dropped_before_it_is_read(server):
    """ZMQ_MAXMSGSIZE: libzmq disconnects a peer whose frame's length prefix exceeds the
    limit, so the server never holds (nor sees) the message."""
    assert server._router.getsockopt(zmq.MAXMSGSIZE) == (1 << 20) + MAX_HEADER_BYTES
    before = server.stats.requests, server.stats.bytes_in
    sock = raw(server)
    sock.setsockopt(zmq.RCVTIMEO, 500)
    head = msgpack.packb({'v': PROTOCOL_VERSION, 'sid': b'', 'seq': 1, 'op': 5, 'a': [1]})
    sock.send_multipart([head, b'x' * (4 << 20)])
    with pytest.raises(zmq.Again):
        sock.recv_multipart()
    assert (server.stats.requests, server.stats.bytes_in) == before
    link = session(server)                      # everyone else is served as before
    assert link.call(Op.MALLOC, [16]).err == 0
    link.close()
    sock.close()


def test_hello_announces_the_payload_limit(server):
    link = Uplink(zmq.Context.instance(), server.endpoint, server_timeout_s=3.0)
    rep = link.call(Op.HELLO, [1], pid=1, app='test')
    assert rep.extra['max_message_bytes'] == 1 << 20
    link.close()


def test_module_upload_in_chunks_and_its_limit(tmp_path):
    import hashlib
    srv = Server(ServerConfig('tcp://127.0.0.1:*', 'emu', module_cache_dir=None,
                              max_module_bytes=1000)).start()
    link = session(srv)
    image = bytes(range(256)) * 3
    key = hashlib.sha256(image).hexdigest()
    assert link.call(Op.MODULE_LOAD, [1, 0, 768], [image[:500]], hash=key).res == [0]
    rep = link.call(Op.MODULE_LOAD, [1, 600, 768], [image[600:]], hash=key)   # a gap
    assert rep.err == ops.CUDA_ERROR_INVALID_VALUE and 'does not continue' in rep.message
    assert link.call(Op.MODULE_LOAD, [1, 0, 768], [image[:500]], hash=key).res == [0]
    assert link.call(Op.MODULE_LOAD, [1, 500, 768], [image[500:]], hash=key).res == [1]
    assert link.call(Op.MODULE_LOAD, [2], hash=key).res == [1]         # cached now
    rep = link.call(Op.MODULE_LOAD, [3, 0, 1001], [b'x'], hash=key)
    assert rep.err == ops.CUDA_ERROR_INVALID_VALUE and 'max_module_bytes' in rep.message
    link.close()
    srv.stop()


def test_idle_hellos_do_not_lock_out_a_real_app():
    """16 hellos kept alive with heartbeats (the default max_sessions) and no CUDA work:
    a 17th app still gets a session; the oldest unused one gives up its place."""
    srv = Server(ServerConfig('tcp://127.0.0.1:*', 'emu', module_cache_dir=None)).start()
    idle = [session(srv) for _ in range(srv.config.max_sessions)]
    for link in idle:
        assert link.call(PING, []).res == [1]
    app = session(srv)
    assert app.call(Op.MALLOC, [64]).err == 0
    assert idle[0].call(PING, []).res == [0]        # evicted: told so at its next probe
    assert all(link.call(PING, []).res == [1] for link in idle[1:])
    assert srv.session_count() == srv.config.max_sessions
    for link in idle + [app]:
        link.close()
    srv.stop()


def test_unused_session_expires_but_a_used_one_stays():
    srv = Server(ServerConfig('tcp://127.0.0.1:*', 'emu', module_cache_dir=None,
                              unused_session_timeout_s=0.3)).start()
    unused, used = session(srv), session(srv)
    assert used.call(Op.MALLOC, [64]).err == 0
    deadline = time.monotonic() + 20
    while srv.session_count() > 1 and time.monotonic() < deadline:
        used.call(PING, [])                          # both stay heartbeating
        unused.call(PING, [])
        time.sleep(0.1)
    assert srv.session_count() == 1 and unused.call(PING, []).res == [0]
    assert used.call(Op.MALLOC, [64]).err == 0
    unused.close()
    used.close()
    srv.stop()
