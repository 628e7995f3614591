# Copyright 2026 rrto_ros authors. Apache-2.0.
"""The modes benchmark's figure: per link, one bar per mode (latency p50, p95 as a tick),
blocking round trips and energy per inference; log scales. Needs matplotlib."""

from __future__ import annotations

import pathlib
from typing import Dict, List, Optional, Sequence

COLOURS = {'local': '#4d4d4d', 'rpc': '#d62728', 'pipelined': '#ff7f0e', 'replay': '#2ca02c',
           'offload': '#1f77b4'}


def _value(rows: Sequence[Dict], mode: str, link: str, key: str) -> Optional[float]:
    for r in rows:
        if r['mode'] == mode and r['link'] == link and r['status'] == 'ok':
            v = r.get(key)
            return float(v) if v is not None else None
    return None


def plot_modes(result: Dict, path: pathlib.Path) -> None:
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib.patches import Patch
    import matplotlib.pyplot as plt

    rows: List[Dict] = result['results']
    modes = list(dict.fromkeys(r['mode'] for r in rows))
    links = list(dict.fromkeys(r['link'] for r in rows))
    panels = [('latency_ms_p50', 'latency per inference (ms)\nbar p50, tick p95'),
              ('blocking_round_trips_per_inference', 'blocking round trips\nper inference'),
              ('energy_j_per_inference', 'robot energy per\ninference (J)')]
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.4))
    width = 0.8 / max(1, len(modes))
    for ax, (key, label) in zip(axes, panels):
        for i, mode in enumerate(modes):
            xs, ys, p95 = [], [], []
            for j, link in enumerate(links):
                x = j + (i - (len(modes) - 1) / 2) * width
                v = _value(rows, mode, link, key)
                if v is None or v <= 0:   # nothing to draw on a log scale: say why
                    status = next((r['status'] for r in rows
                                   if r['mode'] == mode and r['link'] == link), '')
                    word = 'err' if status == 'error' else '0' if v == 0 else 'n/a'
                    ax.text(x, 0.02, word, transform=ax.get_xaxis_transform(), ha='center',
                            fontsize=6, rotation=90, color=COLOURS.get(mode, 'k'))
                    continue
                xs.append(x)
                ys.append(v)
                p95.append(_value(rows, mode, link, 'latency_ms_p95'))
            ax.bar(xs, ys, width * 0.95, label=mode, color=COLOURS.get(mode))
            if key == 'latency_ms_p50':
                tick = [(x, p) for x, p in zip(xs, p95) if p]
                ax.scatter([x for x, _ in tick], [p for _, p in tick], marker='_', s=80,
                           color='k', zorder=3)
        ax.set_yscale('log')
        shown = [v for m in modes for li in links
                 for v in [_value(rows, m, li, key)] if v is not None and v > 0]
        if key == 'latency_ms_p50':
            shown += [v for m in modes for li in links
                      for v in [_value(rows, m, li, 'latency_ms_p95')] if v]
        if shown:    # bars on a log scale start at the bottom: put it below every value
            ax.set_ylim(min(shown) / 3.0, max(shown) * 2.0)
        ax.set_xticks(range(len(links)))
        ax.set_xticklabels(links)
        ax.set_ylabel(label)
        ax.grid(axis='y', which='both', alpha=0.3)
    axes[0].legend(handles=[Patch(color=COLOURS.get(m, 'k'), label=m) for m in modes],
                   fontsize=8)
    fig.text(0.5, 0.01, 'n/a: not run (skipped, e.g. no native CUDA); err: the mode failed '
             '(see the JSON)', ha='center', fontsize=7)
    fig.suptitle(f'{result.get("program", "cnn_infer")} on {result.get("device", "?")}\n'
                 f'steady state: {result.get("inferences")} inferences, first '
                 f'{result.get("warmup")} excluded', fontsize=9)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> int:
    """Plot a results file after the fact: ``python -m rrto_ros.bench.plot RESULT.json``
    (e.g. when the machine that measured had no matplotlib)."""
    import argparse
    import json
    ap = argparse.ArgumentParser(description=main.__doc__.splitlines()[0])
    ap.add_argument('result', type=pathlib.Path)
    ap.add_argument('--out', type=pathlib.Path, help='PNG path (default: next to the JSON)')
    a = ap.parse_args()
    plot_modes(json.loads(a.result.read_text()), a.out or a.result.with_suffix('.png'))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
