# Copyright 2026 rrto_ros authors. Apache-2.0.
"""Server-side cost of one replayed inference, beyond the work itself.

    python bench/replay_server_cost.py --backend cuda --out bench/results/replay_server_cost.json

Runs the CNN demo program in mode ``replay`` against an in-process server, with the replayed
launches as CUDA graphs and without, and reports the server's time per replayed inference
(from the first frontier of an inference to its result) next to the native run's time per
inference (input copy in, kernels, result copy out, timed by the program itself).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shlex
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rrto_ros.stack import LocalStack  # noqa: E402


def native_ms(exe: str, n: int) -> float:
    env = dict(os.environ, CNN_INFER_TIMING='1')
    r = subprocess.run([exe, str(n)], capture_output=True, text=True, env=env, check=True)
    # lines: "cnn_infer: timing infer <i> <microseconds> us"
    times = [float(line.split()[4]) / 1000 for line in r.stderr.splitlines()
             if line.startswith('cnn_infer: timing infer')]
    return statistics.median(times[n // 10:]) if times else float('nan')


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--backend', choices=('cuda', 'emu'), default='cuda')
    ap.add_argument('--inferences', type=int, default=300)
    ap.add_argument('--out', type=pathlib.Path, required=True)
    a = ap.parse_args()
    exe = str(ROOT / 'build' / 'examples' / 'cnn_infer')
    result = {'command': 'python ' + ' '.join(shlex.quote(x) for x in sys.argv),
              'backend': a.backend, 'inferences': a.inferences, 'date': time.strftime('%F'),
              'runs': []}
    if a.backend == 'cuda':
        result['native_ms_per_inference_p50'] = native_ms(exe, a.inferences)
    for graphs in (True, False):
        with LocalStack(a.backend, 'replay', server_options={'replay_graphs': graphs}) as st:
            r = st.run([exe, str(a.inferences)], timeout=900)
            deadline = time.monotonic() + 10
            while not st.server.stats.per_session and time.monotonic() < deadline:
                time.sleep(0.05)    # the server's session thread ends just after the app
            summaries = list(st.server.stats.per_session.values())
            sess = st.last_session()
        s = summaries[-1] if summaries else {}
        run = {'graphs': graphs, 'passed': r.returncode == 0,
               'server_us_per_replayed_inference_p50': s.get('replay_pass_us_median'),
               'replayed_inferences': s.get('replay_passes'),
               'graph_launches': s.get('graph_launches'),
               'client_latency_ms_p50': sess.get('latency_ms_p50'),
               'round_trips_per_inference_steady': statistics.median(
                   sess.get('round_trips_per_inference', (0,))[10:] or (0,))}
        result['runs'].append(run)
        print(json.dumps(run), flush=True)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=2) + '\n')
    return 0 if all(r['passed'] for r in result['runs']) else 1


if __name__ == '__main__':
    sys.exit(main())
