# Copyright 2026 rrto_ros authors. Apache-2.0.
"""Shared fixtures: the interposer, the example CUDA programs and small C test programs."""

from __future__ import annotations

import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / 'test'))
EXAMPLES = sorted(p.stem for p in (ROOT / 'examples').glob('*.cu'))


def pytest_addoption(parser):
    parser.addoption('--backend', default='emu', choices=('emu', 'cuda'),
                     help='server backend for the end-to-end tests (cuda needs a GPU)')


@pytest.fixture(scope='session')
def backend(request) -> str:
    return request.config.getoption('--backend')


@pytest.fixture(scope='session')
def interposer() -> pathlib.Path:
    from rrto_ros import interposer_path
    from rrto_ros.interposer import build
    try:
        return interposer_path()
    except FileNotFoundError:
        return build.build(ROOT / 'rrto_ros' / 'lib')


@pytest.fixture(scope='session')
def cuda_include() -> pathlib.Path:
    from rrto_ros.interposer.build import find_cuda_include
    return find_cuda_include()


def _cudart_dir(include: pathlib.Path) -> pathlib.Path:
    for d in (include.parent / 'lib64', include.parent / 'lib'):
        if list(d.glob('libcudart.so*')):
            return d
    pytest.skip(f'no libcudart.so next to {include}')


@pytest.fixture(scope='session')
def examples_dir(interposer) -> pathlib.Path:
    out = ROOT / 'build' / 'examples'
    if not all((out / e).is_file() for e in EXAMPLES):
        if not shutil.which('nvcc') and not pathlib.Path('/usr/local/cuda/bin/nvcc').exists():
            pytest.skip('nvcc is not installed: cannot build the example CUDA programs')
        subprocess.run(['make', '-C', str(ROOT / 'examples'), f'OUT={out}'], check=True)
    return out


def build_c_app(tmp_path_factory, cuda_include: pathlib.Path, name: str) -> pathlib.Path:
    """test/c/NAME.c built like an app: gcc, dynamic libcudart (and libdl)."""
    out = tmp_path_factory.mktemp('c') / name
    libdir = _cudart_dir(cuda_include)
    subprocess.run(['gcc', '-O1', '-Wall', '-o', str(out), str(ROOT / 'test' / 'c' /
                                                               f'{name}.c'),
                    '-I', str(cuda_include), '-L', str(libdir), '-lcudart',
                    f'-Wl,-rpath,{libdir}', '-ldl'], check=True)
    return out


@pytest.fixture(scope='session')
def local_answers(tmp_path_factory, cuda_include) -> pathlib.Path:
    return build_c_app(tmp_path_factory, cuda_include, 'local_answers')
