# Copyright 2026 rrto_ros authors. Apache-2.0.
"""Many apps replaying at once on one server (issue 12 item 8): 1, 4 and 16 copies of the CNN
demo program (examples/cnn_infer) in mode replay, started together; per-app p50/p95 latency
of the steady inferences, the server's throughput (inferences per second over the window
all apps ran), whether every output is the native reference, and what an app beyond the
server's max_sessions is told.

    python bench/many_robots.py --backend emu --out bench/results/many_robots_emu.json

Each count runs on a fresh server (in this process) with max_sessions = the count, so the
last check (one more app while they run) meets the limit.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import time
from typing import Dict

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rrto_ros.bench.harness import device_name, parse_timings  # noqa: E402
from rrto_ros.stack import LocalStack  # noqa: E402


def run_count(exe: pathlib.Path, backend: str, count: int, inferences: int, warmup: int,
              reference: str) -> Dict:
    with LocalStack(backend, 'replay', server_options={'max_sessions': count}) as stack:
        env = stack.env({'CNN_INFER_TIMING': '1'})
        t0 = time.perf_counter()
        apps = [subprocess.Popen([str(exe), str(inferences), '1'], env=env, text=True,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                for _ in range(count)]
        time.sleep(0.5)   # they hold their sessions now: one more is beyond max_sessions
        extra = subprocess.run([str(exe), '1', '1'], env=env, text=True, capture_output=True,
                               timeout=120)
        outs = [a.communicate(timeout=1800) for a in apps]
        wall = time.perf_counter() - t0
    rows = []
    for a, (out, err) in zip(apps, outs):
        lat = sorted(x * 1e3 for x in parse_timings(err)[warmup:])
        rows.append({'exit': a.returncode, 'correct': a.returncode == 0 and out == reference,
                     'p50_ms': round(statistics.median(lat), 3) if lat else None,
                     'p95_ms': round(lat[int(0.95 * (len(lat) - 1))], 3) if lat else None})
    refused = [ln for ln in extra.stderr.splitlines() if ln.startswith('[rrto]')]
    p50s = [r['p50_ms'] for r in rows if r['p50_ms'] is not None]
    return {'apps': count, 'correct': all(r['correct'] for r in rows),
            'p50_ms': round(statistics.median(p50s), 3) if p50s else None,
            'p95_ms': max((r['p95_ms'] for r in rows if r['p95_ms'] is not None),
                          default=None),
            'throughput_inferences_per_s': round(count * inferences / wall, 1),
            'wall_s': round(wall, 2), 'per_app': rows,
            'one_more_app': {'exit': extra.returncode, 'told': refused[:2]}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--backend', default='emu', choices=('emu', 'cuda'))
    ap.add_argument('--out', required=True)
    ap.add_argument('--counts', default='1,4,16')
    ap.add_argument('--inferences', type=int, default=60)
    ap.add_argument('--warmup', type=int, default=10)
    ap.add_argument('--exe', default=str(ROOT / 'build' / 'examples' / 'cnn_infer'))
    a = ap.parse_args()
    exe = pathlib.Path(a.exe)
    if a.backend == 'cuda':
        native = subprocess.run([str(exe), str(a.inferences), '1'], capture_output=True,
                                text=True, timeout=600)
        reference = native.stdout
    else:   # the emu reference: one app alone, forwarding
        with LocalStack(a.backend, 'pipelined') as stack:
            reference = stack.run([str(exe), str(a.inferences), '1'], timeout=600).stdout
    result = {'command': ' '.join(['bench/many_robots.py'] + sys.argv[1:]),
              'device': device_name(a.backend), 'host': platform.node(),
              'cpus': os.cpu_count(), 'inferences_per_app': a.inferences,
              'warmup': a.warmup, 'load': []}
    for count in (int(c) for c in a.counts.split(',')):
        print(f'[many_robots] {count} apps ...', flush=True)
        row = run_count(exe, a.backend, count, a.inferences, a.warmup, reference)
        result['load'].append(row)
        print(f'[many_robots]   correct {row["correct"]}, p50 {row["p50_ms"]} ms, p95 '
              f'{row["p95_ms"]} ms, {row["throughput_inferences_per_s"]} inferences/s; one '
              f'more app: {row["one_more_app"]["told"][:1]}', flush=True)
        pathlib.Path(a.out).write_text(json.dumps(result, indent=1) + '\n')
    return 0 if all(r['correct'] for r in result['load']) else 1


if __name__ == '__main__':
    sys.exit(main())
