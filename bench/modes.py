# Copyright 2026 rrto_ros authors. Apache-2.0.
"""Modes benchmark: the CNN demo program (build/examples/cnn_infer) in modes local, rpc,
pipelined, replay and offload, side by side, over the links loopback, edge and cloud.

    python bench/modes.py --backend cuda --out bench/results/modes_gpu.json

Writes the JSON (per mode and link: latency p50/p95, blocking round trips, bytes and robot
energy per inference, identical output to the native run) and a PNG next to it (same
name, .png). Needs the interposer (make lib) and the examples (make examples); the offload
server (bench/c/cnn_serve.cu) is built with nvcc when mode offload runs. On the emu backend
local and offload are skipped (no native CUDA), and identical_to_native is null.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shlex
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# The server and link processes LocalStack starts import this same tree.
os.environ['PYTHONPATH'] = os.pathsep.join(
    [str(ROOT)] + [p for p in os.environ.get('PYTHONPATH', '').split(os.pathsep) if p])

from rrto_ros.bench import energy  # noqa: E402
from rrto_ros.bench import harness


def csv(value: str, known: tuple) -> list:
    items = [x for x in value.split(',') if x]
    bad = [x for x in items if x not in known]
    if bad or not items:
        raise argparse.ArgumentTypeError(f'{value!r}: choose from {", ".join(known)}')
    return items


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--backend', choices=('cuda', 'emu'), default='cuda')
    ap.add_argument('--inferences', type=int, default=100, help='per program run')
    ap.add_argument('--warmup', type=int, default=10,
                    help='first inferences excluded from the statistics')
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--modes', type=lambda v: csv(v, harness.MODES),
                    default=list(harness.MODES), help=','.join(harness.MODES))
    ap.add_argument('--links', type=lambda v: csv(v, harness.LINKS),
                    default=list(harness.LINKS), help=','.join(harness.LINKS))
    ap.add_argument('--examples', type=pathlib.Path, default=ROOT / 'build' / 'examples')
    ap.add_argument('--out', type=pathlib.Path, required=True, help='JSON; the PNG goes '
                    'next to it')
    ap.add_argument('--no-plot', action='store_true', help='skip the PNG')
    ap.add_argument('--security', choices=('open', 'curve'), default='open',
                    help='of the link: open, or curve (keys made for the run); the replay '
                    'lane is encrypted either way')
    a = ap.parse_args()
    cfg = harness.Config(a.backend, a.examples / 'cnn_infer', ROOT, a.inferences, a.warmup,
                         a.seed, security=a.security)
    try:
        cfg.validate()
    except ValueError as e:
        ap.error(str(e))
    if not cfg.exe.is_file():
        ap.error(f'{cfg.exe} not found: run `make examples`')
    t0 = time.time()
    bench = harness.Bench(cfg, progress=lambda m: print(m, flush=True))
    try:
        rows = bench.run_all(a.modes, a.links)
    finally:
        bench.close()
    result = {
        'command': 'python ' + ' '.join(shlex.quote(x) for x in sys.argv),
        'date': time.strftime('%Y-%m-%d %H:%M'),
        'device': harness.device_name(a.backend),
        'backend': a.backend,
        'security': a.security,
        'program': f'build/examples/cnn_infer {a.inferences} {a.seed}',
        'inferences': a.inferences,
        'warmup': a.warmup,
        'steady_state': harness.steady_state_note(cfg),
        'latency': 'per inference, as the app sees it: cnn_infer with CNN_INFER_TIMING=1 '
                   'times input copy in to result copy out; offload: image sent to scores '
                   'received, in the robot-side driver',
        'links': harness.links_description(a.links),
        'energy_model': {'formula': energy.FORMULA,
                         'power_w': {'inference': energy.PAPER.inference_w,
                                     'communication': energy.PAPER.communication_w,
                                     'standby': energy.PAPER.standby_w},
                         'compute_s_per_inference': bench.compute_s,
                         'note': "local runs on this machine's GPU, not a robot's: its "
                                 "energy is that of a robot with this GPU drawing Table I's "
                                 'inference power'},
        'results': rows,
        'targets': harness.targets(rows),
        'call_histogram': bench.histogram,
        'wall_s': round(time.time() - t0, 1),
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=2) + '\n')
    print(f'wrote {a.out}')
    print('targets: ' + json.dumps(result['targets'], indent=1))
    head, body = harness.summary_table(rows)
    widths = [max(len(x) for x in col) for col in zip(head, *body)]
    for line in [head] + body:
        print('  '.join(x.ljust(w) for x, w in zip(line, widths)))
    if not a.no_plot:
        try:
            from rrto_ros.bench.plot import plot_modes
            png = a.out.with_suffix('.png')
            plot_modes(result, png)
            print(f'wrote {png}')
        except ImportError as e:
            print(f'no plot ({e}): pip install matplotlib', file=sys.stderr)
    return 0 if all(r['status'] != 'error' for r in rows) else 1


if __name__ == '__main__':
    sys.exit(main())
