# Copyright 2026 rrto_ros authors. Apache-2.0.
"""``rrto-kapao-convert KAPAO.pt OUT.pt``: turn a KAPAO checkpoint (kapao_s_coco.pt ...) into
our weights file without importing any KAPAO code; see ``rrto_ros.tracking.checkpoint``."""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from rrto_ros.tracking.checkpoint import CheckpointError, convert


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(
        prog='rrto-kapao-convert',
        description='Convert a KAPAO-S/M/L COCO checkpoint into the weights file that the '
                    'rrto_ros pose estimator loads (its `weights` parameter). The checkpoint '
                    'is read with a restricted unpickler: no code from it runs.')
    p.add_argument('checkpoint', help="KAPAO's .pt file, e.g. kapao_s_coco.pt")
    p.add_argument('output', help='where to write our weights file, e.g. kapao_s.pt')
    args = p.parse_args(argv)
    try:
        w = convert(args.checkpoint, args.output)
    except CheckpointError as e:
        print(f'rrto-kapao-convert: {e}', file=sys.stderr)
        return 2
    n = sum(t.numel() for t in w.state_dict.values())
    print(f'{w.description}: {len(w.state_dict)} tensors, {n / 1e6:.1f} M values, '
          f'BN eps {w.bn_eps:g} -> {args.output}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
