# Copyright 2026 rrto_ros authors. Apache-2.0.
"""Build ``librrto_cuda.so`` with gcc against the CUDA runtime headers.

The headers come from the CUDA toolkit when one is installed (``$CUDA_HOME``,
``/usr/local/cuda``), else from the ``nvidia-cuda-runtime`` wheel. The library links only
libc, libdl and libpthread: it is loaded into arbitrary processes.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import shutil
import subprocess
import sys
import sysconfig
from typing import List, Optional

HERE = pathlib.Path(__file__).resolve().parent
LIB_NAME = 'librrto_cuda.so'
SOURCES = ['transport.c', 'registry.c', 'memtrack.c', 'errors.c', 'trace.c', 'runtime_api.c',
           'replay.c', 'lane.c', 'driver_api.c']
GENERATED = ['rrto_unsupported.c', 'rrto_vendor_stubs.c']   # by gen_api_table.py, in gen/


def cuda_include_dirs() -> List[pathlib.Path]:
    """Candidate directories holding cuda_runtime_api.h, best first."""
    cands = []
    for var in ('CUDA_HOME', 'CUDA_PATH'):
        if os.environ.get(var):
            cands.append(pathlib.Path(os.environ[var]) / 'include')
    cands += [pathlib.Path('/usr/local/cuda/include'), pathlib.Path('/usr/include')]
    nvcc = shutil.which('nvcc')
    if nvcc:
        cands.append(pathlib.Path(nvcc).resolve().parent.parent / 'include')
    for site in {sysconfig.get_paths()['purelib'], sysconfig.get_paths()['platlib']}:
        cands += [pathlib.Path(site) / 'nvidia' / sub / 'include'
                  for sub in ('cuda_runtime', 'cu13', 'cu12')]
    return cands


def find_cuda_include() -> pathlib.Path:
    for d in cuda_include_dirs():
        if (d / 'cuda_runtime_api.h').is_file():
            return d
    raise SystemExit('rrto: cannot find cuda_runtime_api.h. Install the CUDA toolkit or '
                     '`pip install nvidia-cuda-runtime`, or set CUDA_HOME.')


def build(out_dir: pathlib.Path, include: Optional[pathlib.Path] = None,
          cc: str = 'gcc', verbose: bool = False) -> pathlib.Path:
    """Generate the API table and compile the library; return the library's path."""
    sys.path.insert(0, str(HERE))
    import gen_api_table  # noqa: E402  (a sibling script, not a package module)
    include = include or find_cuda_include()
    gen_dir = out_dir / 'gen'
    gen_api_table.generate(include, gen_dir, cc)
    out_dir.mkdir(parents=True, exist_ok=True)
    lib = out_dir / LIB_NAME
    cmd = [cc, '-shared', '-fPIC', '-O2', '-std=gnu11', '-Wall', '-Wextra',
           '-Wno-unused-parameter', '-fvisibility=default', '-I', str(HERE), '-I', str(gen_dir),
           '-I', str(include), '-o', str(lib)]
    cmd += [str(HERE / s) for s in SOURCES] + [str(gen_dir / g) for g in GENERATED]
    cmd += ['-ldl', '-lpthread']
    if verbose:
        print(' '.join(cmd), file=sys.stderr)
    subprocess.run(cmd, check=True)
    return lib


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--out', type=pathlib.Path, default=HERE.parent / 'lib')
    ap.add_argument('--include', type=pathlib.Path)
    ap.add_argument('--cc', default=os.environ.get('CC', 'gcc'))
    a = ap.parse_args()
    print(build(a.out, a.include, a.cc, verbose=True))


if __name__ == '__main__':
    main()
