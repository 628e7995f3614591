# Copyright 2026 rrto_ros authors. Apache-2.0.
"""The people-following pipeline in the launch plan and robot.launch.py (pipeline:=true):
which processes start, with which parameters, remappings and environment; and the plan's
processes run for real (client node, camera, interposed pose node, tracker, follower)."""

from __future__ import annotations

import contextlib
import os
import pathlib
import random
import subprocess
import sys
import time
from typing import List

import pytest
from test_launch_files import _nodes, _processes, run_launch_file
from test_launch_plan import console_scripts

from rrto_ros import interposer_path
from rrto_ros.client.agent_socket import default_agent_socket
from rrto_ros.launch_plan import (CAMERA_NODE, CLIENT_NODE, demo_pipeline_plan,
                                  FOLLOWER_NODE, load_params, NODE_MODULES, pipeline_plan,
                                  PlanError, POSE_NODE, TRACKER_NODE, WORKLOAD)
from rrto_ros.nodes.params import names, NODE_PARAMS

ROOT = pathlib.Path(__file__).resolve().parent.parent
ROBOT_YAML = str(ROOT / 'config' / 'robot.yaml')
PIPELINE = [CAMERA_NODE, POSE_NODE, TRACKER_NODE, FOLLOWER_NODE]


def test_robot_yaml_documents_every_pipeline_parameter():
    params = load_params(ROBOT_YAML)
    for node in PIPELINE:
        assert set(params[node]) == set(names(NODE_PARAMS[node])), node


def test_pipeline_executables_are_console_scripts():
    scripts = console_scripts()
    for exe in ('rrto_camera_node', 'rrto_pose_node', 'rrto_tracker_node',
                'rrto_follower_node'):
        assert scripts[exe] == NODE_MODULES[exe] + ':main'


def test_pipeline_plan_with_rrto(interposer):
    plan = pipeline_plan()
    assert [p.name for p in plan.processes] == [CLIENT_NODE] + PIPELINE
    assert plan.get(WORKLOAD) is None
    pose = plan.get(POSE_NODE)
    assert not pose.is_node                            # started through the agent wait
    assert pose.env == {'LD_PRELOAD': str(interposer_path()),
                        'RRTO_AGENT_SOCKET': default_agent_socket()}
    cmd = pose.command()
    assert cmd[:4] == [sys.executable, '-m', 'rrto_ros.launch_plan', 'run']
    inner = cmd[cmd.index('--') + 1:]
    assert inner[:3] == [sys.executable, '-m', 'rrto_ros.nodes.pose_node']
    assert '__node:=rrto_pose' in inner and ROBOT_YAML in inner
    for name in (CAMERA_NODE, TRACKER_NODE, FOLLOWER_NODE):
        p = plan.get(name)
        assert p.is_node and p.env == {} and p.ros_parameters() == [ROBOT_YAML]


def test_pipeline_plan_local_gpu_no_camera_and_driver_topics():
    topics = {'image': '/camera/camera/color/image_raw',
              'depth': '/camera/camera/aligned_depth_to_color/image_raw',
              'camera_info': '/camera/camera/color/camera_info'}
    plan = pipeline_plan(use_rrto='false', camera='false', topics=topics,
                         node_overrides={FOLLOWER_NODE: {'standoff_m': 2.0}})
    assert [p.name for p in plan.processes] == [POSE_NODE, TRACKER_NODE, FOLLOWER_NODE]
    pose = plan.get(POSE_NODE)
    assert pose.is_node and pose.env == {} and plan.agent_socket == ''
    assert pose.remappings == topics
    cmd = pose.command(python='py')
    assert '/camera/camera/color/image_raw' in ' '.join(cmd)
    assert 'image:=/camera/camera/color/image_raw' in cmd
    assert plan.get(FOLLOWER_NODE).parameters == {'standoff_m': 2.0}


@pytest.mark.parametrize('kwargs, message', [
    ({'workload': '/bin/app'}, 'leave workload unset'),
    ({'node_overrides': {'rrto_camera': {'sorce': 'x'}}}, 'has no parameter sorce'),
    ({'node_overrides': {'rrto_lidar': {}}}, 'no pipeline node rrto_lidar'),
    ({'topics': {'rgb': '/x'}}, "'rgb' is no pipeline input"),
    ({'camera': 'maybe'}, 'expected true or false'),
])
def test_pipeline_plan_errors(kwargs, message):
    with pytest.raises(PlanError, match=message):
        pipeline_plan(use_rrto=False, **kwargs)


def test_demo_pipeline_plan_uses_ground_truth(interposer):
    plan = demo_pipeline_plan(server_port=6000, agent_socket='/tmp/x.sock',
                              rrto_follower={'standoff_m': 2.0})
    client = plan.get(CLIENT_NODE)
    assert client.parameters == {'server_endpoint': 'tcp://127.0.0.1:6000',
                                 'agent_socket': '/tmp/x.sock'}
    assert plan.get(CAMERA_NODE).parameters == {'source': 'synthetic'}
    assert 'source:="ground_truth"' in plan.get(POSE_NODE).command()
    assert plan.get(POSE_NODE).env['RRTO_AGENT_SOCKET'] == '/tmp/x.sock'
    assert plan.get(FOLLOWER_NODE).parameters == {'standoff_m': 2.0}


# ----------------------------------------------------------------- robot.launch.py
def test_robot_launch_pipeline(monkeypatch, interposer):
    r = run_launch_file('robot', monkeypatch, pipeline='true')
    nodes = {n['name']: n for n in _nodes(r)}
    assert list(nodes) == [CLIENT_NODE, CAMERA_NODE, TRACKER_NODE, FOLLOWER_NODE]
    for name, n in nodes.items():
        assert n['executable'] in console_scripts() and n['parameters'] == [ROBOT_YAML]
    (pose,) = _processes(r)
    assert pose['name'] == POSE_NODE
    assert pose['additional_env']['LD_PRELOAD'] == str(interposer_path())
    assert 'rrto_ros.nodes.pose_node' in pose['cmd']


def test_robot_launch_pipeline_with_a_real_camera_driver(monkeypatch):
    r = run_launch_file('robot', monkeypatch, pipeline='true', camera='false',
                        use_rrto='false', image_topic='/cam/color',
                        depth_topic='/cam/aligned_depth', camera_info_topic='/cam/info')
    nodes = {n['name']: n for n in _nodes(r)}
    assert list(nodes) == [POSE_NODE, TRACKER_NODE, FOLLOWER_NODE]
    assert _processes(r) == []
    assert dict(nodes[TRACKER_NODE]['remappings']) == {
        'image': '/cam/color', 'depth': '/cam/aligned_depth', 'camera_info': '/cam/info'}


# ----------------------------------------------------------------- the plan, run
def test_pipeline_plan_runs(tmp_path, interposer, monkeypatch):
    """The processes of demo_pipeline_plan (client node, camera, pose node under LD_PRELOAD,
    tracker, follower) start, and the follower drives towards the synthetic person."""
    rclpy = pytest.importorskip('rclpy')
    from geometry_msgs.msg import Twist
    from procs import reaped
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.signals import SignalHandlerOptions
    monkeypatch.setenv('ROS_DOMAIN_ID', str(random.Random(os.getpid()).randint(101, 200)))
    monkeypatch.setenv('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    monkeypatch.setenv('RCUTILS_COLORIZED_OUTPUT', '0')
    ns = f'/pipe{os.getpid()}'
    from rrto_ros.protocol import keys    # robot.yaml asks for CURVE: keys of the test's own
    made = keys.one_machine(str(tmp_path / 'keys'))
    plan = demo_pipeline_plan(server_port=1, agent_socket=str(tmp_path / 'agent.sock'),
                              namespace=ns, client=keys.client_parameters(made),
                              rrto_camera={'width': 320, 'height': 240, 'fx': 262.5})
    outputs = {}
    logs = {p.name: tmp_path / f'{p.name}.log' for p in plan.processes}
    with contextlib.ExitStack() as stack:
        # Output to files, not pipes: a node blocked on a full pipe would not stop.
        procs = {p.name: stack.enter_context(reaped(subprocess.Popen(
            p.command(), env=dict(os.environ, **p.env),
            stdout=stack.enter_context(open(logs[p.name], 'w')), stderr=subprocess.STDOUT,
            text=True))) for p in plan.processes}
        context = rclpy.Context()
        rclpy.init(context=context, signal_handler_options=SignalHandlerOptions.NO)
        stack.callback(rclpy.try_shutdown, context=context)
        listener = rclpy.create_node('listener', context=context, namespace=ns)
        got: List[Twist] = []
        listener.create_subscription(Twist, 'cmd_vel', got.append, 10)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(listener)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(m.linear.x > 0.05 for m in got):
            executor.spin_once(timeout_sec=0.2)
            dead = [name for name, pr in procs.items() if pr.poll() is not None]
            if dead:
                pytest.fail(f'{dead[0]} exited: {logs[dead[0]].read_text()}')
        executor.shutdown()
        listener.destroy_node()
        maps = pathlib.Path(f'/proc/{procs[POSE_NODE].pid}/maps')
        if maps.exists():    # the pose node runs with the interposer loaded
            assert 'librrto_cuda.so' in maps.read_text()
        for name, pr in procs.items():
            pr.terminate()
        for name, pr in procs.items():
            pr.wait(timeout=20)
            outputs[name] = logs[name].read_text()
    assert any(m.linear.x > 0.05 for m in got), (f'{len(got)} cmd_vel, none forward', outputs)
    pose_log = outputs[POSE_NODE]
    assert 'source ground_truth' in pose_log and 'emu backend' in pose_log, pose_log
    assert all('Traceback' not in out for out in outputs.values()), outputs
