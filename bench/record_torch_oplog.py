# Copyright 2026 rrto_ros authors. Apache-2.0.
"""Record the operator log of a PyTorch inference program under the interposer (issue 10's
CI evidence: the search and replay table tested on a real inference's log).

    python bench/record_torch_oplog.py --backend cuda --out test/data/torch_resnet18_gpu.oplog \\
        resnet18:224:off -n 5

Runs ``rrto_ros.bench.torch_app`` (MODEL:SIZE:CUDNN, ``n`` inferences) against a local
server in mode ``pipelined`` (every call is forwarded, so every call is logged) and writes
the session's calls (``record/oplog_file.py``). With ``--backend emu`` the server needs
``RRTO_EMU_UNKNOWN_KERNELS=skip`` (test scaffolding: PyTorch's kernels as no-ops), which
this script sets for its in-process server.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rrto_ros.record import oplog_file  # noqa: E402
from rrto_ros.stack import LocalStack  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('config', help='MODEL:SIZE:CUDNN, e.g. resnet18:224:off')
    ap.add_argument('--backend', choices=('cuda', 'emu'), default='cuda')
    ap.add_argument('--out', required=True)
    ap.add_argument('-n', type=int, default=5, help='inferences (>= 4 for record_window 3)')
    ap.add_argument('--python', default=sys.executable, help='an interpreter with torch')
    a = ap.parse_args()
    model, size, cudnn = a.config.split(':')
    out = os.path.abspath(a.out)
    if a.backend == 'emu':
        os.environ['RRTO_EMU_UNKNOWN_KERNELS'] = 'skip'
    os.environ[oplog_file.ENV] = out        # read by the in-process client node
    cmd = [a.python, '-m', 'rrto_ros.bench.torch_app', model, size, str(a.n),
           '--cudnn', cudnn]
    with LocalStack(backend=a.backend, mode='pipelined') as stack:
        r = stack.run(cmd, timeout=900)
    sys.stderr.write(r.stderr[-2000:])
    if r.returncode:
        print(f'the app failed ({r.returncode}); no log kept', file=sys.stderr)
        return 1
    head, calls = oplog_file.load(out)
    print(f'{out}: {len(calls)} calls of {head["app"]} ({a.config}, {a.n} inferences, '
          f'backend {a.backend})')
    return 0


if __name__ == '__main__':
    sys.exit(main())
