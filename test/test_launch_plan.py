# Copyright 2026 rrto_ros authors. Apache-2.0.
"""The ROS-free launch plan: what each side starts, from config/*.yaml (no rclpy, no launch)."""

from __future__ import annotations

import ast
import os
import pathlib
import subprocess
import sys
import time

import pytest

from rrto_ros import interposer_path
from rrto_ros.client.agent_socket import default_agent_socket
from rrto_ros.launch_plan import (CLIENT_EXECUTABLE, CLIENT_NODE, edge_plan, load_params,
                                  PlanError, robot_plan, SERVER_EXECUTABLE, SERVER_NODE,
                                  wait_for_agent, with_host_port, WORKLOAD, workload_env)
from rrto_ros.nodes.params import CLIENT_PARAMS, names, NODE_PARAMS, SERVER_PARAMS

ROOT = pathlib.Path(__file__).resolve().parent.parent
ROBOT_YAML = ROOT / 'config' / 'robot.yaml'
EDGE_YAML = ROOT / 'config' / 'edge.yaml'


def console_scripts() -> dict:
    """name -> 'module:function' of setup.py's console_scripts, read without running it."""
    tree = ast.parse((ROOT / 'setup.py').read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            for k, v in zip(node.keys, node.values):
                if isinstance(k, ast.Constant) and k.value == 'console_scripts':
                    entries = [ast.literal_eval(e) for e in v.elts]
                    return dict(e.replace(' ', '').split('=', 1) for e in entries)
    raise AssertionError('setup.py has no console_scripts')


def test_yaml_files_carry_only_declared_parameters():
    for path, node in ((ROBOT_YAML, CLIENT_NODE), (EDGE_YAML, SERVER_NODE)):
        params = load_params(str(path))
        assert set(params[node]) <= set(names(NODE_PARAMS[node])), path
    # Every parameter is in its side's file, so the files document them all.
    assert set(load_params(str(ROBOT_YAML))[CLIENT_NODE]) == set(names(CLIENT_PARAMS))
    assert set(load_params(str(EDGE_YAML))[SERVER_NODE]) == set(names(SERVER_PARAMS))
    assert load_params(str(EDGE_YAML))[SERVER_NODE]['backend'] == 'auto'


def test_node_executables_are_console_scripts_of_their_modules():
    scripts = console_scripts()
    assert scripts[CLIENT_EXECUTABLE] == 'rrto_ros.nodes.client_node:main'
    assert scripts[SERVER_EXECUTABLE] == 'rrto_ros.nodes.server_node:main'


def test_robot_plan_defaults(interposer, examples_dir):
    plan = robot_plan()
    client = plan.get(CLIENT_NODE)
    work = plan.get(WORKLOAD)
    assert client is not None and client.is_node and client.package == 'rrto_ros'
    assert client.executable == CLIENT_EXECUTABLE
    assert client.params_file == str(ROBOT_YAML) and client.parameters == {}
    assert client.ros_parameters() == [str(ROBOT_YAML)]
    assert plan.agent_socket == default_agent_socket()     # robot.yaml's '': the private one
    assert work is not None and not work.is_node
    assert work.env == {'LD_PRELOAD': str(interposer_path()),
                        'RRTO_AGENT_SOCKET': default_agent_socket()}
    cmd = work.command()
    assert cmd[:4] == [sys.executable, '-m', 'rrto_ros.launch_plan', 'run']
    assert cmd[-2:] == [str(ROOT / 'build' / 'examples' / 'cnn_infer'), '20']


def test_robot_plan_launch_arguments_and_overrides(examples_dir, tmp_path):
    plan = robot_plan(server_host='edge-gpu', server_port='6000',
                      overrides={'agent_socket': str(tmp_path / 'a.sock'), 'mode': 'rpc'},
                      workload=f'{examples_dir / "vector_add"} --flag', namespace='/x')
    client = plan.get(CLIENT_NODE)
    assert client.parameters == {'server_endpoint': 'tcp://edge-gpu:6000',
                                 'agent_socket': str(tmp_path / 'a.sock'), 'mode': 'rpc'}
    assert client.ros_parameters()[1]['server_endpoint'] == 'tcp://edge-gpu:6000'
    cmd = client.command(python='py')
    assert cmd[:5] == ['py', '-m', 'rrto_ros.nodes.client_node', '--ros-args', '-r']
    assert '__ns:=/x' in cmd and 'server_endpoint:="tcp://edge-gpu:6000"' in cmd
    assert plan.get(WORKLOAD).command()[-2:] == [str(examples_dir / 'vector_add'), '--flag']
    assert robot_plan(workload='none').get(WORKLOAD) is None


def test_use_rrto_false_runs_the_workload_untouched(examples_dir):
    plan = robot_plan(use_rrto='false')
    assert [p.name for p in plan.processes] == [WORKLOAD]
    work = plan.processes[0]
    assert work.env == {} and work.command() == [str(examples_dir / 'cnn_infer'), '20']
    assert plan.agent_socket == ''


def test_edge_plan(tmp_path):
    plan = edge_plan(port=7000, backend='emu')
    (server,) = plan.processes
    assert server.executable == SERVER_EXECUTABLE and server.name == SERVER_NODE
    assert server.params_file == str(EDGE_YAML)
    assert server.parameters == {'bind_endpoint': 'tcp://*:7000', 'backend': 'emu'}
    assert edge_plan().processes[0].parameters == {}


@pytest.mark.parametrize('call, message', [
    (lambda: edge_plan(backend='tpu'), 'backend must be auto, cuda or emu'),
    (lambda: edge_plan(overrides={'bogus': 1}), 'has no parameter bogus'),
    (lambda: robot_plan(server_port='http'), "port 'http' is not a TCP port"),
    (lambda: robot_plan(use_rrto='maybe'), 'expected true or false'),
    (lambda: robot_plan(workload='build/examples/nope 3'), 'make examples'),
    (lambda: robot_plan(params_file='/nonexistent.yaml'), 'cannot read params file'),
])
def test_plan_errors_say_what_to_fix(call, message):
    with pytest.raises(PlanError, match=message):
        call()


def test_params_file_structure_errors(tmp_path):
    bad = tmp_path / 'bad.yaml'
    bad.write_text('rrto_client:\n  record_window: 3\n')
    with pytest.raises(PlanError, match='no ros__parameters'):
        robot_plan(params_file=str(bad))
    unknown = tmp_path / 'unknown.yaml'
    unknown.write_text('/**/rrto_client:\n  ros__parameters:\n    record_windw: 3\n')
    with pytest.raises(PlanError, match='has no parameter record_windw'):
        robot_plan(params_file=str(unknown), workload='none')
    work = tmp_path / 'work.yaml'
    work.write_text('/**/rrto_workload:\n  ros__parameters:\n    comand: [x]\n')
    with pytest.raises(PlanError, match='rrto_workload has no setting comand'):
        robot_plan(params_file=str(work))


def test_with_host_port():
    assert with_host_port('tcp://a:1', 'b') == 'tcp://b:1'
    assert with_host_port('tcp://*:5555', '', '6') == 'tcp://*:6'
    assert with_host_port('tcp://[::1]:5', '', 9) == 'tcp://[::1]:9'
    with pytest.raises(PlanError):
        with_host_port('ipc:///tmp/x', 'h')


def test_workload_env_strips_what_the_ros_wheels_bootstrapper_added():
    libs = os.path.join(sys.prefix, 'lib', 'python3.11', 'site-packages', 'ros_rcl.libs')
    env = {'_ROS_WHEELS_BOOTSTRAP_COMPLETE': '1', 'LD_LIBRARY_PATH':
           os.pathsep.join([libs, '/opt/mine', os.path.join(sys.prefix, 'lib')]), 'A': 'b'}
    assert workload_env(env) == {'LD_LIBRARY_PATH': '/opt/mine', 'A': 'b'}
    assert workload_env({'LD_LIBRARY_PATH': libs}) == {'LD_LIBRARY_PATH': libs}


def test_wait_for_agent(tmp_path):
    import socket
    path = str(tmp_path / 'a.sock')
    assert not wait_for_agent(path, 0.2)
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(path)            # bound, never listening: like a file left by a dead node
    stale.close()
    assert not wait_for_agent(path, 0.3, started=time.time() + 60)
    os.unlink(path)
    live = socket.socket(socket.AF_UNIX)
    live.bind(path)
    live.listen(1)
    try:
        assert wait_for_agent(path, 1.0)
        assert wait_for_agent(path, 1.0, started=time.time() + 60)   # old but listening
    finally:
        live.close()


def test_run_refuses_to_start_without_a_client_node(tmp_path):
    r = subprocess.run([sys.executable, '-m', 'rrto_ros.launch_plan', 'run', '--agent-socket',
                        str(tmp_path / 'none.sock'), '--wait', '0.2', '--', 'true'],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert 'no rrto client node listens on' in r.stderr and 'robot.launch.py' in r.stderr


def test_show_prints_both_plans(interposer, examples_dir):
    for side in ('robot', 'edge'):
        r = subprocess.run([sys.executable, '-m', 'rrto_ros.launch_plan', 'show', side,
                            '--params-file', str(ROOT / 'config' / f'{side}.yaml')],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        assert (CLIENT_NODE if side == 'robot' else SERVER_NODE) in r.stdout
