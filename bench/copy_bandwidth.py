# Copyright 2026 rrto_ros authors. Apache-2.0.
"""Bulk copy bandwidth: blocking cudaMemcpy to and from the device, 1 MiB .. 256 MiB, under
the interposer (mode pipelined), on loopback and through the `edge` link emulator.

    python bench/copy_bandwidth.py --backend emu --out bench/results/copy_bandwidth_emu.json
    python bench/copy_bandwidth.py --backend cuda --out bench/results/copy_bandwidth_gpu.json

`loopback` is the direct connection on 127.0.0.1 (the emulator's own `loopback` profile
measures its Python proxy); `edge` goes through rrto_ros.bench.link (Wi-Fi 6: 450 Mbit/s,
2.6 ms RTT), where `link_fraction` is the achieved share of its bandwidth. With --backend
cuda the same program also runs natively for reference (needs the local GPU). The program
(bench/c/copy_bandwidth.c) checks the bytes it gets back; a wrong byte fails the run.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import shlex
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional

from forwarding import build_roundtrip, device_name  # noqa: I100 (puts the root on the path)

from rrto_ros.bench.link import get_profile  # noqa: E402
from rrto_ros.stack import LocalStack  # noqa: E402

SIZES_MIB = [1, 2, 4, 8, 16, 32, 64, 128, 256]


def measure(exe: pathlib.Path, sizes: List[int], reps: int, pinned: bool,
            stack: Optional[LocalStack]) -> List[Dict]:
    cmd = [str(exe), '--reps', str(reps)] + (['--pinned'] if pinned else []) + \
        [str(s) for s in sizes]
    if stack is None:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    else:
        r = stack.run(cmd, timeout=3600)
    if r.returncode != 0:
        raise RuntimeError(f'{exe.name} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}')
    return [json.loads(line) for line in r.stdout.splitlines() if line.startswith('{')]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--backend', choices=('cuda', 'emu'), default='emu')
    ap.add_argument('--links', default='loopback,edge')
    ap.add_argument('--mode', default='pipelined', choices=('rpc', 'pipelined', 'replay'))
    ap.add_argument('--sizes', default=','.join(map(str, SIZES_MIB)), help='MiB, commas')
    ap.add_argument('--reps', type=int, default=5, help='per size on loopback (edge: 1)')
    ap.add_argument('--pinned', action='store_true', help='cudaMallocHost host buffers')
    ap.add_argument('--out', type=pathlib.Path, required=True)
    a = ap.parse_args()
    sizes = [int(s) for s in a.sizes.split(',')]
    exe = build_roundtrip(pathlib.Path(tempfile.mkdtemp(prefix='rrto-bench-')),
                          'copy_bandwidth')
    rows: List[Dict] = []

    def add(link: str, runs: List[Dict], bandwidth_bps: float = 0.0) -> None:
        for r in runs:
            gbs = r['bytes'] / r['best_s'] / 1e9
            row = {'link': link, 'direction': r['direction'], 'mib': r['bytes'] >> 20,
                   'reps': r['reps'], 'best_s': r['best_s'], 'median_s': r['median_s'],
                   'gb_per_s': round(gbs, 3),
                   'gb_per_s_median': round(r['bytes'] / r['median_s'] / 1e9, 3)}
            if bandwidth_bps:
                row['link_fraction'] = round(8 * gbs * 1e9 / bandwidth_bps, 3)
            rows.append(row)
            print(json.dumps(row), flush=True)

    if a.backend == 'cuda':
        add('native', measure(exe, sizes, a.reps, a.pinned, None))
    for link in a.links.split(','):
        emulated = None if link == 'loopback' else link
        with LocalStack(a.backend, a.mode, server_process=True, link=emulated) as stack:
            add(link, measure(exe, sizes, a.reps if link == 'loopback' else 1, a.pinned,
                              stack), get_profile(link).bandwidth_bps)
    result = {'device': device_name(a.backend), 'backend': a.backend, 'mode': a.mode,
              'host_memory': 'pinned' if a.pinned else 'pageable',
              'command': 'python ' + ' '.join(shlex.quote(x) for x in sys.argv),
              'date': time.strftime('%Y-%m-%d'),
              'note': 'gb_per_s from the best of reps blocking cudaMemcpy calls (timed in the '
                      'app); loopback = direct 127.0.0.1, edge = the link emulator; '
                      'link_fraction = achieved / link bandwidth',
              'rows': rows}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=2) + '\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
