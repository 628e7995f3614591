# Copyright 2026 rrto_ros authors. Apache-2.0.
"""Nothing bypasses the interposer: the driver reached through dlopen/dlsym of
libcuda.so.1, cuGetProcAddress and cudaGetDriverEntryPoint*, and cuBLAS / cuBLASLt / cuDNN
symbols, against a scripted fake client node."""

from __future__ import annotations

import ctypes
import os
import pathlib
import subprocess
import sys
from typing import Dict, List

import pytest

from fake_agent import FakeAgent
from rrto_ros.interposer import gen_api_table

ROOT = pathlib.Path(__file__).resolve().parent.parent
C = ROOT / 'test' / 'c'


def run(cmd: List[str], interposer, agent_path: str = '/nonexistent/rrto.sock',
        **env) -> subprocess.CompletedProcess:
    full = dict(os.environ, LD_PRELOAD=str(interposer), RRTO_AGENT_SOCKET=agent_path)
    full.pop('RRTO_TRACE', None)
    full.update(env)
    return subprocess.run([str(c) for c in cmd], env=full, capture_output=True, text=True,
                          timeout=30)


def parse(stdout: str) -> Dict[str, str]:
    return dict(line.split(' ', 1) for line in stdout.splitlines() if ' ' in line)


def gcc(*args) -> None:
    cmd = ['gcc', '-O1', '-Wall', '-Wno-deprecated-declarations'] + [str(a) for a in args]
    subprocess.run(cmd, check=True)


@pytest.fixture(scope='module')
def lookups(tmp_path_factory, cuda_include) -> pathlib.Path:
    out = tmp_path_factory.mktemp('drv') / 'driver_lookups'
    libdir = next((d for d in (cuda_include.parent / 'lib64', cuda_include.parent / 'lib')
                   if list(d.glob('libcudart.so*'))), None)
    if libdir is None:
        pytest.skip(f'no libcudart.so next to {cuda_include}')
    gcc('-o', out, C / 'driver_lookups.c', '-I', cuda_include, '-L', libdir, '-lcudart',
        f'-Wl,-rpath,{libdir}', '-ldl')
    return out


def test_no_libcuda_here():
    # The tests below rely on dlopen("libcuda.so.1") failing without the interposer.
    r = subprocess.run([sys.executable, '-c', 'import ctypes; ctypes.CDLL("libcuda.so.1")'],
                       capture_output=True)
    if r.returncode == 0:
        pytest.skip('this machine has a real libcuda.so.1')


def test_dlopen_libcuda_gives_our_driver(lookups, interposer):
    agent = FakeAgent(answers={})
    try:
        r = run([lookups, 'driver'], interposer, agent.path)
    finally:
        agent.close()
    out = parse(r.stdout)
    assert 'dlopen_error' not in out, r.stderr
    assert out['same_handle_by_path'] == '1'
    assert out['found'] == '1 1'
    assert out['default_same'] == '1'          # RTLD_DEFAULT lookups of driver names too
    assert out['state_before'] == '0 0 0'      # no session yet: no primary context
    assert out['ctx_before'] == '0 null'
    assert out['init'] == '0'                  # connects: the session owns a context
    assert out['state_after'] == '0 0 1'
    assert out['ctx_after'] == '0 set'
    assert out['ctx_stable'] == '1'
    assert out['version'] == '0 13000'           # CUDART_VERSION, as cudaDriverGetVersion
    assert out['count'] == '0 1'               # the fake client node's hello: one device
    assert out['device'] == '0 0'
    assert out['device_5'] == '101'            # CUDA_ERROR_INVALID_DEVICE
    assert out['state_bad_device'] == '101'
    assert out['name_801'] == '0 CUDA_ERROR_NOT_SUPPORTED'
    assert out['string_801'].startswith('0 ') and 'not supported' in out['string_801']
    assert out['name_bad'] == '1'              # CUDA_ERROR_INVALID_VALUE
    assert out['missing'] == '1 1'             # NULL, with a dlerror() message
    assert out['close'] == '0'


def test_without_client_node_the_driver_says_no_device(lookups, interposer, tmp_path):
    r = run([lookups, 'driver'], interposer, str(tmp_path / 'nobody.sock'))
    out = parse(r.stdout)
    assert out['init'] == '100'                # CUDA_ERROR_NO_DEVICE, one clear line
    assert out['state_after'] == '0 0 0'
    assert 'nobody.sock' in r.stderr


def test_proc_address_and_entry_points_give_the_same_functions(lookups, interposer):
    r = run([lookups, 'entry_points'], interposer)
    out = parse(r.stdout)
    assert out['gpa_found'] == '1', r.stdout + r.stderr
    assert out['gpa_state'] == '0 0 1'
    assert out['gpa_versioned'] == '1'          # cuCtxCreate is cuCtxCreate_v4
    assert out['gpa_per_thread'] == '1 1'
    assert out['gpa_v1'] == '1'                 # the 4-argument cuGetProcAddress for 11.3
    assert out['gpa_missing'] == '500 1 1'      # CUDA_ERROR_NOT_FOUND, SYMBOL_NOT_FOUND
    assert out['rt_entry'] == '0 0 1'
    assert out['rt_by_version'] == '0 0 1'      # expandable segments' VMM functions
    assert out['rt_missing'] == '0 1 1'         # success, NULL, cudaDriverEntryPointSymbolNotFound


def test_unimplemented_driver_and_library_functions_fail_by_name(lookups, interposer):
    r = run([lookups, 'unsupported'], interposer)
    out = parse(r.stdout)
    assert out['ctx_create'] == '801' and out['ctx_create_again'] == '801'
    assert out['cublas_found'] == '1 1 1'
    assert out['cublas_create'] == '15'         # CUBLAS_STATUS_NOT_SUPPORTED
    assert out['cudnn_create'] == '3000'        # CUDNN_STATUS_NOT_SUPPORTED (cuDNN 9)
    assert out['cublaslt_create'] == '15'
    assert out['cudnn_version'] == '0'
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith('[rrto]')]
    assert sum('cuCtxCreate_v4 is not forwarded yet' in ln for ln in lines) == 1   # once
    assert any('CUDA_ERROR_NOT_SUPPORTED (801)' in ln for ln in lines)
    assert any('cublasGetLoggerCallback is not forwarded yet: it returns '
               'CUBLAS_STATUS_NOT_SUPPORTED (15)' in ln for ln in lines)
    assert any('cudnnCreateCTCLossDescriptor is not forwarded yet' in ln for ln in lines)
    assert all('(called from ' in ln and 'driver_lookups' in ln for ln in lines
               if 'is not forwarded yet' in ln)
    assert any('cublasLtEmulationDescCreate is not forwarded yet' in ln for ln in lines)
    assert 'cuCtxCreate_v4(2 calls)' in r.stderr   # the exit report names them again


def _real_libcuda() -> bool:
    try:
        ctypes.CDLL('libcuda.so.1')
    except OSError:
        return False
    return True


def test_trace_mode_passes_libcuda_through(lookups, interposer):
    r = run([lookups, 'driver'], interposer, RRTO_TRACE='1')
    out = parse(r.stdout)
    if _real_libcuda():   # the real driver answers: it initialises
        assert 'dlopen_error' not in out and out.get('init') == '0', out
    else:                 # the real driver is absent, and the app is told so
        assert 'dlopen_error' in out, out


def test_dlopen_and_dlsym_still_act_for_their_caller(tmp_path, interposer):
    sub = tmp_path / 'sub'
    sub.mkdir()
    src = C / 'dl_callers.c'
    gcc('-shared', '-fPIC', '-DPART_DEP', '-o', sub / 'libdep.so', src)
    gcc('-shared', '-fPIC', '-DPART_NEXT', '-o', tmp_path / 'libnext.so', src)
    gcc('-shared', '-fPIC', '-DPART_CALLER', '-o', tmp_path / 'libcaller.so', src, '-ldl',
        '-Wl,--enable-new-dtags,-rpath,$ORIGIN/sub')
    gcc('-o', tmp_path / 'prog', src, '-L', tmp_path, '-Wl,--no-as-needed', '-lcaller', '-lnext',
        f'-Wl,-rpath,{tmp_path}', '-ldl')
    native = subprocess.run([str(tmp_path / 'prog')], capture_output=True, text=True)
    assert parse(native.stdout) == {'dep': '42', 'next': '2'}
    r = run([tmp_path / 'prog'], interposer)
    assert parse(r.stdout) == {'dep': '42', 'next': '2'}, r.stderr


def test_library_symbols_win_over_the_linked_library(tmp_path, interposer):
    # Like libtorch_cuda.so against libcublas.so.13: versioned imports, an unversioned
    # definition in the preloaded interposer.
    gcc('-shared', '-fPIC', '-DPART_LIB', '-o', tmp_path / 'libcublas.so.13',
        C / 'fake_cublas.c', '-Wl,-soname,libcublas.so.13',
        f'-Wl,--version-script={C / "fake_cublas.map"}')
    gcc('-o', tmp_path / 'prog', C / 'fake_cublas.c', tmp_path / 'libcublas.so.13',
        f'-Wl,-rpath,{tmp_path}')
    native = subprocess.run([str(tmp_path / 'prog')], capture_output=True, text=True)
    assert parse(native.stdout) == {'create': '77', 'sgemm': '77'}
    r = run([tmp_path / 'prog'], interposer)
    # Ours are forwarded; with no client node the session fails them
    # (CUBLAS_STATUS_EXECUTION_FAILED), and the fake library's 77 never appears.
    assert parse(r.stdout) == {'create': '13', 'sgemm': '13'}
    assert 'no rrto client node' in r.stderr
    traced = run([tmp_path / 'prog'], interposer, RRTO_TRACE='1')   # passed to the library
    assert parse(traced.stdout) == {'create': '77', 'sgemm': '77'}, traced.stderr


def vendor_include_dirs() -> List[pathlib.Path]:
    """Where the vendor headers are: $RRTO_VENDOR_INCLUDE (os.pathsep-separated) or the
    nvidia wheels of this interpreter."""
    env = os.environ.get('RRTO_VENDOR_INCLUDE', '')
    dirs = [pathlib.Path(d) for d in env.split(os.pathsep) if d]
    for site in sys.path:
        nv = pathlib.Path(site) / 'nvidia'
        dirs += sorted(nv.glob('*/include')) if nv.is_dir() else []
    return dirs


def test_committed_vendor_lists_are_up_to_date(tmp_path, cuda_include):
    dirs = vendor_include_dirs()
    need = ('cublas_v2.h', 'cublas.h', 'cublasLt.h', 'cudnn.h')
    if not all(any((d / h).is_file() for d in dirs) for h in need):
        pytest.skip('no cuBLAS / cuDNN headers (set RRTO_VENDOR_INCLUDE or install the '
                    'nvidia-cublas and nvidia-cudnn-cu13 wheels)')
    gen_api_table.write_vendor_lists(dirs + [cuda_include], tmp_path)
    explicit = bool(os.environ.get('RRTO_VENDOR_INCLUDE'))
    for lib in gen_api_table.VENDOR_LIBS:
        fresh = (tmp_path / f'{lib}.txt').read_text()
        committed = (gen_api_table.VENDOR_DIR / f'{lib}.txt').read_text()
        if explicit:   # the headers the lists are made from: the same lists
            assert fresh == committed, (
                f'vendor_api/{lib}.txt is out of date: regenerate it with '
                '`python rrto_ros/interposer/gen_api_table.py --include CUDA_INCLUDE '
                '--vendor-include DIR...`')
        else:          # another version's headers (e.g. PyTorch's): no function missing
            def names(text: str) -> set:
                return {ln.split('\t', 1)[0] for ln in text.splitlines()
                        if ln and not ln.startswith('#')}
            missing = names(fresh) - names(committed)
            assert not missing, f'vendor_api/{lib}.txt lacks {sorted(missing)[:20]}'


def test_vendor_lists_cover_what_pytorch_calls():
    names = {f.name for f in gen_api_table.read_vendor_lists()}
    # Every library function the measured PyTorch inferences made (torch-libraries-facts).
    seen = """cublasCreate_v2 cublasSetMathMode cublasSetStream_v2 cublasSetWorkspace_v2
    cublasSgemm_v2 cublasLtMatmul cublasLtMatmulAlgoGetHeuristic cublasLtMatmulDescCreate
    cublasLtMatmulDescDestroy cublasLtMatmulDescSetAttribute cublasLtMatmulPreferenceCreate
    cublasLtMatmulPreferenceDestroy cublasLtMatmulPreferenceSetAttribute
    cublasLtMatrixLayoutCreate cublasLtMatrixLayoutDestroy cudnnBackendCreateDescriptor
    cudnnBackendDestroyDescriptor cudnnBackendSetAttribute cudnnBackendGetAttribute
    cudnnBackendFinalize cudnnBackendExecute cudnnBatchNormalizationForwardInference
    cudnnCreate cudnnCreateTensorDescriptor cudnnDestroyTensorDescriptor
    cudnnSetTensorNdDescriptor cudnnSetStream cudnnGetVersion cudnnGetProperty""".split()
    assert not set(seen) - names
