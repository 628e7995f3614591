# Copyright 2026 rrto_ros authors. Apache-2.0.
"""What to start on each side, defined once and without ROS.

``robot_plan`` and ``edge_plan`` read config/robot.yaml and config/edge.yaml (or a params
file given instead) and return a ``Plan``: the processes to start, each with its
executable, node name, parameters (the params file plus overrides) and extra environment.
``launch/robot.launch.py`` and ``launch/edge.launch.py`` turn a plan into launch actions;
the demo (``python -m rrto_ros.demo``) starts the same plan as plain processes, and the
tests check it. ``launch`` and ``launch_ros`` are not needed here.

The robot plan's workload runs through ``python -m rrto_ros.launch_plan run``: it waits
until the client node listens on its agent socket (the interposer connects once, at the
first CUDA call, and the client node needs a moment to start), then execs the program.

Commands: ``python -m rrto_ros.launch_plan show robot|edge`` prints a plan.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
import glob
import json
import os
import pathlib
import re
import shlex
import shutil
import socket
import stat
import sys
import time
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from rrto_ros import PACKAGE_DIR

PACKAGE = 'rrto_ros'
SOURCE_ROOT = PACKAGE_DIR.parent
CLIENT_NODE = 'rrto_client'          # also in rrto_ros.nodes.params (kept light here)
SERVER_NODE = 'rrto_server'
WORKLOAD = 'rrto_workload'           # the params-file entry describing the GPU program
CLIENT_EXECUTABLE = 'rrto_client_node'
SERVER_EXECUTABLE = 'rrto_server_node'
NODE_MODULES = {CLIENT_EXECUTABLE: 'rrto_ros.nodes.client_node',
                SERVER_EXECUTABLE: 'rrto_ros.nodes.server_node',
                'rrto_camera_node': 'rrto_ros.nodes.camera_node',
                'rrto_pose_node': 'rrto_ros.nodes.pose_node',
                'rrto_tracker_node': 'rrto_ros.nodes.tracker_node',
                'rrto_follower_node': 'rrto_ros.nodes.follower_node'}
# The people-following pipeline (pipeline_plan): node name -> executable, in start order.
CAMERA_NODE, POSE_NODE = 'rrto_camera', 'rrto_pose'   # also in rrto_ros.nodes.params
TRACKER_NODE, FOLLOWER_NODE = 'rrto_tracker', 'rrto_follower'
PIPELINE_NODES = {CAMERA_NODE: 'rrto_camera_node', POSE_NODE: 'rrto_pose_node',
                  TRACKER_NODE: 'rrto_tracker_node', FOLLOWER_NODE: 'rrto_follower_node'}
# Input topics a real RGB-D driver's names can replace (launch arguments <name>_topic).
PIPELINE_INPUTS = ('image', 'depth', 'camera_info')
DEFAULT_AGENT_WAIT_S = 15.0
WORKLOAD_KEYS = ('command', 'agent_wait_s')

RosParameters = List[Union[str, Dict[str, Any]]]


class PlanError(Exception):
    """The config cannot be turned into processes; the message says what to fix."""


@dataclass(frozen=True)
class LaunchArgument:
    name: str
    default: str
    description: str


ROBOT_ARGUMENTS: Tuple[LaunchArgument, ...] = (
    LaunchArgument('params_file', '', 'Parameters of the client node and the workload '
                   '(default: config/robot.yaml of this package).'),
    LaunchArgument('server_host', '', 'Host of the edge rrto server (default: from '
                   'server_endpoint in the params file).'),
    LaunchArgument('server_port', '', 'Port of the edge rrto server (default: from '
                   'server_endpoint in the params file).'),
    LaunchArgument('use_rrto', 'true', "true: the workload's CUDA work runs on the edge "
                   'server (LD_PRELOAD=librrto_cuda.so); false: it runs on the local GPU, '
                   'untouched, and no client node starts.'),
    LaunchArgument('workload', '', 'The GPU program and its arguments, e.g. '
                   '"/opt/app/infer --camera 0" (default: command in the params file; '
                   '"none": start no workload).'),
    LaunchArgument('pipeline', 'false', 'true: start the people-following pipeline instead '
                   'of the workload: camera, pose estimator (the GPU program, interposed when '
                   'use_rrto is true), tracker and follower (rrto_camera, rrto_pose, '
                   'rrto_tracker, rrto_follower in the params file).'),
    LaunchArgument('camera', 'true', 'pipeline: start the camera node (synthetic scene or '
                   'recorded sequence); false: a real RGB-D driver publishes the inputs '
                   '(see image_topic, depth_topic, camera_info_topic).'),
    LaunchArgument('image_topic', '', 'pipeline: color image topic (default: image), e.g. '
                   '/camera/camera/color/image_raw.'),
    LaunchArgument('depth_topic', '', 'pipeline: depth aligned to the color image (default: '
                   'depth), e.g. /camera/camera/aligned_depth_to_color/image_raw.'),
    LaunchArgument('camera_info_topic', '', 'pipeline: CameraInfo of the color image '
                   '(default: camera_info), e.g. /camera/camera/color/camera_info.'),
)

EDGE_ARGUMENTS: Tuple[LaunchArgument, ...] = (
    LaunchArgument('params_file', '', 'Parameters of the server node (default: '
                   'config/edge.yaml of this package).'),
    LaunchArgument('port', '', 'TCP port to listen on (default: from bind_endpoint in the '
                   'params file).'),
    LaunchArgument('backend', '', 'auto, cuda or emu (default: from the params file; auto '
                   'takes cuda when a GPU is usable, else emu, and the node logs why).'),
)


@dataclass
class Process:
    """One process of a plan: a node of this package, or a plain program."""

    name: str                         # node name, or a label for a plain program
    executable: str                   # console script (nodes) or program path
    args: List[str] = field(default_factory=list)        # plain programs only
    params_file: Optional[str] = None                    # nodes: applied first
    parameters: Dict[str, Any] = field(default_factory=dict)   # nodes: applied after it
    env: Dict[str, str] = field(default_factory=dict)    # added to the inherited environment
    namespace: str = ''
    remappings: Dict[str, str] = field(default_factory=dict)   # nodes: topic from -> to

    @property
    def is_node(self) -> bool:
        return self.executable in NODE_MODULES

    @property
    def package(self) -> Optional[str]:
        return PACKAGE if self.is_node else None

    def ros_parameters(self) -> RosParameters:
        """``parameters=`` of launch_ros' Node: the params file, then the overrides."""
        out: RosParameters = [self.params_file] if self.params_file else []
        if self.parameters:
            out.append(dict(self.parameters))
        return out

    def command(self, python: str = sys.executable) -> List[str]:
        """argv that starts this process without ros2 launch (nodes via ``python -m``)."""
        if not self.is_node:
            return [self.executable] + list(self.args)
        cmd = [python, '-m', NODE_MODULES[self.executable], '--ros-args',
               '-r', f'__node:={self.name}']
        if self.namespace:
            cmd += ['-r', f'__ns:={self.namespace}']
        for source, target in self.remappings.items():
            cmd += ['-r', f'{source}:={target}']
        if self.params_file:
            cmd += ['--params-file', self.params_file]
        for key, value in self.parameters.items():
            cmd += ['-p', f'{key}:={json.dumps(value)}']   # JSON scalars are valid YAML
        return cmd


@dataclass
class Plan:
    side: str
    processes: List[Process]
    agent_socket: str = ''            # robot: where the client node listens

    def get(self, name: str) -> Optional[Process]:
        return next((p for p in self.processes if p.name == name), None)

    def nodes(self) -> List[Process]:
        return [p for p in self.processes if p.is_node]

    def programs(self) -> List[Process]:
        return [p for p in self.processes if not p.is_node]


# ----------------------------------------------------------------- config files
def config_dir() -> pathlib.Path:
    """config/ of the source checkout, else share/rrto_ros/config of an install."""
    candidates = [SOURCE_ROOT / 'config']
    try:
        from ament_index_python.packages import get_package_share_directory
        candidates.append(pathlib.Path(get_package_share_directory(PACKAGE)) / 'config')
    except Exception:  # not installed in a ROS workspace (or no ament_index_python)
        pass
    candidates.append(pathlib.Path(sys.prefix) / 'share' / PACKAGE / 'config')
    for c in candidates:
        if (c / 'robot.yaml').is_file():
            return c
    raise PlanError('config/robot.yaml not found (looked in: ' +
                    ', '.join(map(str, candidates)) + '); reinstall rrto_ros')


def default_params_file(side: str) -> str:
    return str(config_dir() / f'{side}.yaml')


def _node_key(key: str) -> str:
    """'/**/rrto_client', '/rrto_client', 'rrto_client' -> 'rrto_client'; '/**' -> '**'."""
    return key.rstrip('/').split('/')[-1] if key.strip('/') != '**' else '**'


def load_params(path: str) -> Dict[str, Dict[str, Any]]:
    """A ROS 2 params file as {node name: {parameter: value}}."""
    import yaml
    try:
        with open(path) as f:
            data = yaml.safe_load(f) or {}
    except OSError as e:
        raise PlanError(f'cannot read params file {path}: {e}') from e
    except yaml.YAMLError as e:
        raise PlanError(f'params file {path} is not valid YAML: {e}') from e
    if not isinstance(data, dict):
        raise PlanError(f'params file {path}: expected node names at the top level')
    out: Dict[str, Dict[str, Any]] = {}
    for key, body in data.items():
        params = body.get('ros__parameters') if isinstance(body, dict) else None
        if not isinstance(params, dict):
            raise PlanError(f'params file {path}: entry {key!r} has no ros__parameters '
                            'mapping (ROS 2 params files look like "/**/node: '
                            'ros__parameters: {...}")')
        out.setdefault(_node_key(str(key)), {}).update(params)
    return out


def _node_params(params: Mapping[str, Dict[str, Any]], node: str) -> Dict[str, Any]:
    merged = dict(params.get('**', {}))
    merged.update(params.get(node, {}))
    return merged


def _side_params(params_file: str, node: str, overrides: Optional[Mapping[str, Any]]
                 ) -> Tuple[Dict[str, Dict[str, Any]], Dict[str, Any], Dict[str, Any]]:
    """The params file's contents, the node's parameters in it and a copy of the
    overrides, every name checked against the node's parameters."""
    params = load_params(params_file)
    mine = _node_params(params, node)
    overrides = dict(overrides or {})
    _check_names(node, list(mine), f'params file {params_file}')
    _check_names(node, list(overrides), 'overrides')
    return params, mine, overrides


def _check_names(node: str, names: Sequence[str], where: str) -> None:
    from rrto_ros.nodes.params import names as spec_names, NODE_PARAMS, unknown_names_message
    known = spec_names(NODE_PARAMS[node])
    unknown = [n for n in names if n not in known]
    if unknown:
        raise PlanError(f'{where}: {unknown_names_message(node, unknown, known)}')


# ----------------------------------------------------------------- endpoints
_TCP = re.compile(r'^tcp://(?P<host>\[[^\]]+\]|[^:/]+):(?P<port>\d+|\*)$')


def with_host_port(endpoint: str, host: str = '', port: Union[str, int] = '') -> str:
    """Replace the host and/or port of a tcp:// endpoint."""
    host, port = str(host or ''), str(port or '')
    if not host and not port:
        return endpoint
    m = _TCP.match(endpoint)
    if not m:
        raise PlanError(f'cannot set host/port on {endpoint!r}: not tcp://HOST:PORT')
    if port and not (port.isdigit() and 0 < int(port) < 65536):
        raise PlanError(f'port {port!r} is not a TCP port number')
    return f'tcp://{host or m["host"]}:{port or m["port"]}'


# ----------------------------------------------------------------- the plans
def parse_bool(value: Union[str, bool]) -> bool:
    if isinstance(value, bool):
        return value
    v = value.strip().lower()
    if v in ('true', '1', 'yes', 'on'):
        return True
    if v in ('false', '0', 'no', 'off'):
        return False
    raise PlanError(f'expected true or false, not {value!r}')


def source_checkout() -> Optional[pathlib.Path]:
    """The source checkout this package runs from (an editable or colcon --symlink-install
    install), or None for an installed copy."""
    is_checkout = (SOURCE_ROOT / 'setup.py').is_file() and (SOURCE_ROOT / 'examples').is_dir()
    return SOURCE_ROOT if is_checkout else None


def resolve_program(program: str, origin: str = '') -> str:
    """An absolute path for the workload's program (cwd, source checkout, PATH); ``origin``
    says where the command came from, for the error."""
    p = pathlib.Path(program).expanduser()
    checkout = source_checkout()
    if p.is_absolute():
        candidates = [p]
    elif '/' in program:
        candidates = [pathlib.Path.cwd() / p] + ([checkout / p] if checkout else [])
    else:
        found = shutil.which(program)
        candidates = [pathlib.Path(found)] if found else []
    for c in candidates:
        if c.is_file() and os.access(c, os.X_OK):
            return str(c.resolve())
    if 'build/examples' not in program:
        hint = 'check the path'
    elif checkout:
        hint = f'build it with `make examples` in {checkout}'
    else:
        hint = ('it is an example program of the rrto_ros source checkout (`make examples` '
                'builds it there), which this installation does not include')
    where = f' ({origin})' if origin else ''
    raise PlanError(f'workload program {program!r}{where} not found (looked in: '
                    f'{", ".join(map(str, candidates)) or "PATH"}); {hint}. Pass the '
                    'program to run: launch argument workload:="/path/app args" (launch_plan '
                    'show: --workload), workload:=none starts the client node alone; or set '
                    f'{WORKLOAD} command in your own params file')


def robot_plan(params_file: Optional[str] = None, server_host: str = '',
               server_port: Union[str, int] = '', use_rrto: Union[str, bool] = True,
               workload: Union[None, str, Sequence[str]] = None,
               overrides: Optional[Mapping[str, Any]] = None,
               namespace: str = '', python: str = sys.executable) -> Plan:
    """The robot side: the client node (if use_rrto) and the workload."""
    from rrto_ros.client.agent_socket import resolve as resolve_agent_socket
    from rrto_ros.client.config import ClientConfig
    params_file = params_file or default_params_file('robot')
    params, client, overrides = _side_params(params_file, CLIENT_NODE, overrides)
    defaults = ClientConfig()
    if server_host or server_port:
        base = overrides.get('server_endpoint',
                             client.get('server_endpoint', defaults.server_endpoint))
        overrides['server_endpoint'] = with_host_port(base, server_host, server_port)
    agent_socket = resolve_agent_socket(str(overrides.get(
        'agent_socket', client.get('agent_socket', defaults.agent_socket))))
    use = parse_bool(use_rrto)
    processes: List[Process] = []
    if use:
        processes.append(Process(CLIENT_NODE, CLIENT_EXECUTABLE, params_file=params_file,
                                 parameters=overrides, namespace=namespace))
    work = params.get(WORKLOAD, {})
    unknown = sorted(set(work) - set(WORKLOAD_KEYS))
    if unknown:
        raise PlanError(f'params file {params_file}: {WORKLOAD} has no setting '
                        f'{", ".join(unknown)} (it has: {", ".join(WORKLOAD_KEYS)})')
    origin = ''
    if workload is None or (isinstance(workload, str) and not workload.strip()):
        command = list(work.get('command') or [])
        origin = f'{WORKLOAD} command in {params_file}'
    elif isinstance(workload, str):
        command = [] if workload.strip().lower() == 'none' else shlex.split(workload)
    else:
        command = list(workload)
    if command:
        program = resolve_program(str(command[0]), origin)
        args = [str(a) for a in command[1:]]
        if use:
            wait = float(work.get('agent_wait_s', DEFAULT_AGENT_WAIT_S))
            processes.append(Process(
                WORKLOAD, python,
                args=['-m', 'rrto_ros.launch_plan', 'run', '--agent-socket', agent_socket,
                      '--wait', f'{wait:g}', '--', program] + args,
                env=interposer_env(agent_socket)))
        else:
            processes.append(Process(WORKLOAD, program, args=args))
    return Plan('robot', processes, agent_socket if use else '')


def edge_plan(params_file: Optional[str] = None, port: Union[str, int] = '',
              backend: str = '', overrides: Optional[Mapping[str, Any]] = None,
              namespace: str = '') -> Plan:
    """The edge side: the server node."""
    params_file = params_file or default_params_file('edge')
    _, server, overrides = _side_params(params_file, SERVER_NODE, overrides)
    if port:
        base = overrides.get('bind_endpoint', server.get('bind_endpoint', 'tcp://*:5555'))
        overrides['bind_endpoint'] = with_host_port(base, '', port)
    if backend:
        if backend not in ('auto', 'cuda', 'emu'):
            raise PlanError(f'backend must be auto, cuda or emu, not {backend!r}')
        overrides['backend'] = backend
    return Plan('edge', [Process(SERVER_NODE, SERVER_EXECUTABLE, params_file=params_file,
                                 parameters=overrides, namespace=namespace)])


def pipeline_plan(params_file: Optional[str] = None, server_host: str = '',
                  server_port: Union[str, int] = '', use_rrto: Union[str, bool] = True,
                  camera: Union[str, bool] = True,
                  topics: Optional[Mapping[str, str]] = None,
                  overrides: Optional[Mapping[str, Any]] = None,
                  node_overrides: Optional[Mapping[str, Mapping[str, Any]]] = None,
                  workload: Union[None, str, Sequence[str]] = None,
                  namespace: str = '', python: str = sys.executable) -> Plan:
    """The robot side with the people-following pipeline: the client node (if use_rrto), the
    camera (if ``camera``), the pose node, the tracker and the follower.

    The pose node is the GPU program: with use_rrto it runs like the workload (LD_PRELOAD,
    started once the client node listens), else as a plain node on the local GPU. ``topics``
    maps pipeline inputs (``image``, ``depth``, ``camera_info``) to a driver's topic names;
    ``node_overrides`` maps a pipeline node name to parameter overrides.
    """
    if workload is not None and not (isinstance(workload, str) and
                                     workload.strip().lower() in ('', 'none')):
        raise PlanError('pipeline:=true starts the pose node as the GPU program: leave '
                        'workload unset (or use pipeline:=false to run that workload)')
    params_file = params_file or default_params_file('robot')
    base = robot_plan(params_file, server_host, server_port, use_rrto, workload='none',
                      overrides=overrides, namespace=namespace, python=python)
    params = load_params(params_file)
    node_overrides = {k: dict(v) for k, v in (node_overrides or {}).items()}
    unknown = sorted(set(node_overrides) - set(PIPELINE_NODES))
    if unknown:
        raise PlanError(f'node_overrides: no pipeline node {", ".join(unknown)} (they are: '
                        f'{", ".join(PIPELINE_NODES)})')
    remaps = {}
    for name, topic in (topics or {}).items():
        if name not in PIPELINE_INPUTS:
            raise PlanError(f'topics: {name!r} is no pipeline input (they are: '
                            f'{", ".join(PIPELINE_INPUTS)})')
        if topic:
            remaps[name] = str(topic)
    processes = list(base.processes)
    for node, executable in PIPELINE_NODES.items():
        if node == CAMERA_NODE and not parse_bool(camera):
            continue
        mine = node_overrides.get(node, {})
        _check_names(node, list(_node_params(params, node)), f'params file {params_file}')
        _check_names(node, list(mine), 'node_overrides')
        p = Process(node, executable, params_file=params_file, parameters=mine,
                    namespace=namespace, remappings=dict(remaps))
        if node == POSE_NODE and base.agent_socket:
            wait = float(params.get(WORKLOAD, {}).get('agent_wait_s', DEFAULT_AGENT_WAIT_S))
            p = Process(POSE_NODE, python,
                        args=['-m', 'rrto_ros.launch_plan', 'run', '--agent-socket',
                              base.agent_socket, '--wait', f'{wait:g}', '--'] +
                        p.command(python), env=interposer_env(base.agent_socket))
        processes.append(p)
    return Plan('robot', processes, base.agent_socket)


def demo_pipeline_plan(server_host: str = '127.0.0.1', server_port: Union[str, int] = '',
                       agent_socket: str = '', use_rrto: bool = True,
                       pose_source: str = 'ground_truth', namespace: str = '',
                       python: str = sys.executable,
                       client: Optional[Mapping[str, Any]] = None,
                       **node_overrides: Mapping[str, Any]) -> Plan:
    """The whole pipeline on one machine for the demo: the synthetic camera and, by default,
    the ground-truth pose source (the emu backend cannot run the real network; on a cuda
    server pass pose_source='model'). ``client``: overrides of the client node's parameters
    (its keys, e.g. ``rrto_ros.protocol.keys.client_parameters(...)``). Extra keyword
    arguments are node_overrides (``rrto_follower={'standoff_m': 2.0}``)."""
    overrides = {k: dict(v) for k, v in node_overrides.items()}
    overrides.setdefault(CAMERA_NODE, {}).setdefault('source', 'synthetic')
    overrides.setdefault(POSE_NODE, {}).setdefault('source', pose_source)
    mine = dict(client or {})
    if agent_socket:
        mine['agent_socket'] = agent_socket
    return pipeline_plan(server_host=server_host, server_port=server_port, use_rrto=use_rrto,
                         overrides=mine or None,
                         node_overrides=overrides, namespace=namespace, python=python)


def interposer_env(agent_socket: str) -> Dict[str, str]:
    """additional_env of an interposed workload."""
    from rrto_ros import interposer_path
    try:
        lib = str(interposer_path())
    except FileNotFoundError as e:
        raise PlanError(str(e)) from e
    return {'LD_PRELOAD': lib, 'RRTO_AGENT_SOCKET': agent_socket}


# ----------------------------------------------------------------- running a workload
BOOTSTRAP_GUARD = '_ROS_WHEELS_BOOTSTRAP_COMPLETE'


def workload_env(env: Mapping[str, str]) -> Dict[str, str]:
    """``env`` without what the PyPI ROS wheels' bootstrapper added (its re-exec guard and
    its LD_LIBRARY_PATH entries), so the app sees the environment it was launched with."""
    out = dict(env)
    if out.pop(BOOTSTRAP_GUARD, None) is None:
        return out
    added = {os.path.join(sys.prefix, 'lib')}
    added.update(os.path.realpath(p) for p in
                 glob.glob(os.path.join(sys.prefix, 'lib', 'python*', 'site-packages',
                                        'ros_*.libs')))
    kept = [p for p in out.get('LD_LIBRARY_PATH', '').split(os.pathsep)
            if p and p not in added and not re.search(r'/site-packages/ros_[^/]*\.libs/?$', p)]
    if kept:
        out['LD_LIBRARY_PATH'] = os.pathsep.join(kept)
    else:
        out.pop('LD_LIBRARY_PATH', None)
    return out


def _accepts(path: str) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
        return True
    except OSError:
        return False
    finally:
        probe.close()


def wait_for_agent(path: str, timeout_s: float, started: Optional[float] = None) -> bool:
    """Wait until a client node listens on ``path``.

    A socket created since ``started`` (wall clock) belongs to a client started with us and
    needs no probe; an older one is probed once (an old file may be left by a dead node).
    """
    started = time.time() if started is None else started
    deadline = time.monotonic() + timeout_s
    probed_mtime = None
    while True:
        try:
            st = os.stat(path)
        except OSError:
            st = None
        if st is not None and stat.S_ISSOCK(st.st_mode):
            if st.st_mtime >= started - 2.0:
                time.sleep(0.05)            # bind() and listen() follow each other
                return True
            if st.st_mtime != probed_mtime:
                probed_mtime = st.st_mtime
                if _accepts(path):
                    return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def run_workload(agent_socket: str, wait_s: float, command: Sequence[str]) -> int:
    """Wait for the client node, then exec ``command`` in this process (keeps the pid)."""
    if not wait_for_agent(agent_socket, wait_s):
        print(f'[rrto] no rrto client node listens on {agent_socket} after {wait_s:g} s, so '
              f'{command[0]} was not started. Start the client node (ros2 launch rrto_ros '
              'robot.launch.py) and check its agent_socket parameter and log.',
              file=sys.stderr, flush=True)
        return 1
    env = workload_env(os.environ)
    try:
        os.execvpe(command[0], list(command), env)
    except OSError as e:
        print(f'[rrto] cannot start {command[0]}: {e}', file=sys.stderr, flush=True)
        return 127
    return 0   # not reached


def _show(plan: Plan) -> str:
    lines = [f'# {plan.side} plan']
    for p in plan.processes:
        env = ' '.join(f'{k}={shlex.quote(v)}' for k, v in p.env.items())
        lines.append(f'{p.name}: {env + " " if env else ""}{shlex.join(p.command())}')
    return '\n'.join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog='python -m rrto_ros.launch_plan',
                                 description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest='cmd', required=True)
    show = sub.add_parser('show', help='print what a side starts')
    show.add_argument('side', choices=('robot', 'edge'))
    show.add_argument('--params-file')
    show.add_argument('--pipeline', action='store_true',
                      help='robot: the people-following pipeline instead of the workload')
    show.add_argument('--workload', help='robot: the launch argument workload (the program '
                      'and its arguments, or none)')
    run = sub.add_parser('run', help='wait for the client node, then exec a workload')
    run.add_argument('--agent-socket', required=True)
    run.add_argument('--wait', type=float, default=DEFAULT_AGENT_WAIT_S)
    run.add_argument('command', nargs=argparse.REMAINDER)
    a = ap.parse_args(argv)
    if a.cmd == 'run':
        command = a.command[1:] if a.command[:1] == ['--'] else a.command
        if not command:
            ap.error('give the program after --')
        return run_workload(a.agent_socket, a.wait, command)
    try:
        if a.side == 'robot' and a.pipeline:
            plan = pipeline_plan(a.params_file)
        else:
            plan = (robot_plan(a.params_file, workload=a.workload) if a.side == 'robot' else
                    edge_plan(a.params_file))
    except PlanError as e:
        print(f'launch_plan: {e}', file=sys.stderr)
        return 2
    print(_show(plan))
    return 0


if __name__ == '__main__':
    sys.exit(main())
