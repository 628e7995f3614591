# Copyright 2026 rrto_ros authors. Apache-2.0.
"""What a built ``librrto_cuda.so`` is: its machine, the functions it exports, the glibc it
needs. Works on a library for another machine (a cross-build): the header is read here and
the symbol tables with binutils' ``readelf``, which reads every ELF target."""

from __future__ import annotations

import pathlib
import re
import subprocess
from typing import Set, Tuple, Union

PathLike = Union[str, pathlib.Path]
MACHINES = {3: 'i386', 40: 'arm', 62: 'x86_64', 183: 'aarch64'}   # ELF e_machine values
_GLIBC = re.compile(r'\bGLIBC_(\d+(?:\.\d+)*)\b')


def machine(path: PathLike) -> str:
    """'x86_64', 'aarch64', ... of a 64-bit little-endian ELF file (from its header)."""
    with open(path, 'rb') as f:
        head = f.read(20)
    if head[:4] != b'\x7fELF':
        raise ValueError(f'{path} is not an ELF file')
    if head[4] != 2 or head[5] != 1:
        raise ValueError(f'{path} is not a 64-bit little-endian ELF file')
    code = int.from_bytes(head[18:20], 'little')
    return MACHINES.get(code, f'e_machine {code}')


def _readelf(args: list, path: PathLike, readelf: str) -> str:
    try:
        return subprocess.run([readelf, '-W', *args, str(path)], capture_output=True,
                              text=True, check=True).stdout
    except FileNotFoundError as e:
        raise RuntimeError(f'{readelf} not found: install binutils') from e


def exported_functions(path: PathLike, readelf: str = 'readelf') -> Set[str]:
    """Names of the functions the library defines with default visibility (what an app or
    LD_PRELOAD resolves against), version suffixes dropped."""
    names = set()
    for line in _readelf(['--dyn-syms'], path, readelf).splitlines():
        f = line.split()
        # Num: Value Size Type Bind Vis Ndx Name
        if len(f) >= 8 and f[3] == 'FUNC' and f[4] in ('GLOBAL', 'WEAK') and f[6] != 'UND':
            names.add(f[7].split('@')[0])
    return names


def glibc_needed(path: PathLike, readelf: str = 'readelf') -> Tuple[int, ...]:
    """The newest glibc symbol version the library needs, e.g. (2, 34)."""
    versions = [tuple(int(p) for p in v.split('.'))
                for v in _GLIBC.findall(_readelf(['-V'], path, readelf))]
    return max(versions, default=())
