# Copyright 2026 rrto_ros authors. Apache-2.0.
"""The README's demo: the edge and robot sides of rrto_ros on this machine, as ROS 2 nodes.

It starts what ``ros2 launch rrto_ros edge.launch.py`` and ``robot.launch.py`` start, from
the same plan (rrto_ros/launch_plan.py, config/*.yaml): the server node, the client node
and the CNN example (``build/examples/cnn_infer N``) as the workload, its CUDA calls sent
through the interposer to the server. It follows the run on /diagnostics, prints the
progress and phase changes, and ends with a summary. The server uses the ``cuda`` backend
when this machine has a GPU, else ``emu``. The link runs with CURVE, as the shipped configs
have it, with keys made for the run in its temporary directory (the user's own keys are
left alone). Every process is stopped on exit or Ctrl-C.
"""

from __future__ import annotations

import argparse
from collections import deque
import os
import pathlib
import pty
import queue
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Callable, Deque, Dict, Iterator, List, Optional, Tuple

from rrto_ros.client.config import MODES
from rrto_ros.launch_plan import (CLIENT_NODE, demo_pipeline_plan, edge_plan, Plan,
                                  PlanError, Process, robot_plan, SERVER_NODE)
from rrto_ros.nodes.status import RECENT
from rrto_ros.protocol import keys
from rrto_ros.stack import free_tcp_port

ROOT = pathlib.Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 30.0      # both nodes up and reporting
FINAL_STATS_TIMEOUT_S = 5.0
STOP_TIMEOUT_S = 10.0
DEFAULT_MODE = 'replay' if 'replay' in MODES else 'pipelined'
_ROS_LOG = re.compile(r'^\[(\w+)\] \[[\d.]+\] \[[^\]]*\]: (.*)$')


class DemoError(Exception):
    """The demo cannot go on; the message says what happened and what to do."""


# ----------------------------------------------------------------- child processes
def _check_running(children: List['Child'], kind: str, when: str) -> None:
    """Raise DemoError naming the first of ``children`` that has exited, with its output."""
    for c in children:
        if not c.running():
            raise DemoError(f'the {c.tag} {kind} exited (code {c.proc.returncode}) {when}; '
                            f'its last lines:\n{c.last_lines()}')


class Child:
    """A started process whose output lines are printed with a tag and kept for errors."""

    def __init__(self, tag: str, cmd: List[str], env: Dict[str, str],
                 on_line: Optional[Callable[[str], None]] = None, tty: bool = False) -> None:
        self.tag = tag
        self.tail: Deque[str] = deque(maxlen=30)
        self._on_line = on_line
        if tty:   # a terminal makes a C program's stdout line-buffered: live progress
            master, slave = pty.openpty()
            self.proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=slave,
                                         stderr=slave, start_new_session=True)
            os.close(slave)
            lines: Iterator[str] = _pty_lines(master)
        else:
            self.proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                         text=True, errors='replace',
                                         start_new_session=True)   # we stop it, in order
            assert self.proc.stdout is not None
            lines = iter(self.proc.stdout)
        self._reader = threading.Thread(target=self._read, args=(lines,), name=f'demo-{tag}',
                                        daemon=True)
        self._reader.start()

    def _read(self, lines: Iterator[str]) -> None:
        for raw in lines:
            line = raw.rstrip()
            self.tail.append(line)
            m = _ROS_LOG.match(line)
            shown = (m[2] if m[1] == 'INFO' else f'{m[1]}: {m[2]}') if m else line
            print(f'  {self.tag:<6}| {shown}', flush=True)
            if self._on_line is not None:
                self._on_line(line)

    def running(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = STOP_TIMEOUT_S,
             hurry: Callable[[], bool] = lambda: False) -> Optional[int]:
        """SIGINT (a node's Ctrl-C), then SIGTERM, then SIGKILL, each to the child's whole
        process group (it runs in a session of its own); straight to SIGKILL once ``hurry()``
        (the user pressed Ctrl-C again)."""
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
            if self.proc.poll() is not None:
                break
            if hurry() and sig != signal.SIGKILL:
                continue
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + (timeout if sig != signal.SIGKILL else 5)
            while self.proc.poll() is None and time.monotonic() < deadline and \
                    (sig == signal.SIGKILL or not hurry()):
                time.sleep(0.02)
            if self.proc.poll() is None and sig != signal.SIGKILL and not hurry():
                print(f'demo: {self.tag} did not stop on {sig.name}', flush=True)
        try:   # whatever the child left in its group (a grandchild) goes with it
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self._reader.join(2)
        return self.proc.poll()

    def last_lines(self, n: int = 12) -> str:
        return '\n'.join(f'    {ln}' for ln in list(self.tail)[-n:])


def _pty_lines(fd: int) -> Iterator[str]:
    buf = b''
    try:
        while True:
            try:
                chunk = os.read(fd, 4096)
            except OSError:            # EIO: the program and its children closed the pty
                break
            if not chunk:
                break
            buf += chunk
            *done, buf = buf.split(b'\n')
            for line in done:
                yield line.decode(errors='replace').rstrip('\r')
        if buf:
            yield buf.decode(errors='replace').rstrip('\r')
    finally:
        os.close(fd)


# ----------------------------------------------------------------- /diagnostics
class Monitor:
    """An rclpy node that keeps the latest /diagnostics status of each name (in prefix)."""

    def __init__(self, prefix: str) -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.signals import SignalHandlerOptions
        from diagnostic_msgs.msg import DiagnosticArray
        self._rclpy = rclpy
        self.prefix = prefix
        self.context = rclpy.Context()
        rclpy.init(context=self.context, signal_handler_options=SignalHandlerOptions.NO)
        self.node = rclpy.create_node(f'rrto_demo_monitor_{os.getpid()}', context=self.context)
        self.statuses: Dict[str, Tuple[int, str, Dict[str, str]]] = {}
        self.updates: 'queue.Queue[None]' = queue.Queue()
        self._lock = threading.Lock()
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_msg, 50)
        self._executor = SingleThreadedExecutor(context=self.context)
        self._executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, name='demo-monitor', daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        try:
            self._executor.spin()
        except Exception:  # the context was shut down under it: the demo is ending
            pass

    def _on_msg(self, msg: Any) -> None:
        with self._lock:
            for s in msg.status:
                if s.name.startswith(self.prefix):
                    level = s.level[0] if isinstance(s.level, bytes) else int(s.level)
                    self.statuses[s.name[len(self.prefix):]] = (
                        level, s.message, {kv.key: kv.value for kv in s.values})
        self.updates.put(None)

    def get(self, name: str) -> Optional[Dict[str, str]]:
        with self._lock:
            entry = self.statuses.get(name)
        return dict(entry[2]) if entry else None

    def sessions(self, node: str) -> Dict[str, Dict[str, str]]:
        head = f'{node}: session '
        with self._lock:
            return {k[len(head):]: dict(v[2]) for k, v in self.statuses.items()
                    if k.startswith(head)}

    def clear(self) -> None:
        with self._lock:
            self.statuses.clear()

    def close(self) -> None:
        self._executor.shutdown(timeout_sec=1)
        self.node.destroy_node()
        self._rclpy.try_shutdown(context=self.context)
        self._thread.join(2)


# ----------------------------------------------------------------- the run
class Demo:
    def __init__(self, a: argparse.Namespace) -> None:
        self.a = a
        self.tmp = tempfile.TemporaryDirectory(prefix='rrto-demo-')
        self.namespace = f'/rrto_demo_{os.getpid()}'
        self.children: List[Child] = []
        self.monitor: Optional[Monitor] = None
        self.app_lines: List[Tuple[float, str]] = []
        self._phases: Dict[str, str] = {}
        self._session: Optional[str] = None     # the app's session, as the client names it
        self._replay_told = False
        self._hurry = False                     # Ctrl-C during the clean-up: no more waiting
        self.interrupted = False
        self.started = time.monotonic()
        self.env = dict(os.environ)
        # One machine: keep discovery on loopback unless the user chose otherwise.
        self.env.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
        self.env['PYTHONUNBUFFERED'] = '1'
        self.env['RCUTILS_COLORIZED_OUTPUT'] = '0'
        os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')

    # --------------------------------------------------------------- helpers
    def _start(self, tag: str, p: Process, on_line: Optional[Callable[[str], None]] = None,
               tty: bool = False) -> Child:
        env = dict(self.env)
        env.update(p.env)
        child = Child(tag, p.command(), env, on_line, tty)
        self.children.append(child)
        return child

    def _wait_for(self, what: str, ready: Callable[[], bool], timeout: float,
                  watch: List[Child]) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            _check_running(watch, 'process', f'before {what}')
            if time.monotonic() > deadline:
                raise DemoError(f'no {what} after {timeout:.0f} s. Check the logs above; on a '
                                'loaded machine, try again.')
            time.sleep(0.1)

    # --------------------------------------------------------------- steps
    def _edge(self) -> Tuple[int, Dict[str, str], Plan]:
        """A free port, keys made for this run, and the edge plan listening there."""
        port = free_tcp_port()
        made = keys.one_machine(os.path.join(self.tmp.name, 'keys'), 'demo-robot')
        edge = edge_plan(backend='' if self.a.backend == 'auto' else self.a.backend,
                         overrides={'bind_endpoint': f'tcp://127.0.0.1:{port}',
                                    **keys.server_parameters(made)},
                         namespace=self.namespace)
        return port, made, edge

    def run(self) -> int:
        a = self.a
        port, made, edge = self._edge()
        sock = os.path.join(self.tmp.name, 'agent.sock')
        robot = robot_plan(server_host='127.0.0.1', server_port=port,
                           overrides={'agent_socket': sock, 'mode': a.mode,
                                      'diagnostics_period_s': 0.1,   # follow phases
                                      **keys.client_parameters(made)},
                           workload=[a.program, str(a.inferences)], namespace=self.namespace)
        prefix = self.namespace.lstrip('/') + '/'
        self.monitor = mon = Monitor(prefix)

        print(f'demo: starting the edge side (server node) and the robot side (client node, '
              f'then {pathlib.Path(a.program).name} {a.inferences}) from config/edge.yaml and '
              'config/robot.yaml', flush=True)
        server = self._start('edge', edge.processes[0])
        client = self._start('robot', robot.get(CLIENT_NODE))
        self._wait_for('report from the server node on /diagnostics',
                       lambda: mon.get(f'{SERVER_NODE}: server') is not None,
                       START_TIMEOUT_S, [server, client])
        self._wait_for('report from the client node on /diagnostics',
                       lambda: mon.get(f'{CLIENT_NODE}: client') is not None,
                       START_TIMEOUT_S, [server, client])
        backend = mon.get(f'{SERVER_NODE}: server')['backend']
        print(f'demo: both nodes are up: server on tcp://127.0.0.1:{port} with the {backend} '
              f'backend, client in mode {a.mode}', flush=True)

        t0 = time.monotonic()
        app = self._start('app', robot.programs()[0], self._on_app_line, tty=True)
        try:
            self._follow(app, [server, client])
        except KeyboardInterrupt:
            self.interrupted = True
            self._hurry_on_signals()
            print('demo: interrupted; stopping the workload, then the nodes (Ctrl-C again '
                  'stops everything at once)', flush=True)
            app.stop(hurry=self.hurrying)
        wall = time.monotonic() - t0

        final = self._final_stats(self._session)
        client_rc = client.stop(hurry=self.hurrying)
        left = self._server_sessions_left()
        server_rc = server.stop(hurry=self.hurrying)
        return self._summary(app, final, wall, backend, left, client_rc, server_rc)

    # --------------------------------------------------------------- signals
    def _hurry_on_signals(self) -> None:
        """From now on Ctrl-C and SIGTERM do not interrupt the clean-up: they make it skip
        the graceful waits (every child still gets SIGKILL)."""
        def hurry(signum: int, frame: Any) -> None:
            if not self._hurry:
                print('demo: stopping every process now', flush=True)
            self._hurry = True
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, hurry)

    def hurrying(self) -> bool:
        return self._hurry

    # --------------------------------------------------------------- the pipeline
    def run_pipeline(self) -> int:
        """The people-following pipeline (``--pipeline``): camera -> pose node (the GPU
        program, under LD_PRELOAD) -> tracker -> follower, next to both rrto nodes."""
        a = self.a
        port, made, edge = self._edge()
        source = 'ground_truth' if a.pose_source == 'auto' else a.pose_source
        robot = demo_pipeline_plan(
            server_port=port, agent_socket=os.path.join(self.tmp.name, 'agent.sock'),
            pose_source=source, namespace=self.namespace,
            client={'mode': a.mode, **keys.client_parameters(made)})
        self.monitor = mon = Monitor(self.namespace.lstrip('/') + '/')
        print('demo: starting the edge side (server node) and the people-following robot side '
              '(client node, synthetic camera, pose node under LD_PRELOAD, tracker, follower) '
              f'from config/edge.yaml and config/robot.yaml; pose source {source}', flush=True)
        if source == 'ground_truth':
            print("demo: the pose node republishes the scene's ground-truth keypoints and runs "
                  'no network (the emu backend cannot run KAPAO): this shows the ROS wiring, '
                  'not offloading; --pose-source model runs the network on a cuda server',
                  flush=True)
        nodes = [self._start('edge', edge.processes[0])]
        nodes += [self._start(p.name.replace('rrto_', '')[:6], p) for p in robot.processes]
        for name in (f'{SERVER_NODE}: server', 'rrto_follower: follower'):
            self._wait_for(f'report "{name}" on /diagnostics',
                           lambda name=name: mon.get(name) is not None, START_TIMEOUT_S, nodes)
        deadline = time.monotonic() + a.seconds
        state = ''
        try:
            while time.monotonic() < deadline:
                _check_running(nodes, 'process', 'during the run')
                f = mon.get('rrto_follower: follower') or {}
                if f.get('state', '') != state:
                    state = f.get('state', '')
                    print(f'demo: follower {state} (linear {f.get("linear_x", "?")} m/s, '
                          f'distance {f.get("distance_m", "?")} m)', flush=True)
                time.sleep(0.2)
        except KeyboardInterrupt:
            self.interrupted = True
            self._hurry_on_signals()
            print('demo: interrupted; stopping the pipeline', flush=True)
        pose = mon.get('rrto_pose: poses') or {}
        track = mon.get('rrto_tracker: tracker') or {}
        follow = mon.get('rrto_follower: follower') or {}
        codes = [c.stop(hurry=self.hurrying) for c in reversed(nodes)]
        print('demo summary (people following)' +
              (' (interrupted: the run so far)' if self.interrupted else '') + ':')
        print(f'  pose node                {pose.get("frames", "?")} frames, source '
              f'{pose.get("source", source)}, random weights {pose.get("random_init", "?")}')
        print(f'  tracker                  {track.get("state", "?")}, '
              f'{track.get("published", "?")}'
              f' targets, last at x {track.get("x", "?")} y {track.get("y", "?")} '
              f'z {track.get("z", "?")} m (camera frame)')
        print(f'  follower                 {follow.get("state", "?")}, '
              f'{follow.get("commands", "?")} cmd_vel, last linear {follow.get("linear_x", "?")}'
              f' m/s at {follow.get("distance_m", "?")} m')
        clean = all(c == 0 for c in codes)
        print(f'  clean shutdown           {"yes" if clean else "NO"} (exit codes '
              f'{", ".join(map(str, codes))})')
        moved = float(track.get('published') or 0) > 0 and \
            float(follow.get('commands') or 0) > 0
        if self.interrupted:
            return 130
        return 0 if moved and clean else 1

    def _on_app_line(self, line: str) -> None:
        if line.startswith('infer '):
            self.app_lines.append((time.monotonic(), line))

    def _follow(self, app: Child, nodes: List[Child]) -> None:
        """Until the app exits: print session phase changes; note the app's session."""
        assert self.monitor is not None
        deadline = time.monotonic() + self.a.timeout
        while True:
            done = not app.running()
            for label, s in self.monitor.sessions(CLIENT_NODE).items():
                if s.get('pid') == str(app.proc.pid):
                    self._session = label
                    self._report_phase(label, s)
            if done:
                return
            _check_running(nodes, 'node', 'during the run')
            if time.monotonic() > deadline:
                raise DemoError(f'the workload did not finish within {self.a.timeout:.0f} s '
                                '(--timeout); it was stopped')
            try:
                self.monitor.updates.get(timeout=0.1)
            except queue.Empty:
                pass

    def _report_phase(self, label: str, s: Dict[str, str]) -> None:
        phase, was = s.get('phase', '?'), self._phases.get(label)
        if phase == was:
            return
        self._phases[label] = phase
        if phase == 'replaying' and not self._replay_told and _replay_start(s):
            self._replay_told = True    # once, counted where the client node counts it
            when = f'from inference {_replay_start(s)} on'
        else:
            when = f'after {s.get("inferences") or len(self.app_lines)} inferences'
        print(f'demo: session {label}: ' +
              (f'phase {was} -> {phase}' if was else f'opened, phase {phase}') +
              f' ({when})', flush=True)

    def _final_stats(self, label: Optional[str]) -> Dict[str, str]:
        """The session's last status, once the client node reports it ended."""
        assert self.monitor is not None
        deadline = time.monotonic() + FINAL_STATS_TIMEOUT_S
        last: Dict[str, str] = {}
        while True:   # once at least: in a hurry, the latest status is what there is
            for lbl, s in self.monitor.sessions(CLIENT_NODE).items():
                if label is None or lbl == label:
                    last = s
                    if s.get('state') in ('ended', 'lost'):
                        self._report_phase(lbl, s)
                        return s
            if time.monotonic() > deadline or self._hurry:
                return last
            time.sleep(0.1)

    def _server_sessions_left(self) -> str:
        """Sessions the server still holds once the client node has stopped."""
        assert self.monitor is not None
        self.monitor.clear()
        deadline = time.monotonic() + 4.0
        status: Optional[Dict[str, str]] = None
        while time.monotonic() < deadline and not self._hurry:
            status = self.monitor.get(f'{SERVER_NODE}: server')
            if status is not None and status.get('sessions') == '0':
                break
            time.sleep(0.1)
        return status.get('sessions', '?') if status else '?'

    def _summary(self, app: Child, s: Dict[str, str], wall: float, backend: str, left: str,
                 client_rc: Optional[int], server_rc: Optional[int]) -> int:
        n = self.a.inferences
        rc = app.proc.returncode
        passed = any('inferences PASS' in ln for ln in app.tail)
        correct = rc == 0 and passed
        inferences = len(self.app_lines)              # as the app reports them
        seen = s.get('inferences') or ''              # as the client node counted them
        brt = int(s.get('blocking_round_trips') or 0)
        overall = f'{brt / inferences:.2f}' if inferences else '?'
        now = s.get('round_trips_per_inference') or '?'
        latency, source = _number(s.get('latency_ms_p50')), 'client node'
        if latency is None and len(self.app_lines) > 2:
            gaps = [b[0] - a[0] for a, b in zip(self.app_lines, self.app_lines[1:])]
            latency, source = 1000 * statistics.median(gaps), "app's output"
        clean = client_rc == 0 and server_rc == 0 and left == '0'
        print('demo summary' + (' (interrupted: the run so far)' if self.interrupted else '')
              + ':')
        print(f'  backend                  {backend} (server node), mode {self.a.mode} '
              '(client node)')
        print(f'  inferences               {inferences} of {n}' +
              (f' ({seen} counted by the client node)' if seen else ''))
        if self.interrupted:
            print('  results correct          not known (interrupted before the app checked '
                  'its results)')
        else:
            print(f'  results correct          {"yes" if correct else "NO"} (app exit code {rc}'
                  f'{", PASS printed" if passed else ", no PASS line"})')
        total = f'{brt} in all = {overall} per inference'
        print('  blocking round trips     ' + (
            f'{now} per inference at the end (median of last {RECENT}); {total}'
            if now != '?' else f'{total} (set-up included)'))
        shown = f'{latency:.2f} ms p50' if latency is not None else '?'
        what = ('; on emu this is the CPU stand-in running the kernels in NumPy, not an '
                'offload cost: use a GPU for that') if backend == 'emu' else ''
        print(f'  latency per inference    {shown} (from the {source}{what})')
        phase = s.get('last_inference_phase') or s.get('phase', '?')
        start = _replay_start(s)
        print(f'  phase at the end         {phase} at the last inference' +
              (f' (replaying from inference {start} on)' if start else '') +
              f', divergences {s.get("divergences", "?")}, errors {s.get("errors", "?")}')
        print(f'  requests                 {s.get("agent_calls", "?")} from the app to the '
              f'client node, {s.get("forwarded_calls", "?")} from the client node to the '
              f'server ({s.get("lane_requests", "0")} of them on the replay lane)')
        print(f'  traffic                  {s.get("bytes_up", "?")} bytes up, '
              f'{s.get("bytes_down", "?")} bytes down')
        print(f'  wall time                {time.monotonic() - self.started:.2f} s in all '
              f'(nodes started and stopped), the workload {wall:.2f} s')
        print(f'  clean shutdown           {"yes" if clean else "NO"} (server sessions left: '
              f'{left}, node exit codes: client {client_rc}, server {server_rc}' +
              ('; stopped at once on a second Ctrl-C' if self._hurry else '') + ')')
        if self.interrupted:
            return 130
        return 0 if correct and clean and inferences == n else 1

    def close(self) -> None:
        self._hurry_on_signals()
        for c in reversed(self.children):       # app, then client, then server
            c.stop(hurry=self.hurrying)
        if self.monitor is not None:
            self.monitor.close()
        self.tmp.cleanup()


def _replay_start(s: Dict[str, str]) -> Optional[int]:
    """The first replayed inference (1-based), from the client node's count of the
    inferences done before it; None before replay started."""
    try:
        done = int(s.get('replay_started_at') or -1)
    except ValueError:
        return None
    return done + 1 if done >= 0 else None


def _number(text: Optional[str]) -> Optional[float]:
    """A positive number from a diagnostics value, else None ('' or 0 mean not measured)."""
    try:
        value = float(text or 0)
    except ValueError:
        return None
    return value if value > 0 else None


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--backend', choices=('auto', 'cuda', 'emu'), default='auto',
                    help='server backend (auto: cuda when a GPU is found, else emu)')
    ap.add_argument('--mode', choices=MODES, default=DEFAULT_MODE,
                    help=f'client mode (default {DEFAULT_MODE}: record/replay when the client '
                    'core has it)')
    ap.add_argument('--inferences', type=int, default=20)
    ap.add_argument('--program', default=str(ROOT / 'build' / 'examples' / 'cnn_infer'))
    ap.add_argument('--timeout', type=float, default=120.0,
                    help='seconds the workload may run before the demo stops it')
    ap.add_argument('--pipeline', action='store_true',
                    help='run the people-following pipeline (camera, pose, tracker, follower) '
                    'instead of the CNN example')
    ap.add_argument('--seconds', type=float, default=15.0,
                    help='--pipeline: how long it runs')
    ap.add_argument('--pose-source', choices=('auto', 'ground_truth', 'model'), default='auto',
                    help="--pipeline: the pose node's source (auto: ground_truth, which emu "
                    'can serve)')
    a = ap.parse_args(argv)
    if not a.pipeline and not pathlib.Path(a.program).is_file():
        print(f'demo: {a.program} is missing; build it with `make examples`', file=sys.stderr)
        return 2
    try:
        import rclpy  # noqa: F401  (the nodes and the monitor need it)
    except ImportError as e:
        print(f'demo: rclpy is not installed ({e}). Run `make demo`, which installs the ROS 2 '
              'wheels of requirements.txt into .venv, or source a ROS 2 installation.',
              file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _raise_interrupt)
    # Ctrl-C stops the demo cleanly even where it was started with SIGINT ignored (a shell's
    # background job inherits that, and Python then keeps it).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    demo = Demo(a)
    try:
        return demo.run_pipeline() if a.pipeline else demo.run()
    except (DemoError, PlanError) as e:
        print(f'demo: {e}', file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:   # before the workload ran: nothing to summarise
        print('demo: interrupted; stopping the nodes and the workload', flush=True)
        return 130
    finally:
        demo.close()


if __name__ == '__main__':
    sys.exit(main())
