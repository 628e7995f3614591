# Copyright 2026 rrto_ros authors. Apache-2.0.
"""The replay lane: its framing, where the client node says it is, and the server's
handling of lanes (here driven from Python the way the interposer drives them; the real
interposer on the lane: test_replay_e2e.py, test_failures_e2e.py)."""

from __future__ import annotations

import logging
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
from rrto_ros.client.lane import pyzmq_bundled_sodium
from rrto_ros.client.lane import sodium_library
from rrto_ros.client.lane import SODIUM_SONAME
from rrto_ros.client.uplink import Uplink
from rrto_ros.protocol import lane_seal
from rrto_ros.protocol import lane_wire
from rrto_ros.protocol.messages import PING
from rrto_ros.protocol.messages import ProtocolError
from rrto_ros.protocol.ops import Op
from rrto_ros.server.server import Server
from rrto_ros.server.server import ServerConfig


KEY = b'\x33' * lane_seal.KEY_BYTES


def pair(key: bytes = KEY, direction: int = lane_seal.TO_SERVER, limit: int = 1 << 20):
    return lane_seal.Sealer(key, direction), lane_seal.Opener(key, direction, limit)


@pytest.mark.parametrize('chunk', [1, 3, 7, 64, 100000])
def test_sealed_requests_survive_any_chunking(chunk):
    sent = [(1, 7, 0, 3, b'x' * 1000, True), (2, 7, 3, 5, b'', False),
            (3, 8, 0, 1, bytes(range(256)) * 40, False)]
    sealer, opener = pair()
    data = b''.join(sealer.seal(lane_wire.encode_request(*r[:5], quiet=r[5])) for r in sent)
    assert b'x' * 32 not in data          # the payload does not travel in plain
    got = []
    for i in range(0, len(data), chunk):
        got += [lane_wire.request_of(f) for f in opener.feed(data[i:i + chunk])]
    assert [(r.seq, r.seq_id, r.start, r.end, bytes(r.payload), r.quiet) for r in got] == sent


def test_records_that_do_not_authenticate_are_refused():
    sealer, _ = pair()
    first, second = sealer.seal(b'first'), sealer.seal(b'second')
    # A wrong key, the other direction's nonces.
    for opener in (pair(b'\x34' * 32)[1], pair(direction=lane_seal.TO_APP)[1]):
        with pytest.raises(lane_seal.LaneAuthError, match='does not authenticate'):
            opener.feed(first)
    # An altered byte, in the ciphertext or in the length it authenticates.
    for at in (4, len(first) - 1):
        bad = bytearray(first)
        bad[at] ^= 1
        with pytest.raises(lane_seal.LaneAuthError):
            pair()[1].feed(bytes(bad))
    # A record replayed, or records reordered.
    opener = pair()[1]
    assert opener.feed(first) == [b'first']
    with pytest.raises(lane_seal.LaneAuthError):
        opener.feed(first)
    with pytest.raises(lane_seal.LaneAuthError):
        pair()[1].feed(second + first)
    # A length over the limit is refused before the record is read.
    with pytest.raises(ProtocolError, match='lane record of'):
        pair(limit=100)[1].feed(lane_seal.LEN.pack(200) + b'x')


def test_connection_keys_are_fresh_per_connection():
    a, b = lane_seal.new_random(), lane_seal.new_random()
    k = lane_seal.connection_key(KEY, a, b)
    assert len(k) == 32 and k not in (lane_seal.connection_key(KEY, b, a),
                                      lane_seal.connection_key(KEY, a, a),
                                      lane_seal.connection_key(b'\x34' * 32, a, b))
    # The interposer's libsodium computes the same key (crypto_generichash, keyed BLAKE2b).
    import ctypes
    from rrto_ros.client.lane import default_sodium_library
    lib = default_sodium_library()
    if not lib:
        pytest.skip('no libsodium here')
    sodium = ctypes.CDLL(lib)
    out = ctypes.create_string_buffer(32)
    msg = lane_seal.CONTEXT + a + b
    assert sodium.crypto_generichash(out, ctypes.c_size_t(32), msg, ctypes.c_ulonglong(len(msg)),
                                     KEY, ctypes.c_size_t(32)) == 0
    assert out.raw == k


def test_replies_round_trip():
    def back(*args, **kw):
        return lane_wire.reply_of(b''.join(lane_wire.encode_reply(*args, **kw)))
    rep = back(9, 0, [1, 2 ** 64 - 1], b'\x01' * 40)
    assert (rep.seq, rep.err, rep.res, rep.data, rep.message) == \
        (9, 0, [1, 2 ** 64 - 1], b'\x01' * 40, '')
    rep = back(10, 1, message='out of step')
    assert (rep.err, rep.res, rep.data, rep.message) == (1, [], b'', 'out of step')
    assert all(len(b) for b in lane_wire.encode_reply(11, 0))


def test_bad_frames_are_protocol_errors():
    with pytest.raises(ProtocolError, match='bad magic'):
        lane_wire.request_of(b'\0' * 32)
    with pytest.raises(ProtocolError, match='announces 101 payload bytes'):
        lane_wire.request_of(lane_wire.encode_request(1, 1, 0, 1, b'x' * 101)[:-1])
    with pytest.raises(ProtocolError, match='header'):
        lane_wire.request_of(b'\0' * 8)
    with pytest.raises(ProtocolError, match='results'):
        lane_wire.reply_of(lane_wire.REP.pack(lane_wire.REP_MAGIC, 0, 1, 17, 0, 0))
    with pytest.raises(ProtocolError, match='do not add up'):
        lane_wire.reply_of(lane_wire.REP.pack(lane_wire.REP_MAGIC, 0, 1, 0, 5, 0))


def test_lane_address_and_descriptor():
    assert lane_address('tcp://edge:5555', 6000) == ('edge', 6000)
    assert lane_address('tcp://edge:5555', 6000, 'tcp://10.0.0.2:7000') == ('10.0.0.2', 7000)
    with pytest.raises(ValueError, match='tcp://HOST:PORT'):
        lane_address('tcp://edge:5555', 6000, 'edge:7000')
    # The interposer does no name lookups: the client node hands it a numeric address.
    desc = lane_descriptor('tcp://localhost:5555', 6000, '', 2.5, b'\xab' * 16, KEY,
                           'libsodium.so.23').decode()
    kind, host, port, timeout_ms, sid, key, lib = desc.split()
    assert (kind, port, timeout_ms, sid, key, lib) == \
        ('lane', '6000', '2500', 'ab' * 16, '33' * 32, 'libsodium.so.23')
    assert host in ('127.0.0.1', '::1')
    with pytest.raises(OSError):
        lane_descriptor('tcp://no-such-host.invalid:5555', 6000, '', 1.0, b'\0' * 16, KEY, 'x')


def test_the_libsodium_the_interposer_loads():
    """The distribution's libsodium23 or pyzmq's bundled copy; none: '' (lane off)."""
    found = sodium_library()
    assert found in (SODIUM_SONAME, *pyzmq_bundled_sodium()) and found
    for lib in [SODIUM_SONAME] + pyzmq_bundled_sodium():
        assert sodium_library([lib]) == lib    # each has every symbol lane.c calls
    assert sodium_library(['/nonexistent/libsodium.so.23', 'libc.so.6', '/a b/x.so']) == ''


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
    up.lane_key = rep.extra['lane_key']
    assert rep.extra['lane_port'] == srv.lane_port and len(up.lane_key) == 32
    return up


class Lane:
    """A lane client like the interposer's: hello, the server's random, the proof and its
    acknowledgement (``key``: the lane key it uses; ``acked``: the server took it)."""

    def __init__(self, srv: Server, sid: bytes, key: bytes = KEY) -> None:
        self.sock = socket.create_connection(('127.0.0.1', srv.lane_port), timeout=5)
        mine = lane_seal.new_random()
        self.sock.sendall(lane_wire.LANE_HELLO + sid + mine)
        self.acked = False
        try:
            theirs = self._exactly(lane_seal.RANDOM_BYTES)
            if theirs is None:
                return
            ckey = lane_seal.connection_key(key, mine, theirs)
            self.sealer = lane_seal.Sealer(ckey, lane_seal.TO_SERVER)
            self.opener = lane_seal.Opener(ckey, lane_seal.TO_APP, 1 << 20)
            self.sock.sendall(self.sealer.seal(lane_seal.PROOF))
            self.acked = self.frames(1) == [lane_wire.LANE_ACK]
        except (ConnectionResetError, AssertionError):   # closed by the server
            pass
        self.seq = 0

    def _exactly(self, n: int):
        data = b''
        while len(data) < n:
            got = self.sock.recv(n - len(data))
            if not got:
                return None
            data += got
        return data

    def send_frame(self, frame: bytes) -> None:
        self.sock.sendall(self.sealer.seal(frame))

    def send(self, seq_id: int, start: int, end: int, payload: bytes = b'',
             quiet: bool = False) -> int:
        self.seq += 1
        self.send_frame(lane_wire.encode_request(self.seq, seq_id, start, end, payload, quiet))
        return self.seq

    def frames(self, n: int) -> List[bytes]:
        got: List[bytes] = []
        while len(got) < n:
            data = self.sock.recv(1 << 16)
            assert data, 'the server closed the lane'
            got += self.opener.feed(data)
        return got

    def replies(self, n: int = 1) -> List[lane_wire.LaneReply]:
        return [lane_wire.reply_of(f) for f in self.frames(n)]

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
    lane = Lane(server, up.sid, up.lane_key)
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
    first, second = Lane(server, up.sid, up.lane_key), Lane(server, up.sid, up.lane_key)
    try:
        assert first.acked and not second.acked
    finally:
        first.close()
        second.close()
        up.close()


@pytest.mark.parametrize('garbage', [b'GET / HTTP/1.0\r\n\r\n' + b'x' * 30,
                                     lane_wire.LANE_HELLO[:-1] + b'?' + b'\0' * 32])
def test_garbage_on_the_lane_port_is_dropped_and_the_server_serves_on(server, garbage):
    up = open_session(server)
    try:
        s = socket.create_connection(('127.0.0.1', server.lane_port))
        s.sendall(garbage)
        s.settimeout(5)
        assert s.recv(10) == b''
        s.close()
        # A wrong frame on a real lane: that lane closes, the session lives.
        lane = Lane(server, up.sid, up.lane_key)
        lane.sock.sendall(b'\xff' * 32)
        assert lane.closed_by_server()
        lane.close()
        assert up.call(Op.MALLOC, [16]).err == 0
        assert up.wait(up.send(PING, [])).res == [1]
        # Its slot is free again: the session may open a new lane.
        again = Lane(server, up.sid, up.lane_key)
        assert again.acked
        again.close()
    finally:
        up.close()


def test_lane_refused_without_its_key_and_the_server_says_why(server, caplog):
    caplog.set_level(logging.INFO, 'rrto_ros')
    up = open_session(server)
    try:
        wrong = Lane(server, up.sid, b'\x34' * 32)
        assert not wrong.acked and wrong.closed_by_server()
        wrong.close()
        refused = [r.getMessage() for r in caplog.records if 'refused' in r.getMessage()]
        assert any(f'for session {up.sid.hex()[:8]} refused: its first record does not '
                   'authenticate: wrong lane key' in m for m in refused), refused
        # Records before the server's random, a first record that is not the proof.
        early = socket.create_connection(('127.0.0.1', server.lane_port), timeout=5)
        early.sendall(lane_wire.LANE_HELLO + up.sid + lane_seal.new_random() + b'\0' * 20)
        assert early.recv(100) == b'' or early.recv(100) == b''
        early.close()
        # The right key still opens it: a refused connection takes no slot.
        lane = Lane(server, up.sid, up.lane_key)
        assert lane.acked
        lane.send(1, 0, 1)
        assert 'no replay sequence' in lane.replies()[0].message
        lane.close()
    finally:
        up.close()


@pytest.mark.parametrize('attack', ['tampered', 'replayed', 'reordered'])
def test_an_altered_replayed_or_reordered_record_closes_the_lane(server, attack, caplog):
    caplog.set_level(logging.INFO, 'rrto_ros')
    up = open_session(server)
    try:
        load_echo_sequence(up)
        lane = Lane(server, up.sid, up.lane_key)
        first = lane.sealer.seal(lane_wire.encode_request(1, 1, 0, 2, b'\x05' * 64))
        lane.sock.sendall(first)
        assert lane.replies()[0].data == b'\x05' * 64
        second = lane.sealer.seal(lane_wire.encode_request(2, 1, 0, 2, b'\x06' * 64))
        third = lane.sealer.seal(lane_wire.encode_request(3, 1, 0, 2, b'\x07' * 64))
        if attack == 'tampered':
            bad = bytearray(second)
            bad[40] ^= 0x80
            lane.sock.sendall(bytes(bad))
        elif attack == 'replayed':
            lane.sock.sendall(first)
        else:
            lane.sock.sendall(third + second)
        assert lane.closed_by_server()
        lane.close()
        closed = [r.getMessage() for r in caplog.records if 'replay lane closed' in
                  r.getMessage()]
        assert closed and 'does not authenticate' in closed[-1]
        assert up.call(Op.MALLOC, [16]).err == 0    # the session lives on, on ZeroMQ
    finally:
        up.close()


def test_lane_on_with_curve_off_when_disabled_or_without_pynacl(tmp_path, monkeypatch, caplog):
    srv = Server(ServerConfig('tcp://127.0.0.1:*', 'emu', module_cache_dir=None,
                              lane_port=-1)).start()
    try:
        assert srv.lane_port is None
        up = Uplink(zmq.Context.instance(), srv.endpoint, server_timeout_s=5.0)
        rep = up.call(Op.HELLO, [1], pid=1, app='test')
        assert 'lane_port' not in rep.extra and 'lane_key' not in rep.extra
        up.close()
    finally:
        srv.stop()
    zmq_auth.create_certificates(str(tmp_path), 'server')
    curve = dict(security='curve', curve_allowed_clients_dir=str(tmp_path),
                 curve_secret_key_file=str(tmp_path / 'server.key_secret'))
    srv = Server(ServerConfig('tcp://127.0.0.1:*', 'emu', module_cache_dir=None, **curve))
    try:
        assert srv.lane_port            # encrypted like the ZeroMQ link: on with CURVE
    finally:
        srv.stop()
    from rrto_ros.server import server as server_mod
    monkeypatch.setattr(server_mod.lane_seal, 'UNAVAILABLE', 'PyNaCl is not installed (x); '
                        'install it (pip install pynacl, or apt-get install python3-nacl)')
    caplog.set_level(logging.INFO, 'rrto_ros')
    srv = Server(ServerConfig('tcp://127.0.0.1:*', 'emu', module_cache_dir=None, **curve))
    try:
        assert srv.lane_port is None
    finally:
        srv.stop()
    off = [r.getMessage() for r in caplog.records if 'replay lane off' in r.getMessage()]
    assert len(off) == 1 and 'pip install pynacl' in off[0]


def test_bad_lane_port_setting_is_refused():
    with pytest.raises(ValueError, match='lane_port'):
        ServerConfig(lane_port=70000).validate()


def test_session_end_closes_its_lane(server):
    up = open_session(server)
    lane = Lane(server, up.sid, up.lane_key)
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
    lane = Lane(server, up.sid, up.lane_key)
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
        lane = Lane(srv, up.sid, up.lane_key)
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
    assert f'#define RRTO_LANE_PROOF "{lane_seal.PROOF.decode()}"' in header
    for name, value in (('RANDOM', lane_seal.RANDOM_BYTES), ('KEY', lane_seal.KEY_BYTES),
                        ('TAG', lane_seal.TAG_BYTES)):
        assert f'#define RRTO_LANE_{name}_BYTES {value}\n' in header
    assert f'0x{lane_wire.REQ_MAGIC:08x}u' in header and f'0x{lane_wire.REP_MAGIC:08x}u' in header
    for name, fmt in (('rrto_lane_req', lane_wire.REQ), ('rrto_lane_rep', lane_wire.REP)):
        body = header.split(f'struct {name} {{')[1].split('};')[0]
        sizes = {'uint32_t': 4, 'int32_t': 4, 'uint64_t': 8}
        assert sum(sizes[line.split()[0]] for line in body.strip().splitlines()) == \
            struct.calcsize(fmt.format)
