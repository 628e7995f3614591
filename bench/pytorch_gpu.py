# Copyright 2026 rrto_ros authors. Apache-2.0.
"""Stock PyTorch models under the interposer against a server, next to the same script run
natively (issue 10): latency, blocking round trips, bytes and library calls per inference,
whether the output is bit-identical, and the start-up figures (cold and warm module cache).

    python bench/pytorch_gpu.py --backend cuda --out bench/results/pytorch_gpu.json \\
        --configs resnet18:224:off,mlp:32:off --modes local,pipelined,replay \\
        --links loopback,edge -n 20 -w 5

A config is MODEL:SIZE:CUDNN (rrto_ros.bench.torch_app). Per-inference counts are the
difference between a run of N and a run of W inferences, divided by N - W (set-up cost
cancels). The JSON is rewritten after every row, so a run cut short keeps what it measured.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rrto_ros.bench.harness import device_name  # noqa: E402
from rrto_ros.cli.trace_main import read_counts  # noqa: E402
from rrto_ros.stack import LocalStack  # noqa: E402

TIMING = re.compile(r'^torch_app: timing infer (\d+) ([0-9.]+) us$', re.M)
SHA = re.compile(r'^output \S+.* sha256 ([0-9a-f]+)$', re.M)
LIBS = ('cublas', 'cudnn')


def app(config: str, n: int, out: Optional[str] = None) -> List[str]:
    model, size, cudnn = config.split(':')
    cmd = [sys.executable, '-m', 'rrto_ros.bench.torch_app', model, size, str(n),
           '--cudnn', cudnn]
    return cmd + (['--out', out] if out else [])


def latencies(stderr: str, warmup: int) -> Dict[str, Optional[float]]:
    lat = [float(us) / 1e3 for i, us in TIMING.findall(stderr) if int(i) >= warmup]
    if not lat:
        return {'latency_ms_p50': None, 'latency_ms_p95': None}
    lat.sort()
    return {'latency_ms_p50': round(statistics.median(lat), 3),
            'latency_ms_p95': round(lat[min(len(lat) - 1, int(0.95 * len(lat)))], 3)}


def sha(stdout: str) -> Optional[str]:
    m = SHA.search(stdout)
    return m.group(1) if m else None


def run_local(config: str, n: int, w: int, tmp: str) -> Dict:
    t = time.perf_counter()
    r = subprocess.run(app(config, n, os.path.join(tmp, 'native.npy')), capture_output=True,
                       text=True, timeout=600)
    row = {'mode': 'local', 'link': 'none', 'wall_s': round(time.perf_counter() - t, 2),
           'status': 'ok' if r.returncode == 0 else 'error', 'sha256': sha(r.stdout),
           'blocking_round_trips_per_inference': 0, 'bytes_per_inference': 0,
           'identical_to_native': True, 'max_abs_diff_vs_native': 0.0}
    row.update(latencies(r.stderr, w))
    if r.returncode:
        row['error'] = r.stderr[-2000:]
    return row


def per_inf(a: float, b: float, n: int, w: int) -> float:
    return round((a - b) / (n - w), 3)


def run_interposed(config: str, mode: str, link: str, n: int, w: int, tmp: str,
                   backend: str) -> Dict:
    import numpy as np
    row: Dict = {'mode': mode, 'link': link, 'status': 'ok'}
    t0 = time.perf_counter()
    tn, tw = os.path.join(tmp, f'{mode}-{link}-n.tsv'), os.path.join(tmp, f'{mode}-{link}-w.tsv')
    out = os.path.join(tmp, f'{mode}-{link}.npy')
    for p in (tn, tw, out):
        if os.path.exists(p):
            os.unlink(p)
    cache = os.path.join(tmp, f'cache-{mode}-{link}')
    with LocalStack(backend, mode, server_process=True, cache_dir=cache,
                    link=None if link == 'loopback' else link, server_timeout_s=120.0,
                    connect_timeout_s=30.0) as stack:
        starts = []
        for label in ('cold', 'warm'):   # start-up: an empty module cache, then a full one
            t = time.perf_counter()
            r = stack.run(app(config, 1), timeout=900)
            s = stack.last_session()
            starts.append({'start': label, 'wall_s': round(time.perf_counter() - t, 2),
                           'exit': r.returncode, 'bytes_up': s.get('bytes_up'),
                           'blocking_round_trips': s.get('blocking_round_trips'),
                           'modules_uploaded': s.get('modules_uploaded'),
                           'modules_cached': s.get('modules_cached')})
            if r.returncode:
                row.update(status='error', error=f'{label} start exited with {r.returncode}: '
                           + r.stderr[-3000:], startup=starts)
                return row
        short = stack.run(app(config, w), timeout=900, extra_env={'RRTO_TRACE_FILE': tw})
        s_w = stack.last_session()
        r = stack.run(app(config, n, out), timeout=900, extra_env={'RRTO_TRACE_FILE': tn})
        s_n = stack.last_session()
    row['startup'] = starts
    row['wall_s'] = round(time.perf_counter() - t0, 2)
    if r.returncode or short.returncode:
        row.update(status='error', error=(r.stderr or short.stderr)[-3000:])
        return row
    row.update(latencies(r.stderr, w))
    row['sha256'] = sha(r.stdout)
    for key, name in (('blocking_round_trips', 'blocking_round_trips_per_inference'),
                      ('forwarded_calls', 'forwarded_calls_per_inference'),
                      ('agent_calls', 'agent_calls_per_inference')):
        if key in s_n and key in s_w:
            row[name] = per_inf(s_n[key], s_w[key], n, w)
    if all(k in s for s in (s_n, s_w) for k in ('bytes_up', 'bytes_down')):
        row['bytes_per_inference'] = per_inf(s_n['bytes_up'] + s_n['bytes_down'],
                                             s_w['bytes_up'] + s_w['bytes_down'], n, w)
    cn, cw = read_counts(tn), read_counts(tw)
    if cn:
        per = {k: per_inf(cn.get(k, 0), cw.get(k, 0), n, w) for k in cn}
        row['library_calls_per_inference'] = round(sum(v for k, v in per.items()
                                                       if k.startswith(LIBS)), 3)
        row['calls_per_inference'] = {k: v for k, v in sorted(per.items(), key=lambda kv: -kv[1])
                                      if v}
    native = os.path.join(tmp, 'native.npy')
    if os.path.exists(native) and os.path.exists(out):
        a, b = np.load(native), np.load(out)
        row['identical_to_native'] = a.shape == b.shape and a.tobytes() == b.tobytes()
        row['max_abs_diff_vs_native'] = float(np.max(np.abs(a.astype(np.float64) - b))) \
            if a.shape == b.shape else None
    if mode == 'replay' and s_n.get('replay_started_at', -1) in (None, -1):
        row['warning'] = 'the session never replayed: these are forwarding numbers'
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--backend', default='cuda', choices=('cuda', 'emu'))
    ap.add_argument('--out', required=True)
    ap.add_argument('--configs', default='resnet18:224:off')
    ap.add_argument('--modes', default='local,pipelined,replay')
    ap.add_argument('--links', default='loopback')
    ap.add_argument('-n', type=int, default=20)
    ap.add_argument('-w', type=int, default=5)
    a = ap.parse_args()
    result = {'command': ' '.join([os.path.relpath(sys.argv[0], ROOT)] + sys.argv[1:]),
              'device': device_name(a.backend), 'host': platform.node(),
              'when': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()), 'rows': []}
    for config in a.configs.split(','):
        model, size, cudnn = config.split(':')
        with tempfile.TemporaryDirectory(prefix='rrto-torch-') as tmp:
            native_sha = None
            for mode in a.modes.split(','):
                for link in (['none'] if mode == 'local' else a.links.split(',')):
                    print(f'[pytorch_gpu] {config} {mode} {link} ...', flush=True)
                    try:
                        row = run_local(config, a.n, a.w, tmp) if mode == 'local' else \
                            run_interposed(config, mode, link, a.n, a.w, tmp, a.backend)
                    except Exception as e:   # a failing row is a result
                        row = {'mode': mode, 'link': link, 'status': 'error',
                               'error': f'{type(e).__name__}: {e}'}
                    row.update(model=model, input=int(size), cudnn=cudnn)
                    if mode == 'local':
                        native_sha = row.get('sha256')
                    elif 'identical_to_native' not in row and native_sha:
                        row['identical_to_native'] = row.get('sha256') == native_sha
                    result['rows'].append(row)
                    print(f'[pytorch_gpu]   {row["status"]} p50 {row.get("latency_ms_p50")} ms,'
                          f' {row.get("blocking_round_trips_per_inference")} blocking/inf, '
                          f'identical {row.get("identical_to_native")} '
                          f'{row.get("error", "")[-600:]}', flush=True)
                    pathlib.Path(a.out).write_text(json.dumps(result, indent=1) + '\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
