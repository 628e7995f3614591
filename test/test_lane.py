# Copyright 2026 rrto_ros authors. Apache-2.0.
"""The replay lane: its framing, the server's handling of lanes, and the client's rule that
keeps requests in order across the lane and ZeroMQ."""

from __future__ import annotations

import socket
import struct
import time

import pytest
import zmq
import zmq.auth as zmq_auth

from rrto_ros.client.lane import lane_address
from rrto_ros.client.uplink import Uplink
from rrto_ros.protocol import lane_wire
from rrto_ros.protocol.messages import decode_reply
from rrto_ros.protocol.messages import encode_request
from rrto_ros.protocol.messages import PING
from rrto_ros.protocol.messages import ProtocolError
from rrto_ros.protocol.messages import Request
from rrto_ros.protocol.ops import Op
from rrto_ros.server.server import Server
from rrto_ros.server.server import ServerConfig


def wire_bytes(parts) -> bytes:
    return b''.join(bytes(b) for b in lane_wire.encode(parts))


@pytest.mark.parametrize('chunk', [1, 3, 7, 64, 100000])
def test_messages_survive_any_chunking(chunk):
    msgs = [[b'head', b'x' * 1000, b''], [b'h2'], [bytes(range(256)) * 40, b'tail']]
    data = b''.join(wire_bytes(m) for m in msgs)
    reader = lane_wire.LaneReader(1 << 20)
    got = []
    for i in range(0, len(data), chunk):
        got += reader.feed(data[i:i + chunk])
    assert [[bytes(p) for p in m] for m in got] == msgs


def test_bad_frames_are_protocol_errors():
    with pytest.raises(ProtocolError, match='bad magic'):
        lane_wire.LaneReader(100).feed(b'\0' * 16)
    with pytest.raises(ProtocolError, match='parts'):
        lane_wire.LaneReader(100).feed(struct.pack('<II', lane_wire.LANE_MAGIC, 0))
    with pytest.raises(ProtocolError, match='exceeds'):
        lane_wire.LaneReader(100).feed(wire_bytes([b'x' * 101]))
    with pytest.raises(ValueError):
        lane_wire.encode([])


def test_lane_address():
    assert lane_address('tcp://edge:5555', 6000) == ('edge', 6000)
    assert lane_address('tcp://edge:5555', 6000, 'tcp://10.0.0.2:7000') == ('10.0.0.2', 7000)
    with pytest.raises(ValueError, match='tcp://HOST:PORT'):
        lane_address('tcp://edge:5555', 6000, 'edge:7000')


@pytest.fixture
def server():
    srv = Server(ServerConfig('tcp://127.0.0.1:*', 'emu', module_cache_dir=None)).start()
    yield srv
    srv.stop()


def open_session(srv: Server, lane: bool = True) -> Uplink:
    up = Uplink(zmq.Context.instance(), srv.endpoint, server_timeout_s=5.0)
    rep = up.call(Op.HELLO, [1], pid=1, app='test')
    assert rep.err == 0
    up.sid = rep.extra['sid']
    assert rep.extra['lane_port'] == srv.lane_port
    if lane:
        up.open_lane(('127.0.0.1', rep.extra['lane_port']))
    return up


def test_requests_keep_their_order_across_lane_and_zeromq(server):
    up = open_session(server)
    try:
        ptr = up.call(Op.MALLOC, [64]).res[0]
        # A quiet request on ZeroMQ is unanswered: the next REPLAY_RUN must not overtake it
        # on the lane, so it goes on ZeroMQ too (and fails: no sequence loaded).
        up.send(Op.MEMSET, [ptr, 7, 64, 0, 0], quiet=True)
        rep = up.call(Op.REPLAY_RUN, [1, 0, 1])
        assert rep.err and up.stats.lane_requests == 0
        # Everything before is answered now: REPLAY_RUN takes the lane.
        rep = up.call(Op.REPLAY_RUN, [1, 0, 1])
        assert rep.err and 'no replay sequence' in rep.message
        assert up.stats.lane_requests == 1
        # A quiet request on the lane: what follows takes the lane as well, in order.
        up.send(Op.REPLAY_RUN, [1, 0, 1], quiet=True)
        data = up.call(Op.MEMCPY_DTOH, [ptr, 64, 0, 0])
        assert up.stats.lane_requests == 3
        assert bytes(data.frames[0]) == b'\x07' * 64
        # The quiet failure is reported by the next call that waits, as CUDA would.
        assert up.take_deferred() is not None
        # Answered: ordinary calls are back on ZeroMQ.
        up.call(Op.FREE, [ptr])
        assert up.stats.lane_requests == 3
    finally:
        up.close()


def test_lane_hello_must_name_a_live_session(server):
    s = socket.create_connection(('127.0.0.1', server.lane_port))
    s.sendall(lane_wire.LANE_HELLO + b'\x01' * 16)
    s.settimeout(5)
    assert s.recv(10) == b''      # closed by the server
    s.close()


@pytest.mark.parametrize('garbage', [b'GET / HTTP/1.0\r\n\r\n' + b'x' * 20,
                                     lane_wire.LANE_HELLO[:-1] + b'?' + b'\0' * 16])
def test_garbage_on_the_lane_port_is_dropped_and_the_server_serves_on(server, garbage):
    up = open_session(server)
    try:
        s = socket.create_connection(('127.0.0.1', server.lane_port))
        s.sendall(garbage)
        s.settimeout(5)
        assert s.recv(10) == b''
        s.close()
        # A message with a wrong frame on a real lane: that lane closes, the session lives.
        bad = socket.create_connection(('127.0.0.1', server.lane_port))
        bad.sendall(lane_wire.LANE_HELLO + up.sid + b'\xff' * 16)
        bad.settimeout(5)
        assert bad.recv(10) == b''
        bad.close()
        assert up.call(Op.MALLOC, [16]).err == 0
        assert up.wait(up.send(PING, [])).res == [1]
    finally:
        up.close()


def test_no_lane_with_curve_or_when_disabled(tmp_path):
    srv = Server(ServerConfig('tcp://127.0.0.1:*', 'emu', module_cache_dir=None,
                              lane_port=-1)).start()
    try:
        assert srv.lane_port is None
        up = Uplink(zmq.Context.instance(), srv.endpoint, server_timeout_s=5.0)
        rep = up.call(Op.HELLO, [1], pid=1, app='test')
        assert 'lane_port' not in rep.extra
        up.close()
    finally:
        srv.stop()
    zmq_auth.create_certificates(str(tmp_path), 'server')
    srv = Server(ServerConfig('tcp://127.0.0.1:*', 'emu', module_cache_dir=None,
                              curve_secret_key_file=str(tmp_path / 'server.key_secret')))
    try:
        assert srv.lane_port is None     # CURVE protects the ZeroMQ connection only
    finally:
        srv.stop()


def test_bad_lane_port_setting_is_refused():
    with pytest.raises(ValueError, match='lane_port'):
        ServerConfig(lane_port=70000).validate()


def test_session_end_closes_its_lane(server):
    up = open_session(server)
    lane = up.lane
    up.call(Op.BYE, [])
    deadline = time.monotonic() + 5
    closed = False
    while time.monotonic() < deadline and not closed:
        try:
            closed = lane.sock.recv(1) == b''
        except BlockingIOError:
            time.sleep(0.05)
    up.close()
    assert closed


def test_silent_connections_are_closed_and_do_not_crowd_out_lanes(server, monkeypatch):
    """Connections that never say hello (port scanners, stuck clients) are closed after
    HELLO_TIMEOUT_S, so real sessions still get their lanes."""
    from rrto_ros.server import lanes
    monkeypatch.setattr(lanes, 'HELLO_TIMEOUT_S', 0.2)
    idle = [socket.create_connection(('127.0.0.1', server.lane_port)) for _ in range(3)]
    for s in idle:
        s.settimeout(5)
        assert s.recv(10) == b''       # closed by the server's reaper (about 1 s)
        s.close()
    up = open_session(server)
    try:
        assert 'no replay sequence' in up.call(Op.REPLAY_RUN, [1, 0, 1]).message
        assert up.stats.lane_requests == 1
    finally:
        up.close()


def test_a_refused_lane_is_seen_at_once_and_the_session_keeps_zeromq():
    """With every lane slot taken, the server refuses a new lane by closing it; the client
    sees that when it opens the lane (no acknowledgement), not at its first replay."""
    srv = Server(ServerConfig('tcp://127.0.0.1:*', 'emu', module_cache_dir=None,
                              max_sessions=1)).start()
    hogs = [socket.create_connection(('127.0.0.1', srv.lane_port)) for _ in range(2)]
    try:
        time.sleep(0.3)                       # the server has accepted both
        up = open_session(srv, lane=False)
        with pytest.raises(OSError, match='did not accept'):
            up.open_lane(('127.0.0.1', srv.lane_port))
        assert up.lane is None
        assert 'no replay sequence' in up.call(Op.REPLAY_RUN, [1, 0, 1]).message
        assert up.stats.lane_requests == 0    # ZeroMQ carried it
        up.close()
    finally:
        for h in hogs:
            h.close()
        srv.stop()


def test_hello_on_a_lane_is_refused_and_the_session_stays(server):
    up = open_session(server)
    try:
        up.lane.send(encode_request(Request(up.sid, 99, Op.HELLO, [1], [], False, {})))
        deadline = time.monotonic() + 5
        msgs = []
        while not msgs and time.monotonic() < deadline:
            msgs = up.lane.receive()
            time.sleep(0.01)
        reply = decode_reply(msgs[0])
        assert reply.seq == 99 and reply.err and 'ZeroMQ' in reply.message
        assert server.session_count() == 1
        assert up.call(Op.MALLOC, [16]).err == 0
    finally:
        up.close()
