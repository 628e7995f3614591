# Copyright 2026 rrto_ros authors. Apache-2.0.
"""The client and server nodes with real rclpy (PyPI wheels) and real ZeroMQ: start-up from
config/*.yaml, run-time parameters through the parameter services, /diagnostics, the
restart_recording service, and shutdown on Ctrl-C / SIGTERM without orphaned sessions.

An app is stood in for by a socket that says hello like the interposer does, so a session
really opens on the server without running CUDA code (the demo test runs a real one)."""

from __future__ import annotations

import itertools
import json
import os
import pathlib
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Any, Callable, Dict, Iterator, List

import pytest

if os.environ.get('CI'):     # CI must test real nodes: a missing wheel is a failure there
    import rclpy
else:
    rclpy = pytest.importorskip('rclpy')

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402, I100
from procs import reaped  # noqa: E402
from rcl_interfaces.msg import ParameterType  # noqa: E402
from rclpy.executors import MultiThreadedExecutor  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.parameter_client import AsyncParameterClient  # noqa: E402
from rclpy.signals import SignalHandlerOptions  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from rrto_ros.client.core import ClientCore  # noqa: E402
from rrto_ros.launch_plan import load_params  # noqa: E402
from rrto_ros.nodes import status  # noqa: E402
from rrto_ros.nodes.client_node import ClientNode  # noqa: E402
from rrto_ros.nodes.params import CLIENT_PARAMS, names, SERVER_PARAMS  # noqa: E402
from rrto_ros.nodes.server_node import ServerNode  # noqa: E402
from rrto_ros.protocol import agent_wire as wire  # noqa: E402
from rrto_ros.protocol import keys  # noqa: E402
from rrto_ros.protocol.ops import Op  # noqa: E402
from rrto_ros.stack import free_tcp_port  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
ROBOT_YAML = str(ROOT / 'config' / 'robot.yaml')
EDGE_YAML = str(ROOT / 'config' / 'edge.yaml')
ROBOT = load_params(ROBOT_YAML)['rrto_client']
_names = itertools.count()


def wait_for(cond: Callable[[], Any], timeout: float = 10.0, what: str = 'condition') -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f'timed out after {timeout} s waiting for {what}')


def p(key: str, value: Any) -> List[str]:
    return ['-p', f'{key}:={json.dumps(value)}']


def ps(params: Dict[str, Any]) -> List[str]:
    return [arg for k, v in params.items() for arg in p(k, v)]


@pytest.fixture(scope='module')
def made(tmp_path_factory) -> Dict[str, str]:
    """Keys of an edge and a robot for this module's nodes (config/*.yaml ask for CURVE with
    the user's keys, which the tests leave alone)."""
    return keys.one_machine(str(tmp_path_factory.mktemp('keys') / 'keys'))


@pytest.fixture(scope='module')
def edge_keys(made) -> List[str]:
    return ps(keys.server_parameters(made))


@pytest.fixture(scope='module')
def robot_keys(made) -> List[str]:
    return ps(keys.client_parameters(made))


@pytest.fixture(scope='module', autouse=True)
def ros_env() -> Iterator[None]:
    """A DDS domain of our own on loopback: concurrent test runs on this machine don't mix."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv('ROS_DOMAIN_ID', str(random.Random(os.getpid()).randint(1, 100)))
        mp.setenv('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
        mp.setenv('RCUTILS_COLORIZED_OUTPUT', '0')
        yield


class Ros:
    """An rclpy context with an executor spinning in a thread; its nodes use ``made``'s keys."""

    def __init__(self, made: Dict[str, str]) -> None:
        self.made = made
        self.context = rclpy.Context()
        rclpy.init(context=self.context, signal_handler_options=SignalHandlerOptions.NO)
        self.executor = MultiThreadedExecutor(context=self.context)
        self.nodes: List[Node] = []
        self.namespace = f'/t{os.getpid()}n{next(_names)}'
        self._thread = threading.Thread(target=self.executor.spin, daemon=True)
        self._thread.start()

    def add(self, node: Node) -> Node:
        self.nodes.append(node)
        self.executor.add_node(node)
        return node

    def server(self, *args: str) -> ServerNode:
        return self.add(ServerNode(
            context=self.context, namespace=self.namespace,
            cli_args=['--ros-args', '--params-file', EDGE_YAML,
                      *p('bind_endpoint', 'tcp://127.0.0.1:*'), *p('module_cache_dir', ''),
                      *p('backend', 'emu'), *p('diagnostics_period_s', 0.2),
                      *ps(keys.server_parameters(self.made)), *args]))

    def client(self, endpoint: str, sock: str, *args: str) -> ClientNode:
        return self.add(ClientNode(
            context=self.context, namespace=self.namespace,
            cli_args=['--ros-args', '--params-file', ROBOT_YAML, *p('server_endpoint', endpoint),
                      *p('agent_socket', sock), *p('diagnostics_period_s', 0.2),
                      *ps(keys.client_parameters(self.made)), *args]))

    def tuner(self) -> Node:
        return self.add(rclpy.create_node(f'tuner{next(_names)}', context=self.context,
                                          namespace=self.namespace))

    def result(self, future: Any, timeout: float = 10.0) -> Any:
        wait_for(future.done, timeout, 'a service reply')
        return future.result()

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=2)
        for node in reversed(self.nodes):
            node.destroy_node()
        rclpy.try_shutdown(context=self.context)
        self._thread.join(2)


@pytest.fixture
def ros(made) -> Iterator[Ros]:
    r = Ros(made)
    try:
        yield r
    finally:
        r.close()


class FakeApp:
    """Connects to the client node's agent socket and says hello like librrto_cuda.so."""

    def __init__(self, path: str, exe: str = '/usr/bin/fake_app') -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(path)
        self.sock.sendall(wire.encode_request(Op.HELLO, [os.getpid(), wire.PROTO_VERSION],
                                              exe.encode()))
        err, res, data, mode, flags = wire.read_reply(self.sock)
        assert err == 0, data
        self.label = f'{os.path.basename(exe)}[{os.getpid()}]'

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def pair(ros: Ros, tmp_path) -> Iterator[Dict[str, Any]]:
    """Server node, client node and one open app session, all in this process."""
    server = ros.server()
    client = ros.client(server.server.endpoint, str(tmp_path / 'a.sock'))
    app = FakeApp(str(tmp_path / 'a.sock'))
    wait_for(lambda: server.server.session_count() == 1, what='the session on the server')
    try:
        yield {'server': server, 'client': client, 'app': app}
    finally:
        app.close()


def set_params(ros: Ros, node: str, params: List[Parameter], atomically: bool = False
               ) -> List[Any]:
    """Set parameters of ``node`` through its /set_parameters service, from another node."""
    tuner = ros.tuner()
    pc = AsyncParameterClient(tuner, f'{ros.namespace}/{node}')
    assert pc.wait_for_services(timeout_sec=10), 'parameter services did not appear'
    if atomically:
        return [ros.result(pc.set_parameters_atomically(params)).result]
    return ros.result(pc.set_parameters(params)).results


# ----------------------------------------------------------------- start-up
def test_nodes_start_from_the_yaml_files(ros, tmp_path):
    server = ros.server()
    client = ros.client(server.server.endpoint, str(tmp_path / 'a.sock'))
    robot = load_params(ROBOT_YAML)['rrto_client']
    edge = load_params(EDGE_YAML)['rrto_server']
    overridden = {'server_endpoint', 'agent_socket', 'diagnostics_period_s', 'bind_endpoint',
                  'module_cache_dir', 'backend', 'curve_secret_key_file',
                  'curve_server_key_file', 'curve_allowed_clients_dir'}
    for node, yaml_values in ((client, robot), (server, edge)):
        for name, value in yaml_values.items():
            if name not in overridden:
                assert node.get_parameter(name).value == value, name
    assert all(client.has_parameter(n) for n in names(CLIENT_PARAMS))
    assert all(server.has_parameter(n) for n in names(SERVER_PARAMS))
    assert client.core.config.mode == robot['mode']
    assert client.core.config.record_window == robot['record_window']
    assert client.core.config.agent_socket == str(tmp_path / 'a.sock')
    assert server.server.config.backend == 'emu'
    assert server.server.config.max_sessions == edge['max_sessions']
    # Authenticated and encrypted by default: the shipped configs and the declared defaults.
    assert robot['security'] == edge['security'] == 'curve'
    assert client.get_parameter('security').value == server.get_parameter('security').value \
        == 'curve'
    assert client.core.curve is not None and server.server.lane_port   # encrypted lane
    assert robot['curve_secret_key_file'] == keys.robot_secret_file()
    assert robot['curve_server_key_file'] == keys.server_public_file()
    assert edge['curve_secret_key_file'] == keys.server_secret_file()
    assert edge['curve_allowed_clients_dir'] == keys.allowed_clients_dir()
    d = client.describe_parameter('record_window')
    assert (d.integer_range[0].from_value, d.integer_range[0].to_value) == (1, 1000)
    assert d.description and not d.read_only
    assert client.describe_parameter('server_endpoint').read_only
    assert client.describe_parameter('mode').type == ParameterType.PARAMETER_STRING


# ----------------------------------------------------------------- run-time parameters
def test_record_window_and_mode_change_for_the_running_session(ros, pair):
    client = pair['client']
    (session,) = client.core.sessions.values()
    results = set_params(ros, 'rrto_client', [Parameter('record_window', value=7)])
    assert results[0].successful, results[0].reason
    assert client.core.config.record_window == 7
    assert session.config.record_window == 7          # the running session sees it
    recorder = getattr(getattr(session, 'replay', None), 'recorder', None)
    if recorder is not None:                           # and so does its recorder
        assert recorder.record_window == 7
    assert client.get_parameter('record_window').value == 7
    results = set_params(ros, 'rrto_client', [Parameter('mode', value='rpc')])
    assert results[0].successful, results[0].reason
    assert session.mode == 'rpc'
    assert client.core.snapshot()[0]['mode'] == 'rpc'


def test_record_window_uses_the_core_setter(ros, pair, monkeypatch):
    client = pair['client']
    seen: List[int] = []
    monkeypatch.setattr(client.core, 'set_record_window', seen.append, raising=False)
    results = set_params(ros, 'rrto_client', [Parameter('record_window', value=4)])
    assert results[0].successful and seen == [4]


@pytest.mark.parametrize('name, value, reason', [
    ('record_window', 0, 'out of range'),
    ('record_window', 5000, 'out of range'),
    ('record_window', 'many', 'type'),
    ('mode', 'warp', 'mode must be one of'),
    ('server_endpoint', 'tcp://elsewhere:1', 'read-only'),
])
def test_invalid_values_are_refused_with_a_reason(ros, pair, name, value, reason):
    client = pair['client']
    results = set_params(ros, 'rrto_client', [Parameter(name, value=value)])
    assert not results[0].successful
    assert reason in results[0].reason
    assert client.core.config.record_window == 3 and client.core.config.mode == ROBOT['mode']
    assert client.get_parameter('record_window').value == 3


def test_refused_atomic_change_undoes_what_it_applied(ros, pair):
    client = pair['client']
    results = set_params(ros, 'rrto_client', [Parameter('record_window', value=9),
                                              Parameter('mode', value='warp')],
                         atomically=True)
    assert not results[0].successful and 'mode' in results[0].reason
    assert client.core.config.record_window == 3 and client.core.config.mode == ROBOT['mode']


def test_server_runtime_parameters(ros, tmp_path):
    server = ros.server()
    results = set_params(ros, 'rrto_server', [Parameter('max_sessions', value=2)])
    assert results[0].successful and server.server.config.max_sessions == 2
    results = set_params(ros, 'rrto_server', [Parameter('max_sessions', value=0)])
    assert not results[0].successful and 'out of range' in results[0].reason
    results = set_params(ros, 'rrto_server', [Parameter('backend', value='cuda')])
    assert not results[0].successful and 'read-only' in results[0].reason
    assert server.server.config.max_sessions == 2


# ----------------------------------------------------------------- diagnostics
def test_diagnostics_report_each_session(ros, pair):
    tuner = ros.tuner()
    seen: Dict[str, Dict[str, str]] = {}

    def on_msg(msg: DiagnosticArray) -> None:
        for s in msg.status:
            seen[s.name] = {kv.key: kv.value for kv in s.values}
            seen[s.name]['_level'] = str(s.level[0] if isinstance(s.level, bytes) else s.level)

    tuner.create_subscription(DiagnosticArray, '/diagnostics', on_msg, 10)
    prefix = ros.namespace.lstrip('/')
    app = pair['app']
    names_ = [f'{prefix}/rrto_client: client', f'{prefix}/rrto_client: session {app.label}',
              f'{prefix}/rrto_server: server']
    wait_for(lambda: all(n in seen for n in names_) and any(
        k.startswith(f'{prefix}/rrto_server: session') for k in seen), what='diagnostics')
    session = seen[names_[1]]
    assert tuple(k for k in session if k != '_level') == status.CLIENT_SESSION_KEYS
    assert session['phase'] and session['mode'] == ROBOT['mode']
    assert session['record_window'] == '3' and session['state'] in ('forwarding', 'running')
    assert int(session['blocking_round_trips']) >= 1 and session['errors'] == '0'
    assert session['_level'] == '0'
    node = seen[names_[0]]
    assert node['sessions'] == '1' and node['record_window'] == '3'
    server = seen[names_[2]]
    assert server['sessions'] == '1' and server['backend'] == 'emu'
    (server_session,) = [v for k, v in seen.items()
                         if k.startswith(f'{prefix}/rrto_server: session')]
    assert set(server_session) - {'_level'} == set(status.SERVER_SESSION_KEYS)


# ----------------------------------------------------------------- restart_recording
def _trigger(ros: Ros) -> Trigger.Response:
    tuner = ros.tuner()
    cli = tuner.create_client(Trigger, f'{ros.namespace}/rrto_client/restart_recording')
    assert cli.wait_for_service(timeout_sec=10)
    return ros.result(cli.call_async(Trigger.Request()))


def test_restart_recording_calls_the_core(ros, pair, monkeypatch):
    calls: List[int] = []
    monkeypatch.setattr(pair['client'].core, 'restart_recording',
                        lambda: calls.append(1) or 1, raising=False)
    r = _trigger(ros)
    assert r.success and calls == [1]
    assert '1 running session' in r.message

    def broken() -> None:
        raise RuntimeError('recorder busy')

    monkeypatch.setattr(pair['client'].core, 'restart_recording', broken)
    r = _trigger(ros)
    assert not r.success and 'recorder busy' in r.message


def test_restart_recording_with_the_real_core(ros, pair):
    r = _trigger(ros)
    assert r.success == hasattr(ClientCore, 'restart_recording'), r.message


# ----------------------------------------------------------------- processes, signals
def _node_cmd(module: str, namespace: str, *args: str) -> List[str]:
    return [sys.executable, '-m', f'rrto_ros.nodes.{module}', '--ros-args',
            '-r', f'__ns:={namespace}', *args]


@pytest.mark.parametrize('sig', [signal.SIGINT, signal.SIGTERM])
def test_shutdown_leaves_no_session_on_the_server(ros, tmp_path, sig, robot_keys):
    server = ros.server(*p('session_timeout_s', 60.0))   # not the reaper: the client says bye
    sock = str(tmp_path / 'a.sock')
    proc = subprocess.Popen(
        _node_cmd('client_node', ros.namespace, '--params-file', ROBOT_YAML,
                  *p('server_endpoint', server.server.endpoint), *p('agent_socket', sock),
                  *robot_keys),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    with reaped(proc):
        wait_for(lambda: os.path.exists(sock) or proc.poll() is not None, 30, 'the client')
        apps = [FakeApp(sock, '/opt/a'), FakeApp(sock, '/opt/b')]
        wait_for(lambda: server.server.session_count() == 2, what='two sessions')
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, out
    assert 'Traceback' not in out and 'stopping: closing 2 app session(s)' in out, out
    wait_for(lambda: server.server.session_count() == 0, 3, 'the server to drop the sessions')
    assert server.server.stats.sessions_closed == 2
    assert not os.path.exists(sock)
    for app in apps:
        app.close()


def test_server_node_process_stops_on_sigterm(tmp_path, edge_keys):
    port = free_tcp_port()
    proc = subprocess.Popen(
        _node_cmd('server_node', f'/s{os.getpid()}', '--params-file', EDGE_YAML,
                  *p('bind_endpoint', f'tcp://127.0.0.1:{port}'), *p('module_cache_dir', ''),
                  *p('backend', 'emu'), *edge_keys),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    with reaped(proc):
        wait_for(lambda: _listening(port) or proc.poll() is not None, 30, 'the server')
        # A second server on the same port cannot start, and says why.
        second = subprocess.run(
            _node_cmd('server_node', f'/s{os.getpid()}b', '--params-file', EDGE_YAML,
                      *p('bind_endpoint', f'tcp://127.0.0.1:{port}'), *p('backend', 'emu'),
                      *p('session_timout_s', 3.0), *edge_keys),
            capture_output=True, text=True, timeout=60)
        assert second.returncode == 1
        assert f'cannot listen on tcp://127.0.0.1:{port}: the port is in use' in second.stderr
        assert 'Traceback' not in second.stderr
        # A misspelt parameter (rclpy ignores it) is named with the closest real one.
        assert 'session_timout_s (did you mean session_timeout_s?)' in second.stderr
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, out
    assert 'ready: serving rrto clients' in out and 'stopping: no open sessions' in out
    assert 'Traceback' not in out


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(('127.0.0.1', port)) == 0


@pytest.mark.parametrize('args, message', [
    (p('mode', 'warp'), 'mode must be one of'),
    (p('record_window', 0), 'record_window'),
    (p('curve_secret_key_file', '/nonexistent/key'),
     '/nonexistent/key does not exist: make it with `rrto-keys init-robot NAME`'),
    (p('security', 'closed'), "security must be 'curve'"),
])
def test_client_node_refuses_to_start_with_bad_parameters(tmp_path, args, message):
    r = subprocess.run(
        _node_cmd('client_node', f'/c{os.getpid()}', '--params-file', ROBOT_YAML,
                  *p('agent_socket', str(tmp_path / 'a.sock')), *args),
        capture_output=True, text=True, timeout=60)
    assert r.returncode == 1, r.stdout + r.stderr
    assert 'cannot start' in r.stderr and message in r.stderr, r.stderr
    assert 'Traceback' not in r.stderr


def test_server_node_backend_choice_is_logged_or_refused(edge_keys):
    """auto logs the backend it took and why; cuda without a usable GPU stops the node
    with the reason (it would otherwise refuse every session)."""
    from rrto_ros.server.backend import probe_gpu
    gpu = probe_gpu()
    cmd = _node_cmd('server_node', f'/b{os.getpid()}', '--params-file', EDGE_YAML,
                    *p('bind_endpoint', f'tcp://127.0.0.1:{free_tcp_port()}'),
                    *p('module_cache_dir', ''), *p('backend', 'cuda'), *edge_keys)
    if gpu.ok:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)
        with reaped(proc):
            first = proc.stdout.readline()
            proc.send_signal(signal.SIGTERM)
            proc.communicate(timeout=20)
        assert 'backend cuda: asked for: ' in first, first
        return
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1, r.stdout + r.stderr
    assert 'cannot start: backend cuda cannot run here' in r.stderr, r.stderr
    assert gpu.reason.split(' (')[0] in r.stderr and 'Traceback' not in r.stderr


# ----------------------------------------------------------------- security
def test_open_security_is_a_warning_at_every_start(tmp_path):
    port, sock = free_tcp_port(), str(tmp_path / 'a.sock')
    server = subprocess.Popen(
        _node_cmd('server_node', f'/o{os.getpid()}', '--params-file', EDGE_YAML,
                  *p('bind_endpoint', f'tcp://127.0.0.1:{port}'), *p('module_cache_dir', ''),
                  *p('backend', 'emu'), *p('security', 'open')),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    client = subprocess.Popen(
        _node_cmd('client_node', f'/o{os.getpid()}', '--params-file', ROBOT_YAML,
                  *p('server_endpoint', f'tcp://127.0.0.1:{port}'), *p('agent_socket', sock),
                  *p('security', 'open')),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    with reaped(server), reaped(client):
        wait_for(lambda: (_listening(port) or server.poll() is not None) and
                 (os.path.exists(sock) or client.poll() is not None), 30, 'both nodes')
        FakeApp(sock).close()       # open works end to end (and offers the replay lane)
        for proc in (server, client):
            proc.send_signal(signal.SIGTERM)
        outs = [proc.communicate(timeout=20)[0] for proc in (server, client)]
    for out, risk in zip(outs, ('run code on this GPU', 'read or change what the apps send')):
        warnings = [ln for ln in out.splitlines() if ln.startswith('[WARN]') and
                    'security open: the link tcp://' in ln]
        assert len(warnings) == 1 and risk in warnings[0], out
        assert 'Set security curve' in warnings[0]
    assert 'security open, replay lane on port' in outs[0], outs[0]


def test_client_node_with_an_unknown_key_tells_the_app(ros, tmp_path):
    public, secret = keys.init_robot('stranger', str(tmp_path / 'stranger'))
    server = ros.server()
    sock = str(tmp_path / 'a.sock')
    ros.client(server.server.endpoint, sock, *p('curve_secret_key_file', secret))
    app = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    app.settimeout(10)
    app.connect(sock)
    try:
        app.sendall(wire.encode_request(Op.HELLO, [os.getpid(), wire.PROTO_VERSION],
                                        b'/opt/stranger_app'))
        err, _, data, _, _ = wire.read_reply(app)
    finally:
        app.close()
    assert err != 0 and server.server.session_count() == 0
    text = data.decode()
    assert "refused this robot's key (not in its allow-list)" in text, text
    assert '`rrto-keys allow stranger.key`' in text, text
