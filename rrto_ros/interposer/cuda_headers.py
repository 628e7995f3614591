# Copyright 2026 rrto_ros authors. Apache-2.0.
"""The CUDA runtime headers (and runtime library) of one CUDA version, from NVIDIA's PyPI
wheels, for building the interposer against a CUDA this machine does not have installed:
CI's build for a Jetson (JetPack 6: CUDA 12.6) on a machine with another CUDA or none.

``cuda_runtime_api.h`` comes with the runtime wheel; the ``crt/host_defines.h`` it includes
comes with the nvcc wheel (CUDA 12). The wheels are fetched with pip (its cache makes a
second fetch local) and only their ``include/`` and ``lib/`` are kept, in
``CACHE/cuda<major>/``; a later call finds them there and fetches nothing.
"""

from __future__ import annotations

import argparse
import pathlib
import shutil
import subprocess
import sys
import tempfile
from typing import Dict, Tuple
import zipfile

# CUDA major -> the wheels that carry its runtime headers. 12.6: JetPack 6.1 and 6.2.
WHEELS: Dict[int, Tuple[str, ...]] = {
    12: ('nvidia-cuda-runtime-cu12==12.6.*', 'nvidia-cuda-nvcc-cu12==12.6.*'),
}
DEFAULT_CACHE = pathlib.Path('build') / 'cuda-headers'
KEPT = ('include', 'lib')        # the wheels' folders we keep (nvidia/<component>/<folder>)


def _complete(root: pathlib.Path) -> bool:
    inc = root / 'include'
    return (inc / 'cuda_runtime_api.h').is_file() and (inc / 'crt' / 'host_defines.h').is_file()


def _unpack(wheel: pathlib.Path, dest: pathlib.Path) -> None:
    """nvidia/<component>/{include,lib}/... of ``wheel`` into dest/{include,lib}/..."""
    with zipfile.ZipFile(wheel) as z:
        for member in z.infolist():
            parts = pathlib.PurePosixPath(member.filename).parts
            if (len(parts) < 4 or parts[0] != 'nvidia' or parts[2] not in KEPT
                    or member.is_dir() or '..' in parts or parts[-1] == '__init__.py'):
                continue
            target = dest.joinpath(*parts[2:])
            target.parent.mkdir(parents=True, exist_ok=True)
            with z.open(member) as src, open(target, 'wb') as out:
                shutil.copyfileobj(src, out)


def fetch(cuda: int, cache: pathlib.Path = DEFAULT_CACHE, quiet: bool = True) -> pathlib.Path:
    """The include directory of CUDA ``cuda``'s runtime headers (fetched on first use)."""
    if cuda not in WHEELS:
        raise SystemExit(f'rrto: no wheels known for CUDA {cuda} headers (known: '
                         f'{", ".join(map(str, sorted(WHEELS)))}); pass --include DIR instead')
    root = cache / f'cuda{cuda}'
    if _complete(root):
        return root / 'include'
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        tmp_path = pathlib.Path(tmp)
        cmd = [sys.executable, '-m', 'pip', 'download', '--no-deps', '--only-binary', ':all:',
               '--disable-pip-version-check', '--timeout', '20', '--retries', '2',
               '-d', str(tmp_path / 'wheels'), *WHEELS[cuda]]
        if quiet:
            cmd.append('-q')
        r = subprocess.run(cmd)
        if r.returncode:
            raise SystemExit(f'rrto: `{" ".join(cmd)}` failed (exit {r.returncode}): the CUDA '
                             f'{cuda} headers come from these PyPI wheels; check the network '
                             'or pip configuration, or pass --include DIR')
        staged = tmp_path / 'staged'
        wheels = sorted((tmp_path / 'wheels').glob('*.whl'))
        for wheel in wheels:
            _unpack(wheel, staged)
        if not _complete(staged):
            raise SystemExit(f'rrto: the wheels {", ".join(w.name for w in wheels)} lack '
                             'cuda_runtime_api.h or crt/host_defines.h')
        (staged / 'WHEELS').write_text(''.join(w.name + '\n' for w in wheels))
        if root.exists():
            shutil.rmtree(root)
        staged.rename(root)
    return root / 'include'


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('cuda', type=int, choices=sorted(WHEELS), help='CUDA major version')
    ap.add_argument('--cache', type=pathlib.Path, default=DEFAULT_CACHE)
    a = ap.parse_args()
    print(fetch(a.cuda, a.cache, quiet=False))


if __name__ == '__main__':
    main()
