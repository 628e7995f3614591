# Copyright 2026 rrto_ros authors. Apache-2.0.
"""Summarise the runs of ``bench/ab_replay.sh`` (replay at ``edge``, two builds interleaved)
into one JSON: per run the replay latency, the physical floor and their ratio.

    python bench/ab_summary.py DIR [--command ...] [--out DIR/ab_summary.json]
"""

from __future__ import annotations

import argparse
import json
import pathlib
import re
import statistics
import sys


def summarise(folder: pathlib.Path) -> dict:
    runs = []
    for f in sorted(folder.glob('ab_*_*.json')):
        m = re.fullmatch(r'ab_(base|new)_(\d+)\.json', f.name)
        if not m:
            continue
        d = json.loads(f.read_text())
        by = {r['mode']: r for r in d['results']}
        t = d['targets']['edge']
        runs.append({'build': m.group(1), 'round': int(m.group(2)),
                     'replay_ms_p50': t['replay_ms_p50'],
                     'replay_ms_p95': by['replay']['latency_ms_p95'],
                     'local_ms_p50': by['local']['latency_ms_p50'],
                     'floor_ms': t['floor_ms'], 'replay_over_floor': t['replay_over_floor'],
                     'identical_to_native': by['replay']['identical_to_native'],
                     'device': d['device']})
    out = {'runs': runs, 'median_replay_over_floor': {}}
    for build in ('base', 'new'):
        ratios = [r['replay_over_floor'] for r in runs if r['build'] == build]
        if ratios:
            out['median_replay_over_floor'][build] = statistics.median(ratios)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('folder', type=pathlib.Path)
    ap.add_argument('--command', default='')
    ap.add_argument('--out', type=pathlib.Path)
    a = ap.parse_args()
    result = {'command': a.command, **summarise(a.folder)}
    out = a.out or a.folder / 'ab_summary.json'
    out.write_text(json.dumps(result, indent=2) + '\n')
    print(json.dumps(result['median_replay_over_floor']))
    return 0


if __name__ == '__main__':
    sys.exit(main())
