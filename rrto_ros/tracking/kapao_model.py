# Copyright 2026 rrto_ros authors. Apache-2.0.
"""The KAPAO-S/M/L networks (YOLOv5s6/m6/l6-shaped P6 models), written for this project.

Topology (the published one): a space-to-depth stem, four stride-2 convolutions each
followed by a CSP block (C3), a spatial pyramid pool (max pools 3, 5, 7) at P6, then a
top-down path (1x1 lateral conv, nearest x2 upsample, concat, CSP) to P3 and a bottom-up
path (3x3 stride-2 conv, concat, CSP) back to P6, and a head of four 1x1 convolutions with
``NUM_ANCHORS`` x ``NUM_OUTPUTS`` channels. Every convolution but the head's is
Conv2d + BatchNorm + SiLU. Sizes differ only in width and depth multiples.

``forward`` returns the head's RAW output, before the sigmoid, as one (B, N, 57) tensor,
levels P3..P6 one after the other, each ordered anchor, grid row, grid column; decoding is
numpy post-processing (``kapao_decode``), so the GPU program ends with one copy to the host.
"""

from __future__ import annotations

import copy
import math
from typing import Dict, List, Sequence, Tuple

import torch
from torch import nn

from rrto_ros.tracking.kapao_decode import (DEFAULT_ANCHORS, NUM_ANCHORS, NUM_OUTPUTS,
                                            STRIDES)

# size -> (depth multiple, width multiple), KAPAO's yolov5{s,m,l}6 configs.
SIZES: Dict[str, Tuple[float, float]] = {'s': (0.33, 0.50), 'm': (0.67, 0.75), 'l': (1.0, 1.0)}
BN_EPS = 1e-3      # the BatchNorm epsilon YOLOv5-style training sets
BN_MOMENTUM = 0.03


class ConvBnAct(nn.Module):
    """Conv2d (no bias, 'same' padding) + BatchNorm2d + SiLU; after ``fuse_conv_bn`` the
    conv carries the folded BN (with a bias) and ``bn`` is an identity."""

    def __init__(self, c_in: int, c_out: int, k: int = 1, s: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, k, s, k // 2, bias=False)
        self.bn: nn.Module = nn.BatchNorm2d(c_out, eps=BN_EPS, momentum=BN_MOMENTUM)
        self.act = nn.SiLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class SpaceToDepthStem(nn.Module):
    """Every 2x2 pixel block into channels (the four phases, top-left, bottom-left,
    top-right, bottom-right), then a 3x3 conv: half resolution, no information lost."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv = ConvBnAct(4 * c_in, c_out, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        phases = (x[..., 0::2, 0::2], x[..., 1::2, 0::2], x[..., 0::2, 1::2], x[..., 1::2, 1::2])
        return self.conv(torch.cat(phases, 1))


class Residual(nn.Module):
    """1x1 then 3x3 conv, plus the input when ``shortcut``."""

    def __init__(self, c: int, shortcut: bool) -> None:
        super().__init__()
        self.reduce = ConvBnAct(c, c, 1)
        self.expand = ConvBnAct(c, c, 3)
        self.shortcut = shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.expand(self.reduce(x))
        return x + y if self.shortcut else y


class CSPBlock(nn.Module):
    """Cross-stage partial block (C3): half the channels go through ``n`` residual blocks,
    half skip them, and a 1x1 conv merges both."""

    def __init__(self, c_in: int, c_out: int, n: int, shortcut: bool = True) -> None:
        super().__init__()
        hidden = c_out // 2
        self.main_in = ConvBnAct(c_in, hidden, 1)
        self.skip_in = ConvBnAct(c_in, hidden, 1)
        self.blocks = nn.Sequential(*(Residual(hidden, shortcut) for _ in range(n)))
        self.merge = ConvBnAct(2 * hidden, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.merge(torch.cat((self.blocks(self.main_in(x)), self.skip_in(x)), 1))


class PyramidPool(nn.Module):
    """Spatial pyramid pooling: 1x1 conv, the map and its max pools (stride 1) concatenated,
    1x1 conv."""

    def __init__(self, c_in: int, c_out: int, kernels: Sequence[int] = (3, 5, 7)) -> None:
        super().__init__()
        hidden = c_in // 2
        self.reduce = ConvBnAct(c_in, hidden, 1)
        self.pools = nn.ModuleList(nn.MaxPool2d(k, 1, k // 2) for k in kernels)
        self.merge = ConvBnAct(hidden * (len(kernels) + 1), c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.reduce(x)
        return self.merge(torch.cat([x] + [p(x) for p in self.pools], 1))


class KapaoHead(nn.Module):
    """Four 1x1 output convs. ``anchors`` (levels, anchors, 2) is w, h in input pixels and
    belongs to the weights (a trained checkpoint brings its own); decode uses it."""

    def __init__(self, channels: Sequence[int]) -> None:
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(c, NUM_ANCHORS * NUM_OUTPUTS, 1) for c in channels)
        self.register_buffer('anchors', torch.tensor(DEFAULT_ANCHORS, dtype=torch.float32))

    def forward(self, feats: List[torch.Tensor]) -> torch.Tensor:
        out = []
        for conv, f in zip(self.convs, feats):
            y = conv(f)
            b, _, ny, nx = y.shape
            y = y.view(b, NUM_ANCHORS, NUM_OUTPUTS, ny, nx).permute(0, 1, 3, 4, 2)
            out.append(y.reshape(b, NUM_ANCHORS * ny * nx, NUM_OUTPUTS))
        return torch.cat(out, 1)


def _width(c: int, multiple: float) -> int:
    return int(math.ceil(c * multiple / 8) * 8)


def _depth(n: int, multiple: float) -> int:
    return max(round(n * multiple), 1) if n > 1 else n


class KapaoNet(nn.Module):
    """One KAPAO network; see the module docstring. Input (B, 3, H, W), H and W multiples
    of 64, RGB in [0, 1]."""

    def __init__(self, size: str = 's') -> None:
        super().__init__()
        if size not in SIZES:
            raise ValueError(f'unknown KAPAO size {size!r}: choose one of {sorted(SIZES)}')
        self.size = size
        gd, gw = SIZES[size]
        c1, c2, c3, c4, c5, c6 = (_width(c, gw) for c in (64, 128, 256, 512, 768, 1024))
        n3, n9 = _depth(3, gd), _depth(9, gd)
        # Backbone: P1 (stride 2) .. P6 (stride 64).
        self.stem = SpaceToDepthStem(3, c1)
        self.down2, self.csp2 = ConvBnAct(c1, c2, 3, 2), CSPBlock(c2, c2, n3)
        self.down3, self.csp3 = ConvBnAct(c2, c3, 3, 2), CSPBlock(c3, c3, n9)
        self.down4, self.csp4 = ConvBnAct(c3, c4, 3, 2), CSPBlock(c4, c4, n9)
        self.down5, self.csp5 = ConvBnAct(c4, c5, 3, 2), CSPBlock(c5, c5, n3)
        self.down6 = ConvBnAct(c5, c6, 3, 2)
        self.pool6 = PyramidPool(c6, c6)
        self.csp6 = CSPBlock(c6, c6, n3, shortcut=False)
        # Top-down path.
        self.lat6, self.td5 = ConvBnAct(c6, c5, 1), CSPBlock(2 * c5, c5, n3, False)
        self.lat5, self.td4 = ConvBnAct(c5, c4, 1), CSPBlock(2 * c4, c4, n3, False)
        self.lat4, self.out3 = ConvBnAct(c4, c3, 1), CSPBlock(2 * c3, c3, n3, False)
        # Bottom-up path.
        self.bu3, self.out4 = ConvBnAct(c3, c3, 3, 2), CSPBlock(2 * c3, c4, n3, False)
        self.bu4, self.out5 = ConvBnAct(c4, c4, 3, 2), CSPBlock(2 * c4, c5, n3, False)
        self.bu5, self.out6 = ConvBnAct(c5, c5, 3, 2), CSPBlock(2 * c5, c6, n3, False)
        self.up = nn.Upsample(scale_factor=2, mode='nearest')
        self.head = KapaoHead((c3, c4, c5, c6))
        self.strides = STRIDES

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != 3 or x.shape[2] % 64 or x.shape[3] % 64:
            raise ValueError(f'KAPAO needs a (B, 3, H, W) input with H and W multiples of 64, '
                             f'got {tuple(x.shape)}; letterbox the frame first')
        p3 = self.csp3(self.down3(self.csp2(self.down2(self.stem(x)))))
        p4 = self.csp4(self.down4(p3))
        p5 = self.csp5(self.down5(p4))
        p6 = self.csp6(self.pool6(self.down6(p5)))
        l6 = self.lat6(p6)
        l5 = self.lat5(self.td5(torch.cat((self.up(l6), p5), 1)))
        l4 = self.lat4(self.td4(torch.cat((self.up(l5), p4), 1)))
        o3 = self.out3(torch.cat((self.up(l4), p3), 1))
        o4 = self.out4(torch.cat((self.bu3(o3), l4), 1))
        o5 = self.out5(torch.cat((self.bu4(o4), l5), 1))
        o6 = self.out6(torch.cat((self.bu5(o5), l6), 1))
        return self.head([o3, o4, o5, o6])


def build_kapao(size: str = 's') -> KapaoNet:
    """A KAPAO network of ``size`` 's', 'm' or 'l' with PyTorch's default initialisation
    (seed torch's RNG first for reproducible weights)."""
    return KapaoNet(size)


def fuse_conv_bn(model: nn.Module, inplace: bool = False) -> nn.Module:
    """Fold every ``ConvBnAct``'s BatchNorm into its conv (inference only: uses the running
    statistics). Returns a copy unless ``inplace``; the outputs equal the unfused model's
    in eval mode up to float rounding."""
    if not inplace:
        model = copy.deepcopy(model)
    for m in model.modules():
        if isinstance(m, ConvBnAct) and isinstance(m.bn, nn.BatchNorm2d):
            m.conv = _fold(m.conv, m.bn)
            m.bn = nn.Identity()
    return model


@torch.no_grad()
def _fold(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    fused = copy.copy(conv)  # same hyper-parameters; its parameters are replaced below
    fused._parameters = dict(conv._parameters)
    fused.weight = nn.Parameter(conv.weight * scale.view(-1, 1, 1, 1), requires_grad=False)
    fused.bias = nn.Parameter((bias - bn.running_mean) * scale + bn.bias, requires_grad=False)
    return fused


def count_layers(model: nn.Module) -> Dict[str, int]:
    """How many of each layer type the network has (compare with the published counts)."""
    kinds = {'conv2d': nn.Conv2d, 'silu': nn.SiLU, 'maxpool': nn.MaxPool2d}
    out = {k: sum(isinstance(m, t) for m in model.modules()) for k, t in kinds.items()}
    out['residual_add'] = sum(isinstance(m, Residual) and m.shortcut for m in model.modules())
    return out
