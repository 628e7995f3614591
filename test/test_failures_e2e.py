# Copyright 2026 rrto_ros authors. Apache-2.0.
"""A dead or missing server makes CUDA calls fail with a clear message, never a hang."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from rrto_ros.client.config import ClientConfig
from rrto_ros.client.core import ClientCore
from rrto_ros.client.launcher import interposed_env
from rrto_ros.stack import free_tcp_port
from rrto_ros.stack import LocalStack


def test_no_server_first_call_fails_with_one_line(interposer, examples_dir, tmp_path):
    endpoint = f'tcp://127.0.0.1:{free_tcp_port()}'   # nobody listens there
    sock = str(tmp_path / 'agent.sock')
    core = ClientCore(ClientConfig(endpoint, sock, connect_timeout_s=0.5)).start()
    try:
        t0 = time.monotonic()
        r = subprocess.run([str(examples_dir / 'vector_add')], env=interposed_env(sock),
                           capture_output=True, text=True, timeout=30)
        elapsed = time.monotonic() - t0
    finally:
        core.stop()
    assert r.returncode != 0
    assert elapsed < 10
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith('[rrto]')]
    assert len(lines) == 1, r.stderr
    assert endpoint in lines[0] and 'rrto-server' in lines[0] and 'edge.launch.py' in lines[0]
    assert 'no CUDA-capable device' in r.stdout + r.stderr   # the app's own error check


@pytest.mark.parametrize('mode, says', [
    # Replaying on the interposer's lane: seen at once, the lane is closed or reset.
    ('replay', 'the replay lane to the rrto server at'),
    # Forwarding through the client node (ZeroMQ): after server_timeout_s.
    ('pipelined', 'no answer from the rrto server'),
])
def test_server_dies_mid_run_app_gets_errors_not_a_hang(interposer, examples_dir, mode, says):
    with LocalStack('emu', mode, server_timeout_s=1.0, server_process=True) as stack:
        proc = subprocess.Popen([str(examples_dir / 'cnn_infer'), '100000'], env=stack.env(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for k in range(8):                         # the run is under way (and replaying)
            line = proc.stdout.readline()
            assert line.startswith(f'infer {k}'), line
        if mode == 'replay':
            assert stack.client.snapshot()[0]['lane_requests'] > 0
        stack.kill_server()
        t0 = time.monotonic()
        out, err = proc.communicate(timeout=30)
        elapsed = time.monotonic() - t0
        stack.client.wait_idle(5)
        session = stack.last_session()
    assert proc.returncode != 0
    assert elapsed < 15
    assert says in err
    # The app's log names the error it now gets (not a bare number).
    assert 'now fail with cudaErrorDevicesUnavailable (46)' in err, err
    assert session['state'] == 'lost'


def test_trace_mode_prints_call_histogram(interposer, examples_dir, tmp_path):
    counts = tmp_path / 'counts.tsv'
    r = subprocess.run([sys.executable, '-m', 'rrto_ros.cli.trace_main', '--out', str(counts),
                        '--', str(examples_dir / 'vector_add')],
                       capture_output=True, text=True, timeout=60)
    rows = dict(line.split('\t') for line in counts.read_text().splitlines())
    # The real runtime answered (on a machine without a GPU it fails at its first call,
    # which the program reports): what matters is that every call was seen and counted.
    assert int(rows['__cudaRegisterFatBinary']) >= 1
    assert int(rows['__cudaRegisterFunction']) >= 1
    assert 'CUDA runtime call' in r.stderr and '__cudaRegisterFunction' in r.stderr
    assert '[rrto] no rrto client' not in r.stderr   # trace mode never connects
    from rrto_ros.server.backend import probe_gpu
    no_gpu = '[rrto] rrto-trace: no GPU to trace on here' in r.stderr
    assert no_gpu != probe_gpu().ok, r.stderr   # said exactly where there is no GPU


def test_client_cli_refuses_a_bad_lane_endpoint():
    """rrto-client checks its settings before it starts (here: --lane-endpoint)."""
    r = subprocess.run([sys.executable, '-m', 'rrto_ros.cli.client_main', '--lane-endpoint',
                        'edge:7000', '--no-replay-lane'], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 2
    assert "lane_endpoint 'edge:7000' is not tcp://HOST:PORT" in r.stderr
