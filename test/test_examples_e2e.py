# Copyright 2026 rrto_ros authors. Apache-2.0.
"""Every example CUDA program runs unmodified under the interposer against a server (emu
here; ``--backend cuda`` on a GPU machine), over real ZeroMQ, in both forwarding modes, and
passes its own checks; on a GPU its output is byte-identical to the native run's."""

from __future__ import annotations

import subprocess

import pytest

from conftest import EXAMPLES
from rrto_ros.stack import LocalStack


@pytest.fixture(scope='module', params=['rpc', 'pipelined'])
def stack(request, interposer, backend):
    with LocalStack(backend, request.param) as s:
        yield s


@pytest.mark.parametrize('program', EXAMPLES)
def test_example_passes(stack, examples_dir, program):
    r = stack.run([str(examples_dir / program)], timeout=300)
    assert r.returncode == 0, f'{program} failed:\n{r.stdout}\n{r.stderr}'
    assert 'PASS' in r.stdout and 'FAIL' not in r.stdout
    assert '[rrto]' not in r.stderr, r.stderr        # no unsupported call, no lost link
    session = stack.last_session()
    assert session['app'] == program
    assert session['errors'] == 0
    assert session['forwarded_calls'] > 0
    if stack.backend == 'cuda':
        native = subprocess.run([str(examples_dir / program)], capture_output=True, text=True,
                                timeout=300)
        assert native.returncode == 0, native.stderr
        assert r.stdout == native.stdout      # byte-identical results
    if stack.client.config.mode == 'rpc':
        assert session['blocking_round_trips'] == session['forwarded_calls']   # BYE: not counted
    else:
        assert session['blocking_round_trips'] < session['forwarded_calls']


def test_modules_travel_lazily_and_once(interposer, examples_dir, tmp_path, backend):
    """A program's fatbin is uploaded at its first kernel; a second run uploads nothing."""
    with LocalStack(backend, 'pipelined', cache_dir=str(tmp_path)) as s:
        for expected_uploads in (1, 0):
            r = s.run([str(examples_dir / 'vector_add')])
            assert r.returncode == 0, r.stderr
            assert s.last_session()['modules_uploaded'] == expected_uploads
            assert s.last_session()['modules_cached'] == 1 - expected_uploads


@pytest.mark.parametrize('mode', ['pipelined', 'replay'])
def test_async_copy_overlaps_host_work(interposer, examples_dir, backend, mode):
    """cudaMemcpyAsync to the host returns at once: the app's CPU loop polling an event
    recorded after it runs while the data travel (rpc mode: the copy blocks, 0 iterations)."""
    with LocalStack(backend, mode) as s:
        r = s.run([str(examples_dir / 'async_copy')], timeout=300)
    assert r.returncode == 0 and r.stdout.endswith('PASS\n'), r.stdout + r.stderr
    counts = [int(line.split()[3]) for line in r.stderr.splitlines()
              if line.startswith('async_copy: round')]
    assert len(counts) == 2 and all(c > 0 for c in counts), r.stderr
