# Copyright 2026 rrto_ros authors. Apache-2.0.
"""The README's demo (``make demo`` runs ``python -m rrto_ros.demo``): the launch plan started
as real node processes with the CNN example as the workload, and its clean-up on Ctrl-C."""

from __future__ import annotations

import os
import pathlib
import random
import re
import signal
import subprocess
import sys
import time
from typing import Dict, List, Tuple

from procs import reaped
import pytest

pytest.importorskip('rclpy')

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _env() -> Dict[str, str]:
    env = dict(os.environ)
    env['ROS_DOMAIN_ID'] = str(random.Random(os.getpid() + 1).randint(1, 100))
    env['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    return env


def _demo(*args: str) -> List[str]:
    return [sys.executable, '-m', 'rrto_ros.demo', *args]


def test_demo_runs_the_plan_and_summarises(interposer, examples_dir, backend):
    r = subprocess.run(_demo('--inferences', '8', '--backend', backend, '--timeout', '60'),
                       cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=180)
    out = r.stdout
    assert r.returncode == 0, out + r.stderr
    assert 'demo: both nodes are up' in out
    assert re.search(r'^  robot \| ready: apps started', out, re.M), out
    assert re.search(r'^  edge  \| ready: serving rrto clients', out, re.M), out
    assert re.search(r'^  app   \| infer 7: class=', out, re.M), out
    assert re.search(r'inferences\s+8 of 8', out), out
    assert re.search(r'results correct\s+yes', out), out
    assert re.search(r'blocking round trips\s+.*\b\d+ in all = [\d.]+ per inference', out), out
    assert re.search(r'latency per inference\s+[\d.]+ ms p50', out), out
    assert re.search(r'clean shutdown\s+yes \(server sessions left: 0', out), out
    assert f'with the {backend} backend' in out
    # Authenticated and encrypted by default: keys of the demo's own, the lane sealed too.
    assert re.search(r'^  edge  \| ready: serving .*security curve\)', out, re.M), out
    assert re.search(r'^  robot \| ready: apps .*security curve\)', out, re.M), out
    assert 'replay lane off' not in out and 'no replay lane' not in out, out
    assert 'security open' not in out, out
    assert re.search(r'\(([1-9]\d*) of them on the replay lane\)', out), out
    assert ('on emu this is the CPU stand-in' in out) == (backend == 'emu'), out
    # The robot and the edge count the same requests, and the summary reports them.
    sent = re.search(r'^  robot \| session \S+ ended: \d+ messages from the app, (\d+) '
                     r'requests to the server', out, re.M)
    done = re.search(r'^  edge  \| session .* ended: .*; (\d+) requests executed', out, re.M)
    assert sent and done and sent[1] == done[1], out
    assert re.search(rf'requests\s+\d+ from the app to the client node, {sent[1]} from the '
                     'client node to the server', out), out
    # Replay starts once and is reported with one number; the end phase is the last
    # inference's, not that of the app's teardown.
    starts = re.findall(r'replaying from inference (\d+) on', out)
    assert starts and len(set(starts)) == 1, out
    assert re.search(r'phase at the end\s+replaying at the last inference', out), out
    assert re.search(r'wall time\s+[\d.]+ s in all', out), out


def _processes_mentioning(text: str) -> List[int]:
    found = []
    for d in pathlib.Path('/proc').iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            blob = (d / 'cmdline').read_bytes() + (d / 'environ').read_bytes()
        except OSError:
            continue
        if text.encode() in blob:
            found.append(int(d.name))
    return found


def _interrupt_demo(backend: str, signals: int) -> Tuple[str, int, str, str]:
    """Start a long demo, send ``signals`` SIGINTs once the workload replays (the second
    quickly after the first), and return its output, exit code, namespace and socket."""
    proc = subprocess.Popen(_demo('--inferences', '1000000', '--backend', backend), cwd=ROOT,
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    lines: List[str] = []
    with reaped(proc):
        assert proc.stdout is not None
        deadline = time.monotonic() + 60
        for line in proc.stdout:
            lines.append(line)
            if line.startswith('  app   | infer 6:') or time.monotonic() > deadline:
                break
        sock = next(m[1] for ln in lines
                    if (m := re.search(r'listening on (\S+/agent\.sock)', ln)))
        namespace = f'rrto_demo_{proc.pid}'
        assert _processes_mentioning(namespace) and _processes_mentioning(sock)
        for _ in range(signals):
            proc.send_signal(signal.SIGINT)
            time.sleep(0.05)
        rest, _ = proc.communicate(timeout=60)
    return ''.join(lines) + rest, proc.returncode, namespace, sock


def _nothing_left(namespace: str, sock: str) -> None:
    time.sleep(0.5)   # a SIGKILLed child is reaped by now
    assert _processes_mentioning(namespace) == [] and _processes_mentioning(sock) == []
    assert not os.path.exists(sock)


def test_demo_ctrl_c_summarises_and_stops_every_process(interposer, examples_dir, backend):
    out, rc, namespace, sock = _interrupt_demo(backend, 1)
    assert rc == 130, out
    assert 'demo: interrupted; stopping the workload, then the nodes' in out
    assert 'demo summary (interrupted: the run so far):' in out
    assert re.search(r'inferences\s+\d+ of 1000000', out), out
    assert re.search(r'phase at the end\s+replaying at the last inference', out), out
    assert re.search(r'clean shutdown\s+yes \(server sessions left: 0', out), out
    assert 'Traceback' not in out and 'Connection reset' not in out, out
    _nothing_left(namespace, sock)


def test_demo_repeated_ctrl_c_still_stops_every_process(interposer, examples_dir, backend):
    out, rc, namespace, sock = _interrupt_demo(backend, 3)
    assert rc == 130, out
    assert 'demo: stopping every process now' in out
    assert 'Traceback' not in out, out
    _nothing_left(namespace, sock)


def test_demo_runs_the_people_following_pipeline(interposer, backend):
    """--pipeline: camera, pose node (ground truth: the one emu can serve), tracker and
    follower beside both rrto nodes; the tracker publishes targets, the follower drives."""
    r = subprocess.run(_demo('--pipeline', '--seconds', '10', '--backend', backend), cwd=ROOT,
                       env=_env(), capture_output=True, text=True, timeout=180)
    out = r.stdout
    assert r.returncode == 0, out + r.stderr
    assert 'runs no network (the emu backend cannot run KAPAO)' in out
    assert re.search(r'tracker\s+\w+, [1-9]\d* targets', out), out
    assert re.search(r'follower\s+\w+, [1-9]\d* cmd_vel', out), out
    assert 'demo: follower following' in out, out
    assert re.search(r'clean shutdown\s+yes', out), out
