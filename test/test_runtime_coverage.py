# Copyright 2026 rrto_ros authors. Apache-2.0.
"""The runtime functions beyond the basics that PyTorch and CUB call (issue 10 item 5), on
the server: answered with its values, or locally where the app's own state says it."""

from __future__ import annotations

import pathlib

import pytest


@pytest.fixture(scope='module')
def coverage_prog(tmp_path_factory, cuda_include) -> pathlib.Path:
    from conftest import build_c_app
    return build_c_app(tmp_path_factory, cuda_include, 'runtime_coverage')


def test_runtime_coverage(coverage_prog, backend):
    from rrto_ros.stack import LocalStack
    with LocalStack(backend, 'pipelined') as stack:
        r = stack.run([str(coverage_prog)], timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    out = dict(line.split(' ', 1) for line in r.stdout.splitlines())
    err, lo, hi = map(int, out['priority'].split())
    assert err == 0 and lo == 0 and hi < 0          # the server's range (0, -5 on sm_90)
    assert out['set_flags'] == '0'
    err, flags = map(int, out['get_flags'].split())
    assert err == 0 and flags & 0x4                 # cudaDeviceScheduleBlockingSync kept
    assert out['bad_flags'] == '1'                  # cudaErrorInvalidValue
    err, bus = out['pci'].split()
    assert err == '0' and len(bus.split(':')) == 3 and bus.endswith('.0')
    assert out['peer'] == '0 0' and out['enable_peer'] == '101'   # one device: no peers
    err, heap = map(int, out['get_limit'].split())
    assert err == 0 and heap > 0
    assert out['set_limit'] == '0' and out['limit_after'] == str(16 << 20)
    assert out['capture_info'] == '0 0'             # never capturing
    assert out['capture_mode'] == '0 2'             # the old mode back, then ours again
    assert out['host_register'] == '0 0'
    assert out['host_register_mapped'] == '801'     # cudaErrorNotSupported, named
    assert 'cudaHostRegisterMapped' in r.stderr
    assert out['malloc_async'] == '0 0 0 5a' and out['free_async'] == '0'
    assert out['record_flags'].split()[0] == '0'
    assert out['profiler'] == '0 0' and out['sync'] == '0'
