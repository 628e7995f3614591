# Copyright 2026 rrto_ros authors. Apache-2.0.
"""The README's demo: an edge server and a robot client on this machine, and an unmodified
CUDA program (the CNN example) whose GPU work runs on the server.

Uses the ``cuda`` backend when this machine has a GPU, else ``emu``.
"""

from __future__ import annotations

import argparse
import logging
import pathlib
import subprocess
import sys
import time
from typing import List, Optional

from rrto_ros.server.server import default_backend
from rrto_ros.stack import LocalStack

ROOT = pathlib.Path(__file__).resolve().parent.parent


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--backend', choices=('auto', 'cuda', 'emu'), default='auto')
    ap.add_argument('--mode', choices=('rpc', 'pipelined'), default='pipelined')
    ap.add_argument('--inferences', type=int, default=20)
    ap.add_argument('--program', default=str(ROOT / 'build' / 'examples' / 'cnn_infer'))
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='[%(name)s] %(message)s')
    backend = default_backend() if a.backend == 'auto' else a.backend
    if not pathlib.Path(a.program).is_file():
        print(f'demo: {a.program} is missing; build it with `make examples`', file=sys.stderr)
        return 2
    print(f'demo: edge server ({backend} backend) and robot client on this machine; '
          f'running {pathlib.Path(a.program).name} for {a.inferences} inferences, '
          f'mode {a.mode}', flush=True)
    with LocalStack(backend, a.mode, server_process=True) as stack:
        t0 = time.perf_counter()
        proc = subprocess.Popen([a.program, str(a.inferences)], env=stack.env(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        for line in proc.stdout:
            print(f'  app: {line.rstrip()}', flush=True)
        err = proc.stderr.read() if proc.stderr else ''
        rc = proc.wait()
        wall = time.perf_counter() - t0
        stack.client.wait_idle(5)
        s = stack.last_session()
    if err.strip():
        print(err.rstrip(), file=sys.stderr)
    n = a.inferences
    print('demo summary:')
    print(f'  inferences          {n}')
    print(f'  results correct     {"yes" if rc == 0 else "NO (exit code %d)" % rc}')
    print(f'  CUDA calls          {s.get("agent_calls", 0)} from the app, '
          f'{s.get("forwarded_calls", 0)} sent to the server')
    print(f'  blocking round trips {s.get("blocking_round_trips", 0)} '
          f'({s.get("blocking_round_trips", 0) / max(n, 1):.1f} per inference incl. set-up)')
    print(f'  wall time           {wall:.2f} s ({1000 * wall / max(n, 1):.1f} ms per inference '
          'incl. set-up)')
    return rc


if __name__ == '__main__':
    sys.exit(main())
