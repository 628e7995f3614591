# Copyright 2026 rrto_ros authors. Apache-2.0.
"""The offload baseline: the robot-side driver's images and result lines, and the server
(bench/c/cnn_serve.cu) talking to it. Without a GPU the server runs under the interposer
on the emu backend, which is enough to check the protocol and that both ends compute what
cnn_infer prints."""

from __future__ import annotations

import pathlib
import shutil

import numpy as np
import pytest
from test_emu_kernels import GPU_OUTPUT
from test_emu_kernels import lcg_uniform

from rrto_ros.bench import offload
from rrto_ros.bench.link import LinkProcess

ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.mark.parametrize('seed,it', [(1, 0), (7, 4), (0xFFFFFFFF, 123)])
def test_images_are_cnn_infers(seed, it):
    want = np.float32(0.5) * lcg_uniform(seed * 2654435761 + it * 40503 + 12345, 3072) \
        + np.float32(0.5)
    got = offload.cnn_image(seed, it)
    assert got.dtype == np.float32 and got.shape == (3072,)
    np.testing.assert_array_equal(got, want.astype(np.float32))
    assert 0.0 <= got.min() and got.max() < 1.0


def test_result_line_format():
    line = offload.format_result(2, [0.1, -0.5, 0.30000001, 0.3] + [0.0] * 6)
    assert line == ('infer 2: class=2 scores=0.10000 -0.50000 0.30000 0.30000 0.00000 '
                    '0.00000 0.00000 0.00000 0.00000 0.00000')


@pytest.fixture(scope='module')
def cnn_serve(tmp_path_factory, interposer) -> pathlib.Path:
    if not shutil.which('nvcc') and not pathlib.Path('/usr/local/cuda/bin/nvcc').exists():
        pytest.skip('nvcc is not installed: cannot build bench/c/cnn_serve.cu')
    return offload.build_server(ROOT, tmp_path_factory.mktemp('offload'))


def test_server_and_driver_reproduce_cnn_infer(cnn_serve, backend):
    from rrto_ros.stack import LocalStack
    with LocalStack(backend, 'pipelined') as stack:
        env = None if backend == 'cuda' else stack.env()   # native on a GPU
        with offload.ServerProcess(cnn_serve, lifetime_s=120, env=env) as srv:
            lines, lat = offload.run_client(srv.port, 5, seed=7)
            with LinkProcess('edge', f'127.0.0.1:{srv.port}') as link:
                lines_edge, lat_edge = offload.run_client(link.port, 2, seed=7)
    assert lines == list(GPU_OUTPUT['cnn_infer 5 7'][:5])
    assert lines_edge == lines[:2]
    assert len(lat) == 5 and min(lat_edge) >= 2.6e-3
    assert 'connection closed after 5 requests' in srv.stderr
