# Copyright 2026 rrto_ros authors. Apache-2.0.
"""CURVE on the client node <-> server link, over real ZeroMQ on loopback: allowed robots
connect; an unknown key, a wrong server key or mismatched security settings are each told in
one line naming the fix (not a bare timeout); running open logs a warning; the key tool."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
import time

import pytest
import zmq
import zmq.auth

from rrto_ros.client.uplink import HandshakeFailed, ServerLost, Uplink
from rrto_ros.protocol import keys
from rrto_ros.protocol.curve import client_keys, CurveError, server_keys
from rrto_ros.protocol.ops import Op
from rrto_ros.server.auth import AllowListError
from rrto_ros.server.server import Server, ServerConfig

pytestmark = pytest.mark.skipif(not zmq.has('curve'), reason='libzmq without CURVE')


@pytest.fixture
def made(tmp_path):
    """An edge and a robot's keys in one directory, the robot allowed."""
    return keys.one_machine(str(tmp_path / 'keys'))


def curve_server(made, **options) -> Server:
    return Server(ServerConfig('tcp://127.0.0.1:*', 'emu', module_cache_dir=None,
                               **keys.server_parameters(made), **options)).start()


def hello(endpoint: str, curve, timeout_s: float = 1.0) -> int:
    link = Uplink(zmq.Context.instance(), endpoint, server_timeout_s=timeout_s,
                  heartbeat_s=0.2, curve=curve)
    try:
        return link.call(Op.HELLO, [1]).err
    finally:
        link.close()


def robot_curve(made, secret=None, server=None):
    return client_keys(secret or made['robot_secret'], server or made['server_public'])


def test_allowed_robot_connects_and_the_lane_is_on(made, caplog):
    caplog.set_level(logging.INFO, 'rrto_ros')
    srv = curve_server(made)
    try:
        assert hello(srv.endpoint, robot_curve(made)) == 0
        assert srv.lane_port     # the lane is encrypted too (protocol/lane_seal.py)
    finally:
        srv.stop()
    assert not [r for r in caplog.records if 'replay lane off' in r.getMessage()]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_unknown_key_is_refused_at_once_naming_rrto_keys_allow(made, tmp_path, caplog):
    caplog.set_level(logging.INFO, 'rrto_ros')
    intruder = tmp_path / 'intruder'
    public, secret = keys.init_robot('intruder', str(intruder))
    srv = curve_server(made)
    try:
        t0 = time.monotonic()
        with pytest.raises(HandshakeFailed) as e:
            hello(srv.endpoint, robot_curve(made, secret=secret), timeout_s=30.0)
        assert time.monotonic() - t0 < 20   # at the refusal, not at the timeout
        text = str(e.value)
        assert '\n' not in text
        assert f"the rrto server at {srv.endpoint} refused this robot's key" in text, text
        assert f'copy {public} to the edge and run `rrto-keys allow intruder.key`' in text
        refused = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert any(keys.public_key(public) in m and 'rrto-keys allow' in m for m in refused)
        # Allowed on the edge: the running server reads its allow-list again.
        keys.allow(public, os.path.dirname(made['allowed_dir']))
        assert hello(srv.endpoint, robot_curve(made, secret=secret)) == 0
    finally:
        srv.stop()


def test_wrong_server_key_names_curve_server_key_file(made, tmp_path):
    other = tmp_path / 'other'
    public, _ = keys.init_server(str(other))
    srv = curve_server(made)
    try:
        with pytest.raises(HandshakeFailed) as e:
            hello(srv.endpoint, robot_curve(made, server=public), timeout_s=1.0)
        text = str(e.value)
        assert f'the CURVE handshake with the rrto server at {srv.endpoint} fails' in text
        assert public in text and 'check curve_server_key_file' in text, text
    finally:
        srv.stop()


def test_open_client_at_a_curve_server_and_the_reverse(made, caplog):
    srv = curve_server(made)
    try:
        with pytest.raises(HandshakeFailed, match='requires CURVE .*set security curve'):
            hello(srv.endpoint, None, timeout_s=30.0)
    finally:
        srv.stop()
    caplog.set_level(logging.WARNING, 'rrto_ros')
    srv = Server(ServerConfig('tcp://127.0.0.1:*', 'emu', module_cache_dir=None,
                              security='open', lane_port=-1)).start()
    try:
        with pytest.raises(HandshakeFailed, match='runs without CURVE .*same security'):
            hello(srv.endpoint, robot_curve(made), timeout_s=30.0)
        assert hello(srv.endpoint, None) == 0
    finally:
        srv.stop()
    opened = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(m.startswith('security open: the link tcp://127.0.0.1:* is neither '
                            'authenticated nor encrypted') for m in opened), opened


def test_no_server_is_still_a_plain_timeout(made):
    from rrto_ros.stack import free_tcp_port
    with pytest.raises(ServerLost) as e:
        hello(f'tcp://127.0.0.1:{free_tcp_port()}', robot_curve(made), timeout_s=0.5)
    assert not isinstance(e.value, HandshakeFailed) and 'no answer' in str(e.value)


def test_curve_server_needs_its_keys_and_allow_list(made, tmp_path):
    with pytest.raises(CurveError, match='rrto-keys init-server'):
        Server(ServerConfig('tcp://127.0.0.1:*', 'emu', module_cache_dir=None,
                            security='curve', curve_allowed_clients_dir=made['allowed_dir']))
    with pytest.raises(AllowListError, match='does not exist: `rrto-keys init-server`'):
        Server(ServerConfig('tcp://127.0.0.1:*', 'emu', module_cache_dir=None,
                            security='curve', curve_secret_key_file=made['server_secret'],
                            curve_allowed_clients_dir=str(tmp_path / 'nowhere')))
    with pytest.raises(ValueError, match="security must be 'curve'"):
        ServerConfig(security='closed').validate()


def test_bad_key_files_are_named(made, tmp_path):
    with pytest.raises(CurveError, match='does not exist: make it with `rrto-keys init-server'):
        server_keys(str(tmp_path / 'missing.key_secret'))
    with pytest.raises(CurveError, match='no secret key'):
        server_keys(made['server_public'])
    with pytest.raises(CurveError, match='both'):
        client_keys(made['robot_secret'], '')
    with pytest.raises(CurveError, match="copy the edge's server.key"):
        client_keys(made['robot_secret'], str(tmp_path / 'server.key'))


# ----------------------------------------------------------------- rrto-keys
def rrto_keys(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, '-m', 'rrto_ros.cli.keys_main', *args],
                          capture_output=True, text=True, timeout=30)


def test_rrto_keys_commands(tmp_path):
    edge, robot = str(tmp_path / 'edge'), str(tmp_path / 'robot')
    r = rrto_keys('--dir', edge, 'init-server')
    assert r.returncode == 0 and 'next: copy' in r.stdout, r.stderr
    assert stat.S_IMODE(os.stat(edge).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(keys.server_secret_file(edge)).st_mode) == 0o600
    assert os.path.isdir(keys.allowed_clients_dir(edge))
    r = rrto_keys('init-robot', 'robot-1', '--dir', robot)
    assert r.returncode == 0 and 'rrto-keys allow robot-1.key' in r.stdout, r.stderr
    assert stat.S_IMODE(os.stat(keys.robot_secret_file(robot)).st_mode) == 0o600
    assert keys.metadata(keys.robot_secret_file(robot))['name'] == 'robot-1'
    robot_public = os.path.join(robot, 'robot-1.key')
    r = rrto_keys('--dir', edge, 'allow', robot_public)
    assert r.returncode == 0 and 'robot robot-1 is allowed' in r.stdout, r.stderr
    assert keys.allowed(edge) == [('robot-1', keys.public_key(robot_public))]
    assert 'allowed already' in rrto_keys('--dir', edge, 'allow', robot_public).stdout
    r = rrto_keys('--dir', edge, 'list')
    assert r.returncode == 0 and 'allowed robots  1' in r.stdout and 'robot-1' in r.stdout
    assert keys.public_key(keys.server_public_file(edge)) in r.stdout
    # Refusals name the problem and the way out.
    for args, message in [
            (('--dir', edge, 'init-server'), 'exists already'),
            (('--dir', edge, 'allow', keys.robot_secret_file(robot)), 'holds a secret key'),
            (('--dir', edge, 'allow', str(tmp_path / 'nope.key')), 'does not exist'),
            (('--dir', robot, 'init-robot', 'bad/name'), 'is not usable'),
            (('--dir', robot, 'init-robot', 'robot-2'), 'exists already')]:
        r = rrto_keys(*args)
        assert r.returncode == 2 and message in r.stderr, (args, r.stderr)
        assert 'Traceback' not in r.stderr
    # Another robot under a name taken already needs --name.
    other = str(tmp_path / 'other')
    keys.init_robot('robot-1', other)
    r = rrto_keys('--dir', edge, 'allow', os.path.join(other, 'robot-1.key'))
    assert r.returncode == 2 and '--name' in r.stderr
    r = rrto_keys('--dir', edge, 'allow', os.path.join(other, 'robot-1.key'), '--name', 'r2')
    assert r.returncode == 0 and [n for n, _ in keys.allowed(edge)] == ['r2', 'robot-1']


def test_an_allow_list_sees_files_only_whole(made):
    """rrto-keys allow renames a finished file into the list, so a server never reads half a
    key; a file that is no certificate is skipped with a warning, not fatal."""
    with open(os.path.join(made['allowed_dir'], 'junk.key'), 'w') as f:
        f.write('not a certificate\n')
    from rrto_ros.server.auth import AllowList
    allow = AllowList(made['allowed_dir'])
    assert sorted(allow.keys.values()) == ['robot-1']


# ----------------------------------------------------------------- a real app
def test_app_runs_and_replays_over_curve(interposer, examples_dir, backend):
    from rrto_ros.stack import LocalStack
    with LocalStack(backend, 'replay', security='curve') as stack:
        r = stack.run([str(examples_dir / 'cnn_infer'), '12'])
        s = stack.last_session()
    assert r.returncode == 0 and 'PASS' in r.stdout, r.stdout + r.stderr
    assert s['replay_started_at'] >= 0 and s['lane_requests'] > 0   # on the sealed lane


def test_app_with_an_unknown_key_is_told_in_one_line(interposer, examples_dir, tmp_path):
    from rrto_ros.stack import LocalStack
    public, secret = keys.init_robot('stranger', str(tmp_path / 'stranger'))
    with LocalStack('emu', 'pipelined', security='curve', connect_timeout_s=20.0,
                    client_options={'curve_secret_key_file': secret}) as stack:
        t0 = time.monotonic()
        r = stack.run([str(examples_dir / 'vector_add')], timeout=60)
        elapsed = time.monotonic() - t0
    assert r.returncode != 0 and elapsed < 15   # the refusal, not connect_timeout_s
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith('[rrto]')]
    assert len(lines) == 1, r.stderr
    assert "refused this robot's key (not in its allow-list)" in lines[0], lines[0]
    assert f'copy {public} to the edge and run `rrto-keys allow stranger.key` there' in lines[0]


def test_loose_directories_are_refused_not_changed(made, tmp_path):
    shared = tmp_path / 'shared'
    shared.mkdir(mode=0o755)
    os.chmod(shared, 0o755)
    with pytest.raises(keys.KeyStoreError, match='chmod 700'):
        keys.init_server(str(shared))
    assert stat.S_IMODE(os.stat(shared).st_mode) == 0o755
    os.chmod(made['allowed_dir'], 0o777)
    with pytest.raises(AllowListError, match='could add their own keys'):
        curve_server(made)


def test_a_robot_removed_from_the_allow_list_is_refused_next_time(made):
    srv = curve_server(made)
    try:
        assert hello(srv.endpoint, robot_curve(made)) == 0
        os.unlink(os.path.join(made['allowed_dir'], 'robot-1.key'))
        with pytest.raises(HandshakeFailed, match='refused this robot'):
            hello(srv.endpoint, robot_curve(made), timeout_s=30.0)
    finally:
        srv.stop()


def test_a_robot_holds_at_most_max_sessions_per_client(made, caplog):
    """Per robot key: its unused sessions give way first; then its next hello is refused
    in one line naming the limit, while the server still has room for other robots."""
    caplog.set_level(logging.WARNING, 'rrto_ros')
    srv = curve_server(made, max_sessions_per_client=2)
    links = []
    try:
        def open_session(use: bool) -> int:
            link = Uplink(zmq.Context.instance(), srv.endpoint, server_timeout_s=5.0,
                          heartbeat_s=0.2, curve=robot_curve(made))
            links.append(link)
            rep = link.call(Op.HELLO, [1])
            if rep.err == 0:
                link.sid = rep.extra['sid']
                if use:   # CUDA work: the session is used, it no longer gives way
                    assert link.call(Op.MEM_GET_INFO, []).err == 0
            return rep.err

        assert open_session(use=True) == 0
        assert open_session(use=False) == 0
        assert open_session(use=True) == 0     # the unused one gave way
        assert len(srv.sessions) == 2
        assert open_session(use=False) == 46   # cudaErrorDevicesUnavailable
        said = [r.getMessage() for r in caplog.records if 'max_sessions_per_client' in
                r.getMessage()]
        assert said and 'robot robot-1 already has 2 sessions' in said[0], said
    finally:
        for link in links:
            link.close()
        srv.stop()
