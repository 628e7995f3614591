# Copyright 2026 rrto_ros authors. Apache-2.0.
"""The replay lane: its framing, where the client node says it is, and the server's
handling of lanes (here driven from Python the way the interposer drives them; the real
interposer on the lane: test_replay_e2e.py, test_failures_e2e.py)."""

from __future__ import annotations

import socket
import struct
import time
from typing import List

import msgpack
import pytest
import zmq
import zmq.auth as zmq_auth

from rrto_ros.client.lane import lane_address
from rrto_ros.client.lane import lane_descriptor
from rrto_ros.client.uplink import Uplink
from rrto_ros.protocol import lane_wire
from rrto_ros.protocol.messages import PING
from rrto_ros.protocol.messages import ProtocolError
from rrto_ros.protocol.ops import Op
from rrto_ros.server.server import Server
from rrto_ros.server.server import ServerConfig


@pytest.mark.parametrize('chunk', [1, 3, 7, 64, 100000])
def test_requests_survive_any_chunking(chunk):
    sent = [(1, 7, 0, 3, b'x' * 1000, True), (2, 7, 3, 5, b'', False),
            (3, 8, 0, 1, bytes(range(256)) * 40, False)]
    data = b''.join(lane_wire.encode_request(*r[:5], quiet=r[5]) for r in sent)
    reader = lane_wire.RequestReader(1 << 20)
    got = []
    for i in range(0, len(data), chunk):
        got += reader.feed(data[i:i + chunk])
    assert [(r.seq, r.seq_id, r.start, r.end, bytes(r.payload), r.quiet) for r in got] == sent


def test_replies_round_trip():
    rep = lane_wire.reply_of(lane_wire.encode_reply(9, 0, [1, 2 ** 64 - 1], b'\x01' * 40))
    assert (rep.seq, rep.err, rep.res, rep.data, rep.message) == \
        (9, 0, [1, 2 ** 64 - 1], b'\x01' * 40, '')
    rep = lane_wire.reply_of(lane_wire.encode_reply(10, 1, message='out of step'))
    assert (rep.err, rep.res, rep.data, rep.message) == (1, [], b'', 'out of step')
    # No empty buffer goes to sendmsg (a zero-length part once stalled the server).
    assert all(len(b) for b in lane_wire.encode_reply(11, 0))


def test_bad_frames_are_protocol_errors():
    with pytest.raises(ProtocolError, match='bad magic'):
        lane_wire.RequestReader(100).feed(b'\0' * 32)
    with pytest.raises(ProtocolError, match='exceeds'):
        lane_wire.RequestReader(100).feed(lane_wire.encode_request(1, 1, 0, 1, b'x' * 101))
    with pytest.raises(ProtocolError, match='results'):
        lane_wire.ReplyReader(1000).feed(lane_wire.REP.pack(lane_wire.REP_MAGIC, 0, 1, 17, 0, 0))


def test_lane_address_and_descriptor():
    assert lane_address('tcp://edge:5555', 6000) == ('edge', 6000)
    assert lane_address('tcp://edge:5555', 6000, 'tcp://10.0.0.2:7000') == ('10.0.0.2', 7000)
    with pytest.raises(ValueError, match='tcp://HOST:PORT'):
        lane_address('tcp://edge:5555', 6000, 'edge:7000')
    # The interposer does no name lookups: the client node hands it a numeric address.
    desc = lane_descriptor('tcp://localhost:5555', 6000, '', 2.5, b'\xab' * 16).decode()
    kind, host, port, timeout_ms, sid = desc.split()
    assert (kind, port, timeout_ms, sid) == ('lane', '6000', '2500', 'ab' * 16)
    assert host in ('127.0.0.1', '::1')
    with pytest.raises(OSError):
        lane_descriptor('tcp://no-such-host.invalid:5555', 6000, '', 1.0, b'\0' * 16)


# ----------------------------------------------------------------- the server's lanes
@pytest.fixture
def server():
    srv = Server(ServerConfig('tcp://127.0.0.1:*', 'emu', module_cache_dir=None)).start()
    yield srv
    srv.stop()


def open_session(srv: Server) -> Uplink:
    up = Uplink(zmq.Context.instance(), srv.endpoint, server_timeout_s=5.0)
    rep = up.call(Op.HELLO, [1], pid=1, app='test')
    assert rep.err == 0
    up.sid = rep.extra['sid']
    assert rep.extra['lane_port'] == srv.lane_port
    return up


class Lane:
    """A lane client like the interposer's."""

    def __init__(self, srv: Server, sid: bytes) -> None:
        self.sock = socket.create_connection(('127.0.0.1', srv.lane_port), timeout=5)
        self.sock.sendall(lane_wire.LANE_HELLO + sid)
        try:
            self.acked = self.sock.recv(1) == lane_wire.LANE_ACK
        except ConnectionResetError:   # closed with the hello unread
            self.acked = False
        self.reader = lane_wire.ReplyReader(1 << 20)
        self.seq = 0

    def send(self, seq_id: int, start: int, end: int, payload: bytes = b'',
             quiet: bool = False) -> int:
        self.seq += 1
        self.sock.sendall(lane_wire.encode_request(self.seq, seq_id, start, end, payload,
                                                   quiet))
        return self.seq

    def replies(self, n: int = 1) -> List[lane_wire.LaneReply]:
        got: List[lane_wire.LaneReply] = []
        while len(got) < n:
            data = self.sock.recv(1 << 16)
            assert data, 'the server closed the lane'
            got += self.reader.feed(data)
        return got

    def closed_by_server(self) -> bool:
        try:
            return self.sock.recv(10) == b''
        except ConnectionResetError:
            return True

    def close(self) -> None:
        self.sock.close()


def load_echo_sequence(up: Uplink, seq_id: int = 1) -> int:
    """A two-entry sequence on a fresh allocation: copy 64 input bytes in, copy them out."""
    ptr = up.call(Op.MALLOC, [64]).res[0]
    rows = [[int(Op.MEMCPY_HTOD), [ptr, 0, 0], b'', 64],
            [int(Op.MEMCPY_DTOH), [ptr, 64, 0, 0], b'', 0]]
    rep = up.call(Op.REPLAY_LOAD, [seq_id, 0], [msgpack.packb(rows, use_bin_type=True)])
    assert rep.err == 0, rep.message
    return ptr


def test_replay_ranges_run_on_the_lane_in_order(server):
    up = open_session(server)
    lane = Lane(server, up.sid)
    try:
        assert lane.acked
        load_echo_sequence(up)
        for k in range(3):                        # three inferences, one message each
            data = bytes([k]) * 64
            seq = lane.send(1, 0, 2, data)
            (rep,) = lane.replies()
            assert (rep.seq, rep.err, rep.data) == (seq, 0, data)
        # Quiet ranges get no answer unless they fail; a barrier (an empty range at the
        # sequence's position) is answered after everything before it.
        lane.send(1, 0, 1, b'\x07' * 64, quiet=True)
        seq = lane.send(1, 1, 1)
        (rep,) = lane.replies()
        assert (rep.seq, rep.err) == (seq, 0)
        seq = lane.send(1, 1, 2)
        assert lane.replies()[0].data == b'\x07' * 64
        # A failing quiet range is answered, with its sequence number and the reason.
        bad = lane.send(1, 1, 2, quiet=True)       # out of step: the sequence is at its end
        rep = lane.replies()[0]
        assert rep.seq == bad and rep.err and 'out of step' in rep.message
        # Wrong payload size and an unknown sequence: errors, the lane stays open.
        lane.send(1, 0, 2, b'short')
        assert 'input bytes' in lane.replies()[0].message
        lane.send(99, 0, 1)
        assert 'no replay sequence 99' in lane.replies()[0].message
        assert server.stats.requests >= 9
        assert up.call(Op.MALLOC, [16]).err == 0   # ZeroMQ serves the session as before
    finally:
        lane.close()
        up.close()


def test_lane_hello_must_name_a_live_session_and_one_lane_each(server):
    lane = Lane(server, b'\x01' * 16)
    assert not lane.acked                          # closed by the server
    lane.close()
    up = open_session(server)
    first, second = Lane(server, up.sid), Lane(server, up.sid)
    try:
        assert first.acked and not second.acked
    finally:
        first.close()
        second.close()
        up.close()


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
        # A wrong frame on a real lane: that lane closes, the session lives.
        lane = Lane(server, up.sid)
        lane.sock.sendall(b'\xff' * 32)
        assert lane.closed_by_server()
        lane.close()
        assert up.call(Op.MALLOC, [16]).err == 0
        assert up.wait(up.send(PING, [])).res == [1]
        # Its slot is free again: the session may open a new lane.
        again = Lane(server, up.sid)
        assert again.acked
        again.close()
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
                              security='curve', curve_allowed_clients_dir=str(tmp_path),
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
    lane = Lane(server, up.sid)
    assert lane.acked
    up.call(Op.BYE, [])
    up.close()
    assert lane.closed_by_server()       # within the reaper's second
    lane.close()


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
    lane = Lane(server, up.sid)
    try:
        assert lane.acked
        lane.send(1, 0, 1)
        assert 'no replay sequence' in lane.replies()[0].message
    finally:
        lane.close()
        up.close()


def test_too_many_lanes_are_refused():
    srv = Server(ServerConfig('tcp://127.0.0.1:*', 'emu', module_cache_dir=None,
                              max_sessions=1)).start()
    hogs = [socket.create_connection(('127.0.0.1', srv.lane_port)) for _ in range(2)]
    try:
        time.sleep(0.3)                       # the server has accepted both
        up = open_session(srv)
        lane = Lane(srv, up.sid)
        assert not lane.acked                 # what the interposer sees: no acknowledgement
        lane.close()
        up.close()
    finally:
        for h in hogs:
            h.close()
        srv.stop()


def test_lane_structs_match_the_interposer_header():
    """The C header and this module describe the same bytes."""
    from rrto_ros.interposer import build
    header = (build.HERE / 'rrto_wire.h').read_text()
    assert f'"{lane_wire.LANE_HELLO.decode()[:-1]}\\n"' in header
    assert f'0x{lane_wire.REQ_MAGIC:08x}u' in header and f'0x{lane_wire.REP_MAGIC:08x}u' in header
    for name, fmt in (('rrto_lane_req', lane_wire.REQ), ('rrto_lane_rep', lane_wire.REP)):
        body = header.split(f'struct {name} {{')[1].split('};')[0]
        sizes = {'uint32_t': 4, 'int32_t': 4, 'uint64_t': 8}
        assert sum(sizes[line.split()[0]] for line in body.strip().splitlines()) == \
            struct.calcsize(fmt.format)
