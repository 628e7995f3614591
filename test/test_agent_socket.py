# Copyright 2026 rrto_ros authors. Apache-2.0.
"""The local socket cannot be squatted: a private directory, the peer's credentials checked
by the client node, the socket's owner checked by the interposer."""

from __future__ import annotations

import logging
import os
import socket
import stat
import subprocess

import pytest

from rrto_ros.client import agent_socket
from rrto_ros.client.config import ClientConfig
from rrto_ros.client.core import ClientCore
from rrto_ros.server.server import Server
from rrto_ros.server.server import ServerConfig
from rrto_ros.stack import free_tcp_port


def test_default_path_is_per_user_and_private(monkeypatch, tmp_path):
    monkeypatch.setenv('XDG_RUNTIME_DIR', str(tmp_path))
    assert agent_socket.default_agent_socket() == str(tmp_path / 'rrto' / 'agent.sock')
    assert ClientConfig().agent_socket == str(tmp_path / 'rrto' / 'agent.sock')
    assert ClientConfig(agent_socket='/x/y.sock').agent_socket == '/x/y.sock'
    monkeypatch.delenv('XDG_RUNTIME_DIR')
    assert agent_socket.default_agent_socket() == f'/tmp/rrto-{os.getuid()}/agent.sock'
    path = str(tmp_path / 'fresh' / 'agent.sock')
    agent_socket.prepare_dir(path)
    st = os.lstat(tmp_path / 'fresh')
    assert stat.S_IMODE(st.st_mode) == 0o700 and st.st_uid == os.getuid()


def test_squattable_directories_are_refused(tmp_path):
    mine = tmp_path / 'mine'
    mine.mkdir(mode=0o700)
    link = tmp_path / 'link'
    link.symlink_to(mine)
    with pytest.raises(agent_socket.SocketDirError, match='is a symbolic link'):
        agent_socket.prepare_dir(str(link / 'agent.sock'))
    shared = tmp_path / 'shared'
    shared.mkdir()
    shared.chmod(0o1777)
    with pytest.raises(agent_socket.SocketDirError, match='has mode 1777; it must be 0700'):
        agent_socket.prepare_dir(str(shared / 'agent.sock'))
    with pytest.raises(agent_socket.SocketDirError, match='belongs to uid'):
        agent_socket.check_dir(str(mine), uid=os.getuid() + 4242)
    plain = tmp_path / 'file'
    plain.write_text('')
    with pytest.raises(agent_socket.SocketDirError, match='not a directory'):
        agent_socket.check_dir(str(plain))
    agent_socket.check_dir(str(mine))


def test_client_refuses_to_listen_in_a_shared_directory(tmp_path):
    shared = tmp_path / 'shared'
    shared.mkdir()
    shared.chmod(0o777)
    core = ClientCore(ClientConfig('tcp://127.0.0.1:1', str(shared / 'agent.sock')))
    with pytest.raises(agent_socket.SocketDirError, match='must be 0700'):
        core.start()
    assert not (shared / 'agent.sock').exists()


def test_peer_credentials():
    assert agent_socket.peer_refusal(1000, own=1000) is None
    assert agent_socket.peer_refusal(0, own=1000) is None          # root may
    why = agent_socket.peer_refusal(1001, own=1000)
    assert why and 'uid 1001' in why and 'serves only uid 1000 and root' in why
    assert agent_socket.peer_refusal(1000, own=0)                 # a root node: root only
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    assert agent_socket.peer_uid(a) == os.getuid()
    a.close()
    b.close()


def test_client_node_drops_a_foreign_peer(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(agent_socket, 'peer_uid', lambda conn: os.getuid() + 4242)
    core = ClientCore(ClientConfig('tcp://127.0.0.1:1', str(tmp_path / 'a.sock'))).start()
    try:
        assert stat.S_IMODE(os.stat(tmp_path / 'a.sock').st_mode) == 0o600
        with caplog.at_level(logging.WARNING, logger='rrto_ros.client.core'):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(10)
            s.connect(core.config.agent_socket)
            assert s.recv(1) == b''                  # closed without a word
            s.close()
        assert f'uid {os.getuid() + 4242} connected to the agent socket' in caplog.text
        assert not core.sessions
    finally:
        core.stop()


def interposed(prog, interposer, **env) -> subprocess.CompletedProcess:
    e = dict(os.environ, LD_PRELOAD=str(interposer))
    e.pop('RRTO_AGENT_SOCKET', None)
    e.update(env)
    return subprocess.run([str(prog)], env=e, capture_output=True, text=True, timeout=30)


def rrto_lines(r: subprocess.CompletedProcess):
    return [ln for ln in r.stderr.splitlines() if ln.startswith('[rrto]')]


def test_interposer_default_path_matches_the_client(interposer, examples_dir, tmp_path,
                                                    monkeypatch):
    monkeypatch.setenv('XDG_RUNTIME_DIR', str(tmp_path))
    r = interposed(examples_dir / 'vector_add', interposer)
    lines = rrto_lines(r)
    assert r.returncode != 0 and len(lines) == 1
    assert f'no rrto client node at {tmp_path}/rrto/agent.sock' in lines[0]
    server = Server(ServerConfig(f'tcp://127.0.0.1:{free_tcp_port()}', 'emu',
                                 module_cache_dir=None)).start()
    core = ClientCore(ClientConfig(server.endpoint)).start()    # the default path
    try:
        r = interposed(examples_dir / 'vector_add', interposer)
    finally:
        core.stop()
        server.stop()
    assert r.returncode == 0, r.stderr


def test_interposer_refuses_a_socket_it_does_not_trust(interposer, examples_dir, tmp_path):
    fake = tmp_path / 'not-a-socket'
    fake.write_text('')
    r = interposed(examples_dir / 'vector_add', interposer, RRTO_AGENT_SOCKET=str(fake))
    lines = rrto_lines(r)
    assert r.returncode != 0 and len(lines) == 1, r.stderr
    assert 'is not a socket' in lines[0] and 'cudaErrorNoDevice' in lines[0]
    if os.getuid() != 0:
        return    # making a socket of another user's needs root (as in CI)
    path = str(tmp_path / 'squat.sock')
    squatter = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    squatter.bind(path)
    squatter.listen(1)
    os.chown(path, 4242, 4242)
    squatter.settimeout(0.5)
    try:
        r = interposed(examples_dir / 'vector_add', interposer, RRTO_AGENT_SOCKET=path)
        with pytest.raises(socket.timeout):
            squatter.accept()                      # never connected to
    finally:
        squatter.close()
    lines = rrto_lines(r)
    assert r.returncode != 0 and len(lines) == 1, r.stderr
    assert 'belongs to uid 4242' in lines[0] and 'no CUDA-capable device' in r.stdout + r.stderr
