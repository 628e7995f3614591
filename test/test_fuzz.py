# Copyright 2026 rrto_ros authors. Apache-2.0.
"""Short bounded fuzz runs of every target (``bench/fuzz.py``; the long runs are the
lead's), and the fuzzers' finds as regression tests."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import socket
import struct
import subprocess
import sys

import pytest

from rrto_ros.bench import fuzz_build
from rrto_ros.bench import fuzz_targets
from rrto_ros.protocol import agent_wire

ROOT = pathlib.Path(__file__).resolve().parent.parent
INPUTS = 3000


def fuzz(tmp_path, *args, env=None) -> dict:
    out = tmp_path / 'fuzz.json'
    r = subprocess.run([sys.executable, str(ROOT / 'bench' / 'fuzz.py'), '--inputs',
                        str(INPUTS), '--wall-s', '120', '--out', str(out), *args],
                       capture_output=True, text=True, timeout=600,
                       env=dict(os.environ, **(env or {})))
    report = json.loads(out.read_text())
    for t in report['targets']:
        assert t['crashes'] == 0 and t['hangs'] == 0, t['detail']
    assert r.returncode == 0, r.stderr[-3000:]
    return report


def check(report: dict, targets, engines) -> None:
    got = {t['target']: t for t in report['targets']}
    assert sorted(got) == sorted(targets)
    for name, t in got.items():
        assert t['engine'] in engines
        assert t['inputs'] >= INPUTS, t
        assert t['rss_growth_mb'] < 64, t


def test_every_target_short_run(tmp_path):
    """Each target under its best engine here: atheris and libFuzzer when installed."""
    report = fuzz(tmp_path)
    check(report, fuzz_targets.TARGETS.keys() | {'interposer'},
          {'atheris', 'plain', 'libfuzzer', 'driver'})


def test_fallback_engines_short_run(tmp_path):
    """The engines of a machine without atheris or clang: seeded mutation loops."""
    report = fuzz(tmp_path, '--c-engine', 'driver', env={'RRTO_FUZZ_ENGINE': 'plain'})
    check(report, fuzz_targets.TARGETS.keys() | {'interposer'}, {'plain', 'driver'})


@pytest.fixture(scope='module')
def c_harness(tmp_path_factory) -> pathlib.Path:
    if not shutil.which('gcc'):
        pytest.skip('gcc is not installed')
    path, _ = fuzz_build.build(tmp_path_factory.mktemp('fuzz'), 'driver')
    return path


TABLE_HEAD = struct.pack('<IIII', 0x4C425452, 1, 0, 0)   # interposer/replay.c's layout


@pytest.mark.parametrize('table', [
    # An entry whose key length wraps when padded to 8 bytes (0xFFFFFFF9 + 7): the table
    # was accepted and matching a call read 4 GiB past it (found by libFuzzer + ASan).
    pytest.param(TABLE_HEAD + struct.pack('<II', 1, 1) +
                 struct.pack('<HBxIIIIi', 22, 0, 0, 0xFFFFFFF9, 0, 0, 0), id='key-wraps'),
    # A sequence claiming 2^24 entries in a 24-byte table: 768 MiB were allocated before
    # the bytes were counted (found by libFuzzer: out-of-memory).
    pytest.param(TABLE_HEAD + struct.pack('<II', 1, 1 << 24), id='count-beyond-bytes'),
])
def test_replay_table_finds_stay_fixed(c_harness, tmp_path, table):
    unit = tmp_path / 'unit'
    unit.write_bytes(b'\0' + table)      # selector 0: the replay table parser
    r = subprocess.run([str(c_harness), '-runs=0', str(unit)], capture_output=True,
                       text=True, timeout=60,
                       env=dict(os.environ, ASAN_OPTIONS='max_allocation_size_mb=16:'
                                'allocator_may_return_null=0'))
    assert r.returncode == 0, r.stdout + r.stderr
    assert 'ERROR' not in r.stdout + r.stderr


def test_seeds_are_accepted_by_their_decoders():
    """The seeds are valid inputs (so the fuzzers start deep, not at the first check)."""
    for data in fuzz_targets.seeds('agent'):
        a, b = socket.socketpair()
        a.sendall(data)
        agent_wire.read_request(b)
        a.close()
        b.close()
    for target, fn in fuzz_targets.TARGETS.items():
        for data in fuzz_targets.seeds(target):
            fn(data)
