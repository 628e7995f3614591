# Copyright 2026 rrto_ros authors. Apache-2.0.
"""The interposer for a Jetson: cross-compiled for aarch64 against CUDA 12.6's headers
(JetPack 6), and, built here against the same headers, right for an app built with them.

Needs Debian's gcc-aarch64-linux-gnu and libc6-dev-arm64-cross (.ci/run installs them) and the
CUDA 12 headers from PyPI wheels (cached in build/cuda-headers; `make cross-aarch64` fetches
them). Under CI a missing piece fails instead of skipping."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys

import pytest

from fake_agent import FakeAgent
from rrto_ros.interposer import build, cuda_headers, elf_info

ROOT = pathlib.Path(__file__).resolve().parent.parent
CROSS_CC = build.TARGETS['aarch64']
JETPACK6_GLIBC = (2, 35)            # Ubuntu 22.04, the base of JetPack 6
# What a CUDA 12 app and nvcc's generated code call first of all.
KEY_FUNCTIONS = {
    'cudaLaunchKernel', 'cudaLaunchKernelExC', '__cudaRegisterFatBinary',
    '__cudaRegisterFatBinaryEnd', '__cudaRegisterFunction', '__cudaUnregisterFatBinary',
    '__cudaPushCallConfiguration', '__cudaPopCallConfiguration', 'cudaMalloc', 'cudaFree',
    'cudaMemcpy', 'cudaMemcpyAsync', 'cudaStreamSynchronize', 'cudaGetLastError',
    'cudaGetDeviceProperties_v2', 'cudaGetDeviceProperties', 'cudaStreamGetCaptureInfo_v2',
}
# Exported by libcudart.so.12: private registration entry points nvcc does not emit for
# these programs. A call to one of them still reaches the local runtime: listed here so that
# the list can only shrink (the GL/EGL/VDPAU interop and profiler functions are ours now).
NOT_YET_INTERPOSED = {'__cudaRegisterHostVar', '__cudaRegisterUnifiedTable'}


def _missing(what: str) -> None:
    if os.environ.get('CI'):
        pytest.fail(f'{what}; .ci/run sets this up before `make test`')
    pytest.skip(what)


@pytest.fixture(scope='module')
def cuda12() -> pathlib.Path:
    """The CUDA 12.6 headers' folder (its lib/ beside it holds libcudart.so.12)."""
    try:
        return cuda_headers.fetch(12, ROOT / 'build' / 'cuda-headers')
    except SystemExit as e:
        _missing(f'no CUDA 12 headers: {e}')


@pytest.fixture(scope='module')
def jetson_lib(request, tmp_path_factory) -> pathlib.Path:
    """librrto_cuda.so built as `make cross-aarch64` builds it."""
    if not shutil.which(CROSS_CC):
        _missing(f'{CROSS_CC} is not installed (apt-get install gcc-aarch64-linux-gnu '
                 'libc6-dev-arm64-cross)')
    request.getfixturevalue('cuda12')         # fetched first, where the compiler is
    out = tmp_path_factory.mktemp('aarch64')
    r = subprocess.run([sys.executable, 'rrto_ros/interposer/build.py', '--target', 'aarch64',
                        '--cuda', '12', '--out', str(out)], cwd=ROOT, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    return out / build.LIB_NAME


def test_cross_build_is_an_aarch64_library(jetson_lib):
    header = subprocess.run(['readelf', '-h', str(jetson_lib)], capture_output=True,
                            text=True, check=True).stdout
    assert 'ELF64' in header and 'AArch64' in header and 'DYN' in header
    assert elf_info.machine(jetson_lib) == 'aarch64'
    dynamic = subprocess.run(['readelf', '-d', str(jetson_lib)], capture_output=True,
                             text=True, check=True).stdout
    needed = {line.split('[')[1].rstrip(']') for line in dynamic.splitlines()
              if '(NEEDED)' in line}
    assert needed <= {'libc.so.6', 'libdl.so.2', 'libpthread.so.0'}, needed
    assert elf_info.glibc_needed(jetson_lib) <= JETPACK6_GLIBC


def test_cross_build_exports_the_cuda12_runtime_api(jetson_lib, cuda12):
    exported = elf_info.exported_functions(jetson_lib)
    assert KEY_FUNCTIONS <= exported, KEY_FUNCTIONS - exported
    assert not [n for n in exported if n.startswith('rrto_')]   # internals stay hidden
    # What the real CUDA 12.6 runtime exports (the same API on every machine).
    cudart = elf_info.exported_functions(cuda12.parent / 'lib' / 'libcudart.so.12')
    runtime_api = {n for n in cudart if n.startswith(('cuda', '__cuda'))}
    assert len(runtime_api) > 350
    assert runtime_api - exported <= NOT_YET_INTERPOSED, runtime_api - exported


def _run(prog: pathlib.Path, what: str, lib: pathlib.Path, **env: str
         ) -> subprocess.CompletedProcess:
    env = dict(os.environ, LD_PRELOAD=str(lib), **env)
    if 'RRTO_TRACE' not in env:
        env.pop('RRTO_TRACE', None)
    return subprocess.run([str(prog), what], env=env, capture_output=True, text=True,
                          timeout=30)


def test_cuda12_build_answers_a_cuda12_app(cuda12, tmp_path):
    """Built here against the CUDA 12 headers: an app built with them (calling
    cudaGetDeviceProperties_v2, as every CUDA 12 app does) gets the interposer's answers, the
    old-ABI name fails by name, and trace mode forwards the _v2 symbol."""
    lib = build.build(tmp_path / 'lib', cuda12, gen_dir=tmp_path / 'gen')
    stubs = (tmp_path / 'gen' / 'rrto_unsupported.c').read_text()
    assert 'cudaError_t cudaGetDeviceProperties(' in stubs      # the old ABI: fails by name
    assert 'cudaGetDeviceProperties_v2(' not in stubs           # implemented by hand
    cudart = cuda12.parent / 'lib'
    app = tmp_path / 'local_answers'
    subprocess.run(['gcc', '-O1', '-o', str(app), str(ROOT / 'test' / 'c' / 'local_answers.c'),
                    '-I', str(cuda12), '-L', str(cudart), '-l:libcudart.so.12',
                    f'-Wl,-rpath,{cudart}'], check=True)
    symbols = subprocess.run(['readelf', '--dyn-syms', '-W', str(app)], capture_output=True,
                             text=True, check=True).stdout
    assert 'cudaGetDeviceProperties_v2' in symbols
    agent = FakeAgent()
    try:
        props = _run(app, 'props', lib, RRTO_AGENT_SOCKET=agent.path)
        unsupported = _run(app, 'unsupported', lib, RRTO_AGENT_SOCKET=agent.path)
    finally:
        agent.close()
    out = dict(line.split(' ', 1) for line in props.stdout.splitlines() if ' ' in line)
    assert out['props_err'] == '0' and out['name'] == 'fake device', props.stdout
    assert out['major'] == '9 9' and out['sm'] == '132' and out['total'] == str(80 << 30)
    assert 'graph_create 801' in unsupported.stdout
    assert 'cudaGraphCreate is not supported' in unsupported.stderr
    counts = tmp_path / 'counts.tsv'
    _run(app, 'props', lib, RRTO_TRACE='1', RRTO_TRACE_FILE=str(counts))
    traced = dict(line.split('\t') for line in counts.read_text().splitlines())
    assert traced.get('cudaGetDeviceProperties_v2') == '3' and \
        'cudaGetDeviceProperties' not in traced, traced


def test_build_check_refuses_a_wrong_library(interposer):
    """What every build runs on its result: the machine and the API table's exports."""
    other = 'aarch64' if elf_info.machine(interposer) != 'aarch64' else 'x86_64'
    with pytest.raises(SystemExit, match=f'is for {elf_info.machine(interposer)}, not {other}'):
        build.check(interposer, [], other)
    with pytest.raises(SystemExit, match='does not export 1 function.*cudaNoSuchCall'):
        build.check(interposer, ['cudaMalloc', 'cudaNoSuchCall'])
    build.check(interposer, ['cudaMalloc', 'cudaLaunchKernel', '__cudaRegisterFatBinary'],
                elf_info.machine(interposer))
