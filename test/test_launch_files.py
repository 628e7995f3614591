# Copyright 2026 rrto_ros authors. Apache-2.0.
"""launch/*.launch.py without the ROS launch system (not installable here): their source is
checked with ``ast``, then they are run against small stand-ins for ``launch`` and
``launch_ros`` that record what they create. Where launch_ros exists (a ROS 2 machine),
the last test loads them with the real launch system too."""

from __future__ import annotations

import ast
import importlib.util
import pathlib
import sys
import types
from typing import Any, Dict, List

import pytest
from test_launch_plan import console_scripts

from rrto_ros import interposer_path
from rrto_ros.client.agent_socket import resolve as resolve_agent_socket
from rrto_ros.launch_plan import (CLIENT_NODE, EDGE_ARGUMENTS, load_params, ROBOT_ARGUMENTS,
                                  SERVER_NODE, WORKLOAD)
from rrto_ros.nodes.params import names, NODE_PARAMS

ROOT = pathlib.Path(__file__).resolve().parent.parent
LAUNCH = {'robot': ROOT / 'launch' / 'robot.launch.py', 'edge': ROOT / 'launch' / 'edge.launch.py'}
YAML = {'robot': ROOT / 'config' / 'robot.yaml', 'edge': ROOT / 'config' / 'edge.yaml'}
ARGUMENTS = {'robot': ROBOT_ARGUMENTS, 'edge': EDGE_ARGUMENTS}
NODE_OF = {'robot': CLIENT_NODE, 'edge': SERVER_NODE}


# ----------------------------------------------------------------- static checks (ast)
@pytest.mark.parametrize('side', ['robot', 'edge'])
def test_launch_file_source(side):
    tree = ast.parse(LAUNCH[side].read_text(), str(LAUNCH[side]))
    functions = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert 'generate_launch_description' in functions
    plan_imports = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
                    and n.module == 'rrto_ros.launch_plan']
    assert plan_imports, 'the launch file must take what to start from rrto_ros.launch_plan'
    assert f'{side}_plan' in {a.name for a in plan_imports[0].names}
    scripts = console_scripts()
    for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call)):
        for kw in call.keywords:
            if kw.arg == 'executable' and isinstance(kw.value, ast.Constant):
                assert kw.value.value in scripts, f'{kw.value.value} is no console script'
            if kw.arg == 'parameters':     # parameters come from the plan only
                assert ast.unparse(kw.value) == 'p.ros_parameters()'
        if ast.unparse(call.func) == 'Node':
            assert {kw.arg for kw in call.keywords} >= {'package', 'executable', 'name',
                                                        'parameters'}


# ----------------------------------------------------------------- run with stand-ins
class _Recorded:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args
        self.kwargs = kwargs


class _LaunchConfiguration:
    def __init__(self, name: str) -> None:
        self.name = name

    def perform(self, context: Any) -> str:
        return context.launch_configurations[self.name]


def _stub_modules() -> Dict[str, types.ModuleType]:
    mods = {name: types.ModuleType(name) for name in
            ('launch', 'launch.actions', 'launch.substitutions', 'launch_ros',
             'launch_ros.actions')}
    classes = {'launch': ['LaunchDescription'],
               'launch.actions': ['DeclareLaunchArgument', 'ExecuteProcess', 'OpaqueFunction',
                                  'LogInfo', 'SetEnvironmentVariable', 'TimerAction',
                                  'RegisterEventHandler', 'Shutdown'],
               'launch_ros.actions': ['Node']}
    for mod, names_ in classes.items():
        for n in names_:
            setattr(mods[mod], n, type(n, (_Recorded,), {}))
    mods['launch.substitutions'].LaunchConfiguration = _LaunchConfiguration
    return mods


def run_launch_file(side: str, monkeypatch, **arguments: str) -> Dict[str, Any]:
    """Load the launch file with stand-ins, evaluate it with these launch arguments."""
    for name, module in _stub_modules().items():
        monkeypatch.setitem(sys.modules, name, module)
    spec = importlib.util.spec_from_file_location(f'_launch_{side}', LAUNCH[side])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    ld = module.generate_launch_description()
    (entities,) = ld.args
    declared = {e.args[0]: e.kwargs for e in entities
                if type(e).__name__ == 'DeclareLaunchArgument'}
    unknown = set(arguments) - set(declared)
    assert not unknown, f'no launch argument {unknown}'
    context = types.SimpleNamespace(launch_configurations={
        k: arguments.get(k, v['default_value']) for k, v in declared.items()})
    actions: List[Any] = []
    for e in entities:
        if type(e).__name__ == 'OpaqueFunction':
            actions += e.kwargs['function'](context)
    return {'declared': declared, 'actions': actions}


def _nodes(result: Dict[str, Any]) -> List[Dict[str, Any]]:
    return [a.kwargs for a in result['actions'] if type(a).__name__ == 'Node']


def _processes(result: Dict[str, Any]) -> List[Dict[str, Any]]:
    return [a.kwargs for a in result['actions'] if type(a).__name__ == 'ExecuteProcess']


def _check_node_parameters(side: str, node: Dict[str, Any]) -> None:
    """Every parameter passed is in the YAML (or a documented override) and declared."""
    declared = set(names(NODE_PARAMS[NODE_OF[side]]))
    files = [p for p in node['parameters'] if isinstance(p, str)]
    assert files == [str(YAML[side])]
    in_yaml = set(load_params(files[0])[NODE_OF[side]])
    assert in_yaml <= declared
    for extra in (p for p in node['parameters'] if isinstance(p, dict)):
        assert set(extra) <= declared
        assert set(extra) <= in_yaml


@pytest.mark.parametrize('side', ['robot', 'edge'])
def test_launch_arguments_are_the_plans(side, monkeypatch, examples_dir):
    r = run_launch_file(side, monkeypatch)
    assert list(r['declared']) == [a.name for a in ARGUMENTS[side]]
    assert all(v['description'] for v in r['declared'].values())


def test_robot_launch_starts_client_node_and_interposed_workload(monkeypatch, examples_dir):
    r = run_launch_file('robot', monkeypatch)
    (node,) = _nodes(r)
    assert node['package'] == 'rrto_ros' and node['name'] == CLIENT_NODE
    assert node['executable'] in console_scripts()
    _check_node_parameters('robot', node)
    assert node['parameters'] == [str(YAML['robot'])]      # the YAML alone by default
    (work,) = _processes(r)
    assert work['name'] == WORKLOAD
    assert work['additional_env']['LD_PRELOAD'] == str(interposer_path())
    assert work['additional_env']['RRTO_AGENT_SOCKET'] == resolve_agent_socket(
        load_params(str(YAML['robot']))[CLIENT_NODE]['agent_socket'])
    assert work['cmd'][-2:] == [str(examples_dir / 'cnn_infer'), '20']


def test_robot_launch_server_host_port_and_workload(monkeypatch, examples_dir):
    r = run_launch_file('robot', monkeypatch, server_host='10.0.0.7', server_port='6001',
                        workload=f'{examples_dir / "vector_add"}')
    (node,) = _nodes(r)
    _check_node_parameters('robot', node)
    assert node['parameters'][1] == {'server_endpoint': 'tcp://10.0.0.7:6001'}
    (work,) = _processes(r)
    assert work['cmd'][-1] == str(examples_dir / 'vector_add')


def test_robot_launch_use_rrto_false_leaves_the_workload_untouched(monkeypatch, examples_dir):
    r = run_launch_file('robot', monkeypatch, use_rrto='false')
    assert _nodes(r) == []
    (work,) = _processes(r)
    assert work['cmd'] == [str(examples_dir / 'cnn_infer'), '20']
    assert 'LD_PRELOAD' not in work['additional_env']


def test_edge_launch_starts_server_node(monkeypatch):
    r = run_launch_file('edge', monkeypatch)
    (node,) = _nodes(r)
    assert node['package'] == 'rrto_ros' and node['name'] == SERVER_NODE
    assert node['executable'] in console_scripts()
    assert node['parameters'] == [str(YAML['edge'])]
    assert _processes(r) == []
    r = run_launch_file('edge', monkeypatch, port='6100', backend='emu')
    (node,) = _nodes(r)
    _check_node_parameters('edge', node)
    assert node['parameters'][1] == {'bind_endpoint': 'tcp://*:6100', 'backend': 'emu'}


# ----------------------------------------------------------------- the real launch system
@pytest.mark.parametrize('side', ['robot', 'edge'])
def test_with_the_ros_launch_system(side, examples_dir):
    pytest.importorskip('launch_ros')
    from launch import LaunchContext
    from launch.actions import DeclareLaunchArgument, ExecuteProcess, OpaqueFunction
    from launch.launch_description_sources import (
        get_launch_description_from_python_launch_file)
    from launch.utilities import perform_substitutions
    from launch_ros.actions import Node
    ld = get_launch_description_from_python_launch_file(str(LAUNCH[side]))
    assert [a.name for a in ld.get_launch_arguments()] == [a.name for a in ARGUMENTS[side]]
    context = LaunchContext()
    for e in ld.entities:
        if isinstance(e, DeclareLaunchArgument):
            value = perform_substitutions(context, e.default_value)
            context.launch_configurations[e.name] = value
    actions = [a for e in ld.entities if isinstance(e, OpaqueFunction)
               for a in (e.execute(context) or [])]
    nodes = [a for a in actions if isinstance(a, Node)]
    assert [n.node_executable for n in nodes] == [
        'rrto_client_node' if side == 'robot' else 'rrto_server_node']
    if side == 'robot':
        (work,) = [a for a in actions if isinstance(a, ExecuteProcess)
                   and not isinstance(a, Node)]
        env = {perform_substitutions(context, k): perform_substitutions(context, v)
               for k, v in work.additional_env}
        assert env['LD_PRELOAD'] == str(interposer_path())
