# Copyright 2026 rrto_ros authors. Apache-2.0.
"""Build the C fuzz harness of the interposer's parsers (``bench/c/fuzz/``): with clang's
libFuzzer (coverage-guided) when clang is installed, else with gcc and the plain mutation
driver; both with AddressSanitizer and UndefinedBehaviorSanitizer."""

from __future__ import annotations

import pathlib
import shutil
import subprocess
from typing import Tuple

from rrto_ros.interposer import build as lib_build

ROOT = pathlib.Path(__file__).resolve().parents[2]
HARNESS = ROOT / 'bench' / 'c' / 'fuzz'
HARNESS_SOURCES = ['parsers.c', 'transport_entry.c', 'lane_entry.c', 'replay_entry.c']
LIB_SOURCES = ['memtrack.c']     # what the parsers call besides their own files
ENGINES = ('libfuzzer', 'driver')


def build(out_dir: pathlib.Path, engine: str = '') -> Tuple[pathlib.Path, str]:
    """(path of the harness, engine); ``engine`` '' picks libfuzzer if clang is here."""
    engine = engine or ('libfuzzer' if shutil.which('clang') else 'driver')
    if engine not in ENGINES:
        raise ValueError(f'engine must be one of {ENGINES}, not {engine!r}')
    include = lib_build.find_cuda_include()
    gen = out_dir / 'gen'
    import sys
    sys.path.insert(0, str(lib_build.HERE))
    import gen_api_table  # noqa: E402  (a sibling script, as in interposer/build.py)
    gen_api_table.generate(include, gen, 'gcc')
    out = out_dir / f'parsers_{engine}'
    srcs = [str(HARNESS / s) for s in HARNESS_SOURCES] + \
        [str(lib_build.HERE / s) for s in LIB_SOURCES]
    flags = ['-g', '-O1', '-std=gnu11', '-I', str(lib_build.HERE), '-I', str(gen), '-I',
             str(include)]
    if engine == 'libfuzzer':
        cmd = ['clang', '-fsanitize=fuzzer,address,undefined'] + flags + srcs
    else:
        cmd = ['gcc', '-fsanitize=address,undefined'] + flags + srcs + \
            [str(HARNESS / 'driver.c')]
    out_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run(cmd + ['-o', str(out)], check=True)
    return out, engine
