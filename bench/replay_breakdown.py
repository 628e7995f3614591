# Copyright 2026 rrto_ros authors. Apache-2.0.
"""Where the time of one replayed inference goes, on loopback (a profiling harness).

    python bench/replay_breakdown.py --backend cuda --out bench/results/replay_breakdown.json

Wraps the client session's per-request handler and the server session's executor with
timers (in this process: server and client run as threads here), runs the CNN demo program
in mode ``replay`` and reports medians per request type next to the app's own latency.
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
from typing import Dict, List

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rrto_ros.client import session as client_session  # noqa: E402
from rrto_ros.protocol.ops import Op  # noqa: E402
from rrto_ros.server import session as server_session  # noqa: E402
from rrto_ros.stack import LocalStack  # noqa: E402


def timed(cls, name: str, samples: Dict[str, List[float]], label: str) -> None:
    orig = getattr(cls, name)

    def wrapper(self, req, *a):
        t = time.perf_counter()
        out = orig(self, req, *a)
        key = f'{label} {Op(req.op).name if isinstance(req.op, int) else req.op}'
        samples.setdefault(key, []).append(time.perf_counter() - t)
        return out
    setattr(cls, name, wrapper)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--backend', choices=('cuda', 'emu'), default='cuda')
    ap.add_argument('--inferences', type=int, default=500)
    ap.add_argument('--out', type=pathlib.Path, required=True)
    a = ap.parse_args()
    samples: Dict[str, List[float]] = {}
    timed(client_session.ClientSession, '_serve', samples, 'client handles')
    timed(server_session.ServerSession, '_execute', samples, 'server executes')
    exe = str(ROOT / 'build' / 'examples' / 'cnn_infer')
    skip = a.inferences // 5
    result = {'command': 'python ' + ' '.join(shlex.quote(x) for x in sys.argv),
              'backend': a.backend, 'date': time.strftime('%F'),
              'note': f'medians over inferences {skip}..{a.inferences} (replay steady state); '
                      'server and client cores as threads of one process, loopback'}
    env = dict(os.environ, CNN_INFER_TIMING='1')
    if a.backend == 'cuda':
        r = subprocess.run([exe, str(a.inferences)], capture_output=True, text=True, env=env)
        t = [float(ln.split()[4]) for ln in r.stderr.splitlines()
             if ln.startswith('cnn_infer: timing')]
        result['native_us_p50'] = statistics.median(t[skip:])
    with LocalStack(a.backend, 'replay') as st:
        r = st.run([exe, str(a.inferences)], extra_env={'CNN_INFER_TIMING': '1'}, timeout=900)
        t = [float(ln.split()[4]) for ln in r.stderr.splitlines()
             if ln.startswith('cnn_infer: timing')]
        s = st.last_session()
    result['replay_app_us_p50'] = statistics.median(t[skip:])
    result['client_to_server_rtt_us_p50'] = s['server_rtt_us_median']
    result['per_request_us_p50'] = {k: round(statistics.median(v[skip:]) * 1e6, 1)
                                    for k, v in sorted(samples.items()) if len(v) > skip}
    print(json.dumps(result, indent=2))
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=2) + '\n')
    return 0 if r.returncode == 0 else 1


if __name__ == '__main__':
    sys.exit(main())
