# Copyright 2026 rrto_ros authors. Apache-2.0.
"""The interposer's replay lane (interposer/lane.c) against a scripted client node
(fake_agent.py) and a scripted server lane: what travels where, and every way the lane can
fail. The real server on the lane: test_lane.py, test_replay_e2e.py."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
from typing import Callable, List, Optional

import pytest

from fake_agent import FakeAgent
from rrto_ros.client.lane import default_sodium_library
from rrto_ros.client.replay_table import compile_table
from rrto_ros.protocol import agent_wire as wire
from rrto_ros.protocol import lane_seal
from rrto_ros.protocol import lane_wire
from rrto_ros.protocol.ops import Op
from rrto_ros.record.calls import Call

SEQ_ID = 7
N, CHANGE_AT = 8, 5            # iterations of the test program; its memset changes here
CUDA_ERROR_DEVICES_UNAVAILABLE = 46
NOTE_BLOCKING, NOTE_LOST = 1, 2


KEY = b'\x33' * lane_seal.KEY_BYTES


class FakeLane:
    """The server's end of a lane: answers the hello and checks the app's proof with
    ``key`` (unless ``ack`` is False: it closes after the hello), then answers each request
    with ``answer(request)`` (None: no answer), sealed (``tamper`` flips a bit of the
    sealed answers)."""

    def __init__(self, answer: Callable[[lane_wire.LaneRequest], Optional[List[bytes]]],
                 ack: bool = True, key: bytes = KEY, tamper: bool = False) -> None:
        self.answer, self.ack, self.key, self.tamper = answer, ack, key, tamper
        self.requests: List[lane_wire.LaneRequest] = []
        self.hello = b''
        self.refused = ''
        self.raw = b''          # every byte the app sent after its hello
        self._sock = socket.create_server(('127.0.0.1', 0))
        self.port = self._sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        conn, _ = self._sock.accept()
        with conn:
            size = len(lane_wire.LANE_HELLO) + lane_wire.SID_BYTES + lane_seal.RANDOM_BYTES
            while len(self.hello) < size:
                self.hello += conn.recv(size - len(self.hello))
            if not self.ack:
                return
            mine = lane_seal.new_random()
            conn.sendall(mine)
            ckey = lane_seal.connection_key(self.key, self.hello[-lane_seal.RANDOM_BYTES:],
                                            mine)
            opener = lane_seal.Opener(ckey, lane_seal.TO_SERVER, 1 << 20)
            sealer = lane_seal.Sealer(ckey, lane_seal.TO_APP)
            proven = False
            while True:
                data = conn.recv(1 << 16)
                if not data:
                    return
                self.raw += data
                try:
                    frames = opener.feed(data)
                except lane_seal.LaneAuthError as e:
                    self.refused = str(e)
                    return
                for frame in frames:
                    if not proven:
                        proven = frame == lane_seal.PROOF
                        conn.sendall(sealer.seal(lane_wire.LANE_ACK))
                        continue
                    req = lane_wire.request_of(frame)
                    self.requests.append(req)
                    reply = self.answer(req)
                    if reply is not None:
                        record = bytearray(sealer.seal(b''.join(reply)))
                        if self.tamper:
                            record[-1] ^= 1
                        conn.sendall(bytes(record))

    def close(self) -> None:
        self._sock.close()


def memset_then_echo(req: lane_wire.LaneRequest) -> Optional[List[bytes]]:
    """What the GPU would answer: the input with its first 8 bytes set to 1."""
    if req.quiet:
        return None
    data = b'\x01' * 8 + bytes(req.payload)[8:] if req.payload else b''
    return lane_wire.encode_reply(req.seq, 0, (), data)


def table_after_two(agent_box: list, note_answer: Optional[Callable] = None):
    """Client node answers: the third inference's result copy brings a table of the
    inference just seen (its three calls), as the real client node would after recording."""
    dtohs = []

    def dtoh(req):
        dtohs.append(req)
        if len(dtohs) != 2:
            return 0, (), b'\x01' * 8 + b'\xee' * 56
        calls = [Call.from_request(Op(r.op), r.args, r.data) for r in agent_box[0].received[-3:]]
        return 0, (), b'\x01' * 8 + b'\xee' * 56, compile_table([(SEQ_ID, calls)], 0, 3)
    answers = {Op.MEMCPY_DTOH: dtoh}
    if note_answer is not None:
        answers[Op.REPLAY_NOTE] = note_answer
    return answers


def run(prog, interposer, lane_desc: bytes, note_answer: Optional[Callable] = None,
        timeout: float = 30):
    box: list = []
    answers = table_after_two(box, note_answer)
    answers[Op.HELLO] = lambda r: (0, (1,), lane_desc)
    agent = FakeAgent('replay', answers)
    box.append(agent)
    env = dict(os.environ, LD_PRELOAD=str(interposer), RRTO_AGENT_SOCKET=agent.path)
    env.pop('RRTO_TRACE', None)
    try:
        r = subprocess.run([str(prog), 'replay', str(N), str(CHANGE_AT)], env=env,
                           capture_output=True, text=True, timeout=timeout)
    finally:
        agent.close()
    return r, agent


def lines(r) -> dict:
    return {ln.split()[0]: ln.split()[1:] for ln in r.stdout.splitlines()}


def describe(port: int, timeout_ms: int = 5000, sid: bytes = b'\x5a' * 16,
             sodium: str = '') -> bytes:
    return lane_wire.describe('127.0.0.1', port, timeout_ms / 1000, sid, KEY,
                              sodium or default_sodium_library())


def test_replay_goes_on_the_lane_and_a_divergence_settles_it_first(local_answers, interposer):
    def answer(req):
        if req.quiet:    # the prefix flushed at the divergence fails on the "server"
            return lane_wire.encode_reply(req.seq, 1, message='scripted failure')
        return memset_then_echo(req)
    lane = FakeLane(answer)
    try:
        r, agent = run(local_answers, interposer, describe(lane.port))
    finally:
        lane.close()
    assert r.returncode == 0, r.stderr
    out = lines(r)
    for k in range(N):   # replayed: the lane's answer (1s, then the input); else the agent's
        assert out[f'iter{k}'] == ['0', '0', '0', '1', str(k if k in (2, 3, 4) else 0xee)]
    assert lane.hello[:-lane_seal.RANDOM_BYTES] == lane_wire.LANE_HELLO + b'\x5a' * 16
    assert bytes([2]) * 64 not in lane.raw       # the inputs travelled encrypted
    # Iterations 2..4 replayed on the lane: one blocking range each, with the input.
    blocking = [q for q in lane.requests if not q.quiet and q.start < q.end]
    assert [(q.seq_id, q.start, q.end, bytes(q.payload)) for q in blocking] == \
        [(SEQ_ID, 0, 3, bytes([k]) * 64) for k in (2, 3, 4)]
    # The client node heard of each range (and answered the blocking ones: the app went on).
    notes = [q for q in agent.received if q.op == Op.REPLAY_NOTE]
    assert [(n.args[:5]) for n in notes] == [(SEQ_ID, 0, 3, NOTE_BLOCKING, 64)] * 3 + \
        [(SEQ_ID, 0, 1, 0, 64)]
    assert notes[-1].args[5] > 4 * 64 and notes[-1].args[6] > 0    # lane bytes up, down
    assert notes[-1].flags & wire.F_NOREPLY and not notes[0].flags & wire.F_NOREPLY
    # At the change: the input copy ran (quiet, it failed), then a barrier was answered...
    quiet, barrier = lane.requests[-2:]
    assert (quiet.quiet, quiet.start, quiet.end, bytes(quiet.payload)) == \
        (True, 0, 1, bytes([CHANGE_AT]) * 64)
    assert (barrier.quiet, barrier.start, barrier.end) == (False, 1, 1)
    # ... and only then the client node took over, told of the failure for the app's next
    # blocking call; the changed memset and everything after went through it.
    diverge = next(q for q in agent.received if q.op == Op.REPLAY_DIVERGE)
    assert diverge.args == (SEQ_ID, 1, 1) and diverge.data == b'scripted failure'
    after = agent.received[agent.received.index(diverge) + 1:]
    assert after[0].op == Op.MEMSET and after[0].args[1] == 2
    assert len(lane.requests) == 5


def test_a_silent_lane_loses_the_session_and_says_so(local_answers, interposer):
    lane = FakeLane(lambda req: None)          # takes requests, never answers
    try:
        r, agent = run(local_answers, interposer, describe(lane.port, timeout_ms=300))
    finally:
        lane.close()
    out = lines(r)
    assert out['iter2'][2] == str(CUDA_ERROR_DEVICES_UNAVAILABLE)   # the result copy
    assert r.stderr.count('[rrto]') == 1 and 'stayed silent for 300 ms' in r.stderr
    lost = [q for q in agent.received if q.op == Op.REPLAY_NOTE and q.args[3] & NOTE_LOST]
    assert len(lost) == 1 and b'stayed silent for 300 ms' in lost[0].data
    # From then on the client node answers every call (here: the fake, which says yes).
    assert len(lane.requests) == 1


@pytest.mark.parametrize('case, says', [
    ('refused', 'the server did not accept it'),
    ('closed port', 'no replay lane to the rrto server at 127.0.0.1'),
    ('malformed', 'malformed replay lane description'),
    ('wrong key', 'the server refused its key'),
    ('no libsodium', 'cannot be loaded (/nonexistent/libsodium.so.23: cannot open shared '
     'object file'),
])
def test_without_a_usable_lane_replays_go_through_the_client_node(local_answers, interposer,
                                                                  case, says):
    lane = FakeLane(memset_then_echo, ack=case != 'refused',
                    key=b'\x34' * 32 if case == 'wrong key' else KEY)
    desc = {'refused': lambda: describe(lane.port),
            'closed port': lambda: describe(_closed_port()),
            'malformed': lambda: b'lane 127.0.0.1 not-a-port',
            'wrong key': lambda: describe(lane.port),
            'no libsodium': lambda: describe(lane.port,
                                             sodium='/nonexistent/libsodium.so.23')}[case]()
    try:
        r, agent = run(local_answers, interposer, desc)
    finally:
        lane.close()
    assert r.returncode == 0, r.stderr
    assert r.stderr.count('[rrto]') == 1 and says in r.stderr
    runs = [q for q in agent.received if q.op == Op.REPLAY_RUN]
    # Iterations 2..4 and the prefix flushed at the change, all through the client node.
    assert [q.args for q in runs] == [(SEQ_ID, 0, 3)] * 3 + [(SEQ_ID, 0, 1)]
    assert not any(q.op == Op.REPLAY_NOTE for q in agent.received)
    if case == 'wrong key':
        assert 'does not authenticate' in lane.refused and not lane.requests
    if case == 'no libsodium':
        assert 'Install libsodium23 (sudo apt-get install libsodium23)' in r.stderr
        assert lane.hello == b''              # nothing went out on the lane, plain or not


def test_an_answer_that_does_not_authenticate_loses_the_session(local_answers, interposer):
    lane = FakeLane(memset_then_echo, tamper=True)
    try:
        r, agent = run(local_answers, interposer, describe(lane.port))
    finally:
        lane.close()
    out = lines(r)
    assert out['iter2'][2] == str(CUDA_ERROR_DEVICES_UNAVAILABLE)   # the result copy
    assert r.stderr.count('[rrto]') == 1 and \
        'received a record that does not authenticate' in r.stderr
    lost = [q for q in agent.received if q.op == Op.REPLAY_NOTE and q.args[3] & NOTE_LOST]
    assert len(lost) == 1 and b'does not authenticate' in lost[0].data


def test_the_client_node_withdraws_the_table_in_its_answer_to_a_note(local_answers,
                                                                     interposer):
    lane = FakeLane(memset_then_echo)
    try:
        r, agent = run(local_answers, interposer, describe(lane.port),
                       note_answer=lambda r: (0, (), b'', b''))
    finally:
        lane.close()
    assert r.returncode == 0, r.stderr
    assert len(lane.requests) == 1          # iteration 2 only: then the table was gone
    note = next(i for i, q in enumerate(agent.received) if q.op == Op.REPLAY_NOTE)
    assert [Op(q.op) for q in agent.received[note + 1:note + 4]] == \
        [Op.MEMCPY_HTOD, Op.MEMSET, Op.MEMCPY_DTOH]
    assert not any(q.op == Op.REPLAY_DIVERGE for q in agent.received)
    assert wire.MODE_IDS['replay'] == agent.mode


def _closed_port() -> int:
    """A port nothing listens on."""
    with socket.create_server(('127.0.0.1', 0)) as s:
        return s.getsockname()[1]


@pytest.mark.parametrize('source', ['distribution', 'pyzmq wheel'])
def test_the_lane_works_with_either_libsodium(local_answers, interposer, source):
    """Debian's/Ubuntu's libsodium23, or the copy in pyzmq's wheel (a machine without the
    distribution's package, e.g. a venv from a wheelhouse)."""
    from rrto_ros.client.lane import pyzmq_bundled_sodium, SODIUM_SONAME, sodium_library
    libs = [SODIUM_SONAME] if source == 'distribution' else pyzmq_bundled_sodium()
    lib = sodium_library(libs) if libs else ''
    if not lib:
        pytest.skip(f'no libsodium from the {source} here')
    lane = FakeLane(memset_then_echo)
    try:
        r, agent = run(local_answers, interposer, describe(lane.port, sodium=lib))
    finally:
        lane.close()
    assert r.returncode == 0 and '[rrto]' not in r.stderr, r.stderr
    assert [(q.start, q.end) for q in lane.requests if not q.quiet][:3] == [(0, 3)] * 3
