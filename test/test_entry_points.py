# Copyright 2026 rrto_ros authors. Apache-2.0.
"""Every entry point names the problem and the fix in one line: a port in use, a malformed
endpoint, the cuda backend without a GPU, a misspelt parameter; and every --help is
complete."""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
from typing import List

import pytest

from rrto_ros.server import backend as backend_mod
from rrto_ros.server.backend import BackendUnavailable, choose_backend, GpuProbe, probe_gpu


def _cli(module: str, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, '-m', module, *args], capture_output=True,
                          text=True, timeout=timeout)


def _errors(r: subprocess.CompletedProcess) -> List[str]:
    return [ln for ln in r.stderr.splitlines() if 'Traceback' in ln or 'cannot start' in ln]


# ----------------------------------------------------------------- backend choice
def test_choose_backend_says_why(monkeypatch):
    monkeypatch.setattr(backend_mod, 'probe_gpu',
                        lambda device=0: GpuProbe(False, 'cuda-python is not installed'))
    name, why = choose_backend('auto')
    assert name == 'emu' and 'cuda-python is not installed' in why
    with pytest.raises(BackendUnavailable, match='backend cuda cannot run here: cuda-python'):
        choose_backend('cuda')
    assert choose_backend('emu')[0] == 'emu'
    with pytest.raises(BackendUnavailable, match="unknown backend 'gpu'"):
        choose_backend('gpu')
    monkeypatch.setattr(backend_mod, 'probe_gpu',
                        lambda device=0: GpuProbe(True, 'NVIDIA H200 (device 0 of 1)'))
    assert choose_backend('auto') == ('cuda', 'found NVIDIA H200 (device 0 of 1)')


def test_probe_names_what_is_missing():
    gpu = probe_gpu()
    assert gpu.reason   # either the device it found or why there is none
    if not gpu.ok:
        assert any(w in gpu.reason for w in ('cuda-python', 'driver', 'GPU', 'device'))


def test_server_cli_backend_cuda_without_gpu_refuses_in_one_line():
    r = _cli('rrto_ros.cli.server_main', '--backend', 'cuda', '--bind', 'tcp://127.0.0.1:0',
             '--lane-port', '-1', '--cache-dir', '', timeout=10) \
        if not probe_gpu().ok else None
    if r is None:
        pytest.skip('this machine has a usable GPU: backend cuda starts here (the GPU run '
                    'checks the other branch, test_server_cli_auto_backend_logs_its_reason)')
    assert r.returncode == 2, r.stderr
    assert len(_errors(r)) == 1 and 'backend cuda cannot run here' in r.stderr, r.stderr
    assert 'emu backend' in r.stderr


def test_server_cli_auto_backend_logs_its_reason():
    """auto says which backend it took and why (a GPU: its name; none: what is missing)."""
    proc = subprocess.Popen([sys.executable, '-m', 'rrto_ros.cli.server_main', '--bind',
                             'tcp://127.0.0.1:0', '--lane-port', '-1', '--cache-dir', ''],
                            stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stderr.readline()
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
    gpu = probe_gpu()
    assert first.startswith('[rrto-server] backend ' + ('cuda' if gpu.ok else 'emu')), first
    assert gpu.reason.split(' (')[0] in first


# ----------------------------------------------------------------- endpoints
def test_server_cli_port_in_use_is_one_line():
    busy = socket.socket()
    busy.bind(('127.0.0.1', 0))
    busy.listen()
    port = busy.getsockname()[1]
    try:
        r = _cli('rrto_ros.cli.server_main', '--backend', 'emu', '--bind',
                 f'tcp://127.0.0.1:{port}', '--cache-dir', '', '--security', 'open')
    finally:
        busy.close()
    assert r.returncode == 2
    assert len(_errors(r)) == 1 and 'Traceback' not in r.stderr, r.stderr
    assert f'cannot listen on tcp://127.0.0.1:{port}: the port is in use' in r.stderr
    assert 'choose another port' in r.stderr


@pytest.mark.parametrize('bind', ['tcp//*:5555', '5555', 'tcp://*:abc', 'tcp://*:70000'])
def test_server_cli_malformed_bind_is_one_line(bind):
    r = _cli('rrto_ros.cli.server_main', '--backend', 'emu', '--bind', bind, '--cache-dir', '',
             '--security', 'open')
    assert r.returncode == 2
    assert len(_errors(r)) == 1 and 'Traceback' not in r.stderr, r.stderr
    assert 'cannot listen on' in r.stderr and bind in r.stderr


# ----------------------------------------------------------------- parameters
def test_unknown_parameter_message_names_the_closest():
    from rrto_ros.nodes.params import CLIENT_PARAMS, names, unknown_names_message
    text = unknown_names_message('rrto_client', ['record_windw', 'zzz'], names(CLIENT_PARAMS))
    assert 'record_windw (did you mean record_window?)' in text
    assert 'zzz (did you mean' not in text


def test_launch_plan_unknown_parameter_names_the_closest(tmp_path):
    from rrto_ros.launch_plan import PlanError, robot_plan
    bad = tmp_path / 'robot.yaml'
    bad.write_text('/**/rrto_client:\n  ros__parameters:\n    record_windw: 5\n')
    with pytest.raises(PlanError, match=r'record_windw \(did you mean record_window\?\)'):
        robot_plan(params_file=str(bad))


# ----------------------------------------------------------------- --help
CLIS = ['rrto_ros.cli.server_main', 'rrto_ros.cli.client_main', 'rrto_ros.cli.trace_main',
        'rrto_ros.cli.lib_main', 'rrto_ros.cli.keys_main']


@pytest.mark.parametrize('module', CLIS)
def test_every_cli_option_has_help(module):
    import importlib
    main = importlib.import_module(module)
    r = _cli(module, '--help')
    assert r.returncode == 0 and r.stdout.startswith('usage:'), r.stderr
    parser = getattr(main, 'parser', None)
    if parser is None:
        return   # no options beyond --help
    ap: argparse.ArgumentParser = parser()
    for action in ap._actions:
        assert action.help, f'{module}: {action.option_strings or action.dest} has no help'
        for opt in action.option_strings:
            assert opt in r.stdout


def test_client_cli_takes_the_node_parameters():
    """rrto-client offers what the client node's parameters set (but the diagnostics
    period, which only a node publishes)."""
    from rrto_ros.cli.client_main import parser
    from rrto_ros.nodes.params import CLIENT_PARAMS
    dests = {a.dest for a in parser()._actions}
    aliases = {'server_endpoint': 'server', 'connect_timeout_s': 'connect_timeout',
               'server_timeout_s': 'server_timeout', 'heartbeat_s': 'heartbeat',
               'replay_lane': 'no_replay_lane'}
    for spec in CLIENT_PARAMS:
        if spec.name == 'diagnostics_period_s':
            continue
        assert aliases.get(spec.name, spec.name) in dests, spec.name


def test_server_cli_takes_the_node_parameters():
    """rrto-server offers what the server node's parameters set (but the diagnostics
    period, which only a node publishes), and passes each to the server's config."""
    from rrto_ros.cli.server_main import parser
    from rrto_ros.nodes.params import SERVER_PARAMS
    dests = {a.dest for a in parser()._actions}
    aliases = {'bind_endpoint': 'bind', 'module_cache_dir': 'cache_dir',
               'module_cache_mem_bytes': 'cache_mem_bytes',
               'module_cache_disk_bytes': 'module_cache_disk_bytes',
               'session_timeout_s': 'session_timeout',
               'unused_session_timeout_s': 'unused_session_timeout'}
    for spec in SERVER_PARAMS:
        if spec.name == 'diagnostics_period_s':
            continue
        assert aliases.get(spec.name, spec.name) in dests, spec.name


def test_clis_default_to_curve_and_name_the_missing_key(tmp_path):
    """Without keys, rrto-server and rrto-client refuse to start and say how to make them
    (the tests above that need none pass --security open)."""
    env = {**os.environ, 'HOME': str(tmp_path)}   # no keys there
    for args, fix in (
            (['rrto_ros.cli.server_main', '--bind', 'tcp://127.0.0.1:*', '--backend', 'emu'],
             'rrto-keys init-server'),
            (['rrto_ros.cli.client_main', '--agent-socket', str(tmp_path / 'a.sock')],
             'rrto-keys init-robot NAME')):
        r = subprocess.run([sys.executable, '-m', *args], capture_output=True, text=True,
                           timeout=30, env=env)
        assert r.returncode == 2, r.stderr
        assert len(_errors(r)) == 1 and fix in r.stderr, r.stderr
        assert str(tmp_path / '.config' / 'rrto_ros' / 'keys') in r.stderr
