# Copyright 2026 rrto_ros authors. Apache-2.0.
"""Summarise the runs of ``bench/ab_replay.sh`` (replay at ``edge``, two builds interleaved)
into one JSON: per run the replay latency, the physical floor and their ratio (cuda; emu has
no native run, hence no floor), and per build the medians, with new over base.

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
        by = {(r['mode'], r['link']): r for r in d['results']}
        replay = by[('replay', 'edge')]
        local = next((r for r in d['results'] if r['mode'] == 'local'), None)
        t = d['targets'].get('edge', {})
        runs.append({'build': m.group(1), 'round': int(m.group(2)),
                     'replay_ms_p50': replay['latency_ms_p50'],
                     'replay_ms_p95': replay['latency_ms_p95'],
                     'bytes_per_inference': replay['bytes_per_inference'],
                     'local_ms_p50': local['latency_ms_p50'] if local else None,
                     'floor_ms': t.get('floor_ms'),
                     'replay_over_floor': t.get('replay_over_floor'),
                     'identical_to_native': replay['identical_to_native'],
                     'device': d['device']})
    out = {'runs': runs, 'median_replay_ms_p50': {}, 'median_replay_over_floor': {}}
    for build in ('base', 'new'):
        mine = [r for r in runs if r['build'] == build]
        if mine:
            out['median_replay_ms_p50'][build] = statistics.median(
                r['replay_ms_p50'] for r in mine)
        ratios = [r['replay_over_floor'] for r in mine if r['replay_over_floor'] is not None]
        if ratios:
            out['median_replay_over_floor'][build] = statistics.median(ratios)
    med = out['median_replay_ms_p50']
    if 'base' in med and 'new' in med:
        out['new_over_base'] = round(med['new'] / med['base'], 4)
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
    print(json.dumps({k: result.get(k) for k in ('median_replay_ms_p50',
                      'median_replay_over_floor', 'new_over_base')}))
    return 0


if __name__ == '__main__':
    sys.exit(main())
