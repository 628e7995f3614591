# Copyright 2026 rrto_ros authors. Apache-2.0.
"""``rrto-trace -- app args``: run an app on the local GPU and print which CUDA runtime
functions it calls, how often (the paper's Table II)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from typing import Dict, List, Optional

from rrto_ros.client.launcher import interposed_env


def read_counts(path: str) -> Dict[str, int]:
    """Call counts from the interposer's RRTO_TRACE_FILE ({} when it wrote none)."""
    counts: Dict[str, int] = {}
    if not os.path.exists(path):
        return counts
    with open(path) as f:
        for line in f:
            name, _, n = line.rstrip('\n').partition('\t')
            if name and n.isdigit():
                counts[name] = counts.get(name, 0) + int(n)
    return counts


def format_histogram(counts: Dict[str, int], top: int = 40) -> str:
    total = sum(counts.values()) or 1
    rows = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    width = max([len(k) for k, _ in rows[:top]] + [8])
    out = [f'{"CUDA runtime call":<{width}}  {"calls":>9}  share']
    for name, n in rows[:top]:
        out.append(f'{name:<{width}}  {n:>9}  {100.0 * n / total:5.1f}%')
    if len(rows) > top:
        out.append(f'... {len(rows) - top} more functions')
    out.append(f'{"total":<{width}}  {sum(counts.values()):>9}')
    return '\n'.join(out)


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        description="Run an app on this machine's GPU (no offloading) with the interposer "
        'in pass-through mode and print which CUDA runtime functions it calls, how often '
        "(the paper's Table II). The app must link the CUDA runtime dynamically.",
        epilog='example: rrto-trace --top 20 -- python3 infer.py --camera 0',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument('--top', type=int, default=40, help='functions listed, most called first')
    ap.add_argument('--out', help='also write the counts as "name<TAB>count" lines here')
    ap.add_argument('command', nargs=argparse.REMAINDER,
                    help='the app and its arguments, after --')
    return ap


def main(argv: Optional[List[str]] = None) -> int:
    ap = parser()
    a = ap.parse_args(argv)
    cmd = a.command[1:] if a.command[:1] == ['--'] else a.command
    if not cmd:
        ap.error('give the app to trace after --, e.g. rrto-trace -- python3 app.py')
    from rrto_ros.server.backend import probe_gpu
    gpu = probe_gpu()
    if not gpu.ok:
        print(f"[rrto] rrto-trace: no GPU to trace on here: {gpu.reason}. The app's CUDA "
              'calls will fail at the first one that needs the GPU; run rrto-trace where '
              'the app normally runs on a local GPU.', file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        path = a.out or os.path.join(tmp, 'counts.tsv')
        if os.path.exists(path):
            os.unlink(path)
        # Every process of the app appends its counts at exit (children inherit the env).
        rc = subprocess.call(cmd, env=interposed_env('', trace_file=path))
        counts = read_counts(path)
    print(format_histogram(counts, a.top) if counts else
          'rrto-trace: the app made no CUDA runtime calls through libcudart', file=sys.stderr)
    return rc


if __name__ == '__main__':
    sys.exit(main())
