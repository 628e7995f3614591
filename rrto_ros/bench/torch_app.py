# Copyright 2026 rrto_ros authors. Apache-2.0.
"""An unmodified PyTorch inference program for the PyTorch benchmark (issue 10): builds a
model with fixed random weights, runs it ``n`` times on one fixed input, and reports.

    python -m rrto_ros.bench.torch_app MODEL SIZE N [--cudnn on|off] [--out FILE]

MODEL: resnet18, mobilenet_v3_large (torchvision), kapao_s (our KAPAO-S, the YOLOv5s6
shape), mlp (4 x Linear). Each inference is ``y = model(x.cuda()).cpu()`` under no_grad,
timed on the host (stderr: ``torch_app: timing infer I US us``). The last output's bytes are
written to FILE (.npy) and their SHA-256 printed, so runs compare bit for bit. Nothing here
knows about rrto: it is the program a user would run.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time

import numpy as np
import torch
from torch import nn

MODELS = ('resnet18', 'mobilenet_v3_large', 'kapao_s', 'mlp')


def build(name: str) -> nn.Module:
    torch.manual_seed(0)
    if name == 'resnet18':
        from torchvision.models import resnet18
        return resnet18()
    if name == 'mobilenet_v3_large':
        from torchvision.models import mobilenet_v3_large
        return mobilenet_v3_large()
    if name == 'kapao_s':
        from rrto_ros.tracking.kapao_model import build_kapao
        return build_kapao('s')
    if name == 'mlp':
        return nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 512), nn.ReLU(),
                             nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(),
                             nn.Linear(256, 10))
    raise SystemExit(f'unknown model {name!r}; one of {", ".join(MODELS)}')


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('model', choices=MODELS)
    ap.add_argument('size', type=int, help='input height and width (mlp: 32)')
    ap.add_argument('n', type=int, help='inferences')
    ap.add_argument('--cudnn', choices=('on', 'off'), default='on')
    ap.add_argument('--out', help='write the last output here (.npy)')
    a = ap.parse_args(argv)
    torch.backends.cudnn.enabled = a.cudnn == 'on'
    t0 = time.perf_counter()
    model = build(a.model).eval().cuda()
    g = torch.Generator().manual_seed(1)
    x = torch.rand(1, 3, a.size, a.size, generator=g)
    print(f'torch_app: model ready in {time.perf_counter() - t0:.3f} s', file=sys.stderr)
    y = None
    with torch.no_grad():
        for i in range(a.n):
            t = time.perf_counter()
            y = model(x.cuda())
            y = (y[0] if isinstance(y, (tuple, list)) else y).cpu()
            print(f'torch_app: timing infer {i} {(time.perf_counter() - t) * 1e6:.1f} us',
                  file=sys.stderr, flush=True)
    out = y.numpy()
    if a.out:
        np.save(a.out, out)
    print(f'output {tuple(out.shape)} sha256 {hashlib.sha256(out.tobytes()).hexdigest()}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
