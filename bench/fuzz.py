# Copyright 2026 rrto_ros authors. Apache-2.0.
"""Fuzz every decoder an outsider or a broken app reaches, N inputs per target, and report
per target `inputs`, `crashes`, `hangs` and `rss_growth_mb` as JSON.

    python bench/fuzz.py                         # 1,000,000 inputs per target
    python bench/fuzz.py --inputs 3000 --out /tmp/fuzz.json
    python bench/fuzz.py --targets server,interposer

Targets (``rrto_ros/bench/fuzz_targets.py``): `server` (request decoding and session
dispatch), `lane` (the replay lane's framing), `agent` (the client node's local-socket
framing), `reply` (the client node's decoding of server replies), and `interposer` (the C
harness ``bench/c/fuzz/``: the replay table, the lane description, the client node's and
the lane's reply streams). Python targets run under atheris (coverage-guided) when it is
installed, else under a seeded mutation loop; the C harness under libFuzzer with ASan and
UBSan when clang is installed, else under gcc's sanitizers and a seeded mutation loop. A
run stops at its first crash (its input is printed in `detail`); an input running longer
than --timeout-s is a hang. `rss_growth_mb`: the process's resident memory at its last
input minus after a warm-up of 10% of the inputs (Python targets), or libFuzzer's peak
RSS at the end minus at start-up (C). Exit status 1 when anything crashed or hung.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import time
from typing import Dict, List

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rrto_ros.bench import fuzz_build  # noqa: E402
from rrto_ros.bench import fuzz_targets  # noqa: E402

PY_TARGETS = list(fuzz_targets.TARGETS)
ALL_TARGETS = PY_TARGETS + ['interposer']
C_MAX_LEN = 65536
# Leaks are crashes; so is an allocation no parser should make for a 64 KiB input (the
# largest legitimate one is a 256 MiB replay table, checked before it is allocated).
ASAN_OPTIONS = 'detect_leaks=1:quarantine_size_mb=16:max_allocation_size_mb=300:' \
    'allocator_may_return_null=0'


def _engine() -> str:
    if os.environ.get('RRTO_FUZZ_ENGINE') == 'plain' or fuzz_targets.atheris is None:
        return 'plain'
    return 'atheris'


def _rss_growth(out: str) -> float:
    measured = [int(m) for m in re.findall(r'^rss_at_input \d+: (\d+)$', out, re.M)]
    if len(measured) >= 2:
        return float(measured[-1] - measured[0])
    peaks = [int(m) for m in re.findall(r'rss: (\d+)Mb', out)]
    return float(peaks[-1] - peaks[0]) if len(peaks) >= 2 else 0.0


def _inputs(out: str) -> int:
    done = re.findall(r'Done (\d+) runs', out)
    if done:
        return int(done[-1])
    seen = re.findall(r'^#(\d+)\s', out, re.M) + re.findall(r'^rss_at_input (\d+):', out, re.M)
    return max((int(n) for n in seen), default=0)


def run_target(target: str, inputs: int, seed: int, timeout_s: float, wall_s: float,
               work: pathlib.Path, c_harness: pathlib.Path = None, c_engine: str = ''
               ) -> Dict:
    corpus = work / f'corpus-{target}'
    corpus.mkdir(parents=True, exist_ok=True)
    if target == 'interposer':
        for i, s in enumerate(fuzz_targets.c_seeds()):
            (corpus / f'seed-{i}').write_bytes(s)
        cmd = [str(c_harness), f'-runs={inputs}', f'-seed={seed}', f'-max_len={C_MAX_LEN}',
               f'-timeout={int(timeout_s)}', '-rss_limit_mb=2048', str(corpus)]
        engine = c_engine
    else:
        cmd = [sys.executable, '-m', 'rrto_ros.bench.fuzz_targets', target, f'-runs={inputs}',
               f'-seed={seed}', f'-timeout={int(timeout_s)}', '-rss_limit_mb=2048',
               str(corpus)]
        engine = _engine()
    env = dict(os.environ, PYTHONPATH=str(ROOT),
               ASAN_OPTIONS=ASAN_OPTIONS)
    t0 = time.monotonic()
    try:
        r = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True,
                           timeout=wall_s)
        out, rc, walled = r.stdout + r.stderr, r.returncode, False
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b'').decode(errors='replace') + (e.stderr or b'').decode(
            errors='replace')
        rc, walled = None, True
    seconds = time.monotonic() - t0
    hang = walled or 'ERROR: libFuzzer: timeout' in out
    crash = not hang and rc != 0
    detail = ''
    if crash or hang:
        marks = [ln for ln in out.splitlines() if 'ERROR' in ln or 'Error' in ln or
                 'Traceback' in ln or 'Uncaught' in ln or 'crash' in ln]
        detail = '\n'.join(marks[:5] + out.splitlines()[-25:])
    n = _inputs(out)
    return {'target': target, 'engine': engine, 'inputs': n, 'crashes': int(crash),
            'hangs': int(hang), 'rss_growth_mb': _rss_growth(out),
            'seconds': round(seconds, 1), 'exec_per_s': round(n / seconds) if seconds else 0,
            'detail': detail}


def main(argv: List[str] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--inputs', type=int, default=1_000_000, help='inputs per target')
    ap.add_argument('--targets', default=','.join(ALL_TARGETS),
                    help=f'comma-separated, of: {", ".join(ALL_TARGETS)}')
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--timeout-s', type=float, default=10.0, help='one input longer: a hang')
    ap.add_argument('--wall-s', type=float, default=0.0,
                    help='a whole target longer: a hang (default: no limit)')
    ap.add_argument('--c-engine', default='', choices=('', ) + fuzz_build.ENGINES,
                    help='libfuzzer (clang) or driver (gcc); default: libfuzzer if clang')
    ap.add_argument('--out', help='write the JSON here (it is printed too)')
    a = ap.parse_args(argv)
    targets = [t for t in a.targets.split(',') if t]
    unknown = set(targets) - set(ALL_TARGETS)
    if unknown:
        ap.error(f'unknown target(s) {", ".join(sorted(unknown))}; choose from '
                 f'{", ".join(ALL_TARGETS)}')
    results = []
    with tempfile.TemporaryDirectory(prefix='rrto-fuzz-') as tmp:
        work = pathlib.Path(tmp)
        harness, c_engine = (None, '')
        if 'interposer' in targets:
            harness, c_engine = fuzz_build.build(ROOT / 'build' / 'fuzz', a.c_engine)
        for t in targets:
            res = run_target(t, a.inputs, a.seed, a.timeout_s, a.wall_s or None, work,
                             harness, c_engine)
            print(f"{t:11s} {res['engine']:9s} {res['inputs']:>9d} inputs  "
                  f"{res['crashes']} crashes  {res['hangs']} hangs  "
                  f"rss +{res['rss_growth_mb']:.0f} MB  {res['seconds']:.0f} s",
                  file=sys.stderr, flush=True)
            results.append(res)
    report = {'command': 'python bench/fuzz.py ' + ' '.join(argv or sys.argv[1:]),
              'inputs_per_target': a.inputs, 'targets': results}
    text = json.dumps(report, indent=1)
    if a.out:
        pathlib.Path(a.out).write_text(text + '\n')
    print(text)
    return 1 if any(r['crashes'] or r['hangs'] for r in results) else 0


if __name__ == '__main__':
    sys.exit(main())
