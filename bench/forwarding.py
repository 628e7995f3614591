# Copyright 2026 rrto_ros authors. Apache-2.0.
"""Forwarding benchmark: every example program under the interposer in modes rpc and
pipelined, compared with its native run, plus the cost of one blocking forwarded call.

    python bench/forwarding.py --backend cuda --out bench/results/forwarding_gpu.json

Needs the interposer (make lib) and the examples (make examples). With --backend cuda the
native runs need a local GPU; with emu there is no native run to compare with.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from typing import Dict, List

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rrto_ros.interposer.build import find_cuda_include  # noqa: E402
from rrto_ros.stack import LocalStack  # noqa: E402

PROGRAMS = sorted(p.stem for p in (ROOT / 'examples').glob('*.cu'))


def device_name(backend: str) -> str:
    if backend != 'cuda':
        return f'emu backend on {platform.processor() or platform.machine()}'
    out = subprocess.run(['nvidia-smi', '--query-gpu=name,driver_version',
                          '--format=csv,noheader'],
                         capture_output=True, text=True)
    return out.stdout.strip().splitlines()[0] if out.returncode == 0 else 'unknown GPU'


def build_roundtrip(out_dir: pathlib.Path, name: str = 'roundtrip') -> pathlib.Path:
    """bench/c/<name>.c built like an app: gcc, dynamic libcudart."""
    inc = find_cuda_include()
    lib = next(d for d in (inc.parent / 'lib64', inc.parent / 'lib')
               if list(d.glob('libcudart.so*')))
    exe = out_dir / name
    subprocess.run(['gcc', '-O2', '-o', str(exe), str(ROOT / 'bench' / 'c' / f'{name}.c'),
                    '-I', str(inc), '-L', str(lib), '-lcudart', f'-Wl,-rpath,{lib}'], check=True)
    return exe


def run_native(exe: pathlib.Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(exe)], capture_output=True, text=True, timeout=300)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--backend', choices=('cuda', 'emu'), default='cuda')
    ap.add_argument('--examples', type=pathlib.Path, default=ROOT / 'build' / 'examples')
    ap.add_argument('--calls', type=int, default=2000, help='blocking calls to time')
    ap.add_argument('--out', type=pathlib.Path, required=True)
    a = ap.parse_args()
    rows: List[Dict] = []
    ok = True
    for prog in PROGRAMS:
        exe = a.examples / prog
        native = run_native(exe) if a.backend == 'cuda' else None
        if native is not None and native.returncode != 0:
            print(f'{prog}: native run failed:\n{native.stderr}', file=sys.stderr)
            ok = False
        for mode in ('rpc', 'pipelined'):
            with LocalStack(a.backend, mode, server_process=True) as stack:
                t0 = time.perf_counter()
                r = stack.run([str(exe)], timeout=600)
                wall = time.perf_counter() - t0
                s = stack.last_session()
            identical = None if native is None else (r.stdout == native.stdout and
                                                     r.returncode == native.returncode)
            passed = r.returncode == 0 and 'PASS' in r.stdout
            ok &= passed and identical is not False
            rows.append({'program': prog, 'mode': mode, 'backend': a.backend,
                         'identical_to_native': identical, 'passed': passed,
                         'forwarded_calls': s.get('forwarded_calls'),
                         'agent_calls': s.get('agent_calls'),
                         'blocking_round_trips': s.get('blocking_round_trips'),
                         'bytes_up': s.get('bytes_up'), 'bytes_down': s.get('bytes_down'),
                         'wall_s': round(wall, 4)})
            print(json.dumps(rows[-1]), flush=True)
            if not passed or identical is False:
                print(r.stdout[-2000:], r.stderr[-2000:], file=sys.stderr)
    # Cost of one blocking forwarded call on loopback, split into its two hops.
    exe = build_roundtrip(pathlib.Path(tempfile.mkdtemp(prefix='rrto-bench-')))
    with LocalStack(a.backend, 'rpc', server_process=True) as stack:
        r = stack.run([str(exe), str(a.calls)], timeout=600)
        s = stack.last_session()
    fields = r.stdout.split()
    total = float(fields[fields.index('median_us') + 1])
    server_hop = s['server_rtt_us_median']
    rtt = {'calls': a.calls, 'total_median_us': total,
           'p90_us': float(fields[fields.index('p90_us') + 1]),
           'interposer_to_client_us': round(total - server_hop, 2),
           'client_to_server_us': round(server_hop, 2),
           'note': 'median of cudaDeviceSynchronize timed in the app (rpc mode, loopback, '
                   'server in its own process); client_to_server is the client node median '
                   'request->reply time, the interposer hop is the difference'}
    if a.backend == 'cuda':
        native = subprocess.run([str(exe), str(a.calls)], capture_output=True, text=True)
        nf = native.stdout.split()
        rtt['native_median_us'] = float(nf[nf.index('median_us') + 1]) if nf else None
    result = {'device': device_name(a.backend), 'backend': a.backend,
              'command': 'python ' + ' '.join(shlex.quote(x) for x in sys.argv),
              'date': time.strftime('%Y-%m-%d'), 'all_passed': ok, 'runs': rows,
              'rpc_round_trip_us': rtt}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=2) + '\n')
    print(json.dumps(rtt, indent=2))
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
