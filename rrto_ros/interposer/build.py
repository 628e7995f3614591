# Copyright 2026 rrto_ros authors. Apache-2.0.
"""Build ``librrto_cuda.so`` with gcc against the CUDA runtime headers.

The headers come from the CUDA toolkit when one is installed (``$CUDA_HOME``,
``/usr/local/cuda``), else from the ``nvidia-cuda-runtime`` wheel; ``--cuda 12`` takes CUDA
12.6's from PyPI wheels instead (``cuda_headers.py``). ``--target aarch64`` cross-compiles
for a Jetson (``aarch64-linux-gnu-gcc``, Debian's ``gcc-aarch64-linux-gnu``). The library
links only libc, libdl and libpthread: it is loaded into arbitrary processes. Every build is
checked: it exports every function of its generated API table, and a ``--target`` build is
for that machine.

    python rrto_ros/interposer/build.py --target aarch64 --cuda 12 --out build/aarch64-cuda12
"""

from __future__ import annotations

import argparse
import os
import pathlib
import shutil
import subprocess
import sys
import sysconfig
from typing import List, Optional, Sequence

HERE = pathlib.Path(__file__).resolve().parent
LIB_NAME = 'librrto_cuda.so'
SOURCES = ['transport.c', 'registry.c', 'memtrack.c', 'errors.c', 'trace.c', 'runtime_api.c',
           'replay.c', 'lane.c', 'driver_api.c', 'forward.c', 'vendor_local.c']
# by gen_api_table.py, in gen/
GENERATED = ['rrto_unsupported.c', 'rrto_vendor_stubs.c', 'rrto_forward_table.c']
# --target: the machine (as elf_info names it) -> the Debian cross compiler for it.
TARGETS = {'aarch64': 'aarch64-linux-gnu-gcc'}


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


def check(lib: pathlib.Path, api: Sequence[str], target: Optional[str] = None) -> None:
    """Fail unless ``lib`` exports every function of the API table (and is for ``target``)."""
    sys.path.insert(0, str(HERE))
    import elf_info  # noqa: E402  (a sibling script, not a package module)
    if target and elf_info.machine(lib) != target:
        raise SystemExit(f'rrto: {lib} is for {elf_info.machine(lib)}, not {target}: check '
                         'the compiler (--cc)')
    missing = sorted(set(api) - elf_info.exported_functions(lib))
    if missing:
        raise SystemExit(f'rrto: {lib} does not export {len(missing)} function(s) of its API '
                         f'table: {", ".join(missing[:20])}')


def build(out_dir: pathlib.Path, include: Optional[pathlib.Path] = None,
          cc: str = 'gcc', verbose: bool = False, target: Optional[str] = None,
          gen_dir: Optional[pathlib.Path] = None) -> pathlib.Path:
    """Generate the API table and compile the library; return the library's path.

    ``gen_dir``: where the generated sources go (default ``out_dir/gen``; a temporary folder
    when the library is built into a package)."""
    sys.path.insert(0, str(HERE))
    import gen_api_table  # noqa: E402  (a sibling script, not a package module)
    include = include or find_cuda_include()
    if shutil.which(cc) is None:
        hint = ('install gcc-aarch64-linux-gnu and libc6-dev-arm64-cross (Debian, Ubuntu)'
                if target == 'aarch64' else 'install gcc or pass --cc')
        raise SystemExit(f'rrto: the C compiler {cc!r} is not installed: {hint}')
    gen = gen_dir if gen_dir is not None else out_dir / 'gen'
    api = gen_api_table.generate(include, gen, cc)
    out_dir.mkdir(parents=True, exist_ok=True)
    lib = out_dir / LIB_NAME
    cmd = [cc, '-shared', '-fPIC', '-O2', '-std=gnu11', '-Wall', '-Wextra',
           '-Wno-unused-parameter', '-fvisibility=default', '-I', str(HERE), '-I', str(gen),
           '-I', str(include), '-o', str(lib)]
    cmd += [str(HERE / s) for s in SOURCES] + [str(gen / g) for g in GENERATED]
    cmd += ['-ldl', '-lpthread']
    if verbose:
        print(' '.join(cmd), file=sys.stderr)
    subprocess.run(cmd, check=True)
    try:
        check(lib, api, target)
    except SystemExit:
        lib.unlink()          # a wrong library must not be found and preloaded
        raise
    return lib


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--out', type=pathlib.Path, default=HERE.parent / 'lib')
    ap.add_argument('--include', type=pathlib.Path,
                    help='folder with cuda_runtime_api.h (default: the installed CUDA)')
    ap.add_argument('--cuda', type=int, help='take the headers of this CUDA major version '
                    'from PyPI wheels (cached in --header-cache), e.g. 12 for JetPack 6')
    ap.add_argument('--header-cache', type=pathlib.Path, default=None,
                    help='where --cuda keeps the headers (default: build/cuda-headers)')
    ap.add_argument('--target', choices=sorted(TARGETS),
                    help='cross-compile for this machine (default: this machine)')
    ap.add_argument('--cc', help='C compiler (default: $CC or gcc; with --target, the '
                    'Debian cross compiler for it)')
    a = ap.parse_args()
    if a.include and a.cuda:
        ap.error('give --include or --cuda, not both')
    include = a.include
    if a.cuda:
        sys.path.insert(0, str(HERE))
        import cuda_headers  # noqa: E402  (a sibling script, not a package module)
        include = cuda_headers.fetch(a.cuda, a.header_cache or cuda_headers.DEFAULT_CACHE)
    cc = a.cc or (TARGETS[a.target] if a.target else os.environ.get('CC', 'gcc'))
    print(build(a.out, include, cc, verbose=True, target=a.target))


if __name__ == '__main__':
    main()
