# Copyright 2026 rrto_ros authors. Apache-2.0.
"""The KAPAO networks on CPU torch: topology counts, output shapes, row order, BN folding."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip('torch')

from rrto_ros.tracking.kapao_decode import head_layout, NUM_OUTPUTS  # noqa: E402
from rrto_ros.tracking.kapao_model import build_kapao, count_layers, fuse_conv_bn  # noqa: E402

# Layer counts worked out from KAPAO's yolov5{s,m,l}6 configs (shared/notes/kapao-facts.md)
# and the published parameter counts of YOLOv5s6/m6/l6 (80 classes; KAPAO's head has 171
# instead of 255 output channels per level, about 0.1-0.2 M fewer parameters).
PUBLISHED = {'s': (81, 77, 8, 12.6e6), 'm': (111, 107, 16, 35.7e6), 'l': (141, 137, 24, 76.8e6)}


def meta_model(size):
    with torch.device('meta'):
        return build_kapao(size)


@pytest.fixture(scope='module')
def small_s():
    torch.manual_seed(1)
    m = build_kapao('s').eval()
    # Non-trivial BatchNorm statistics, so that folding them has something to prove.
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for bn in (x for x in m.modules() if isinstance(x, torch.nn.BatchNorm2d)):
            n = bn.num_features
            bn.weight.copy_(0.5 + torch.rand(n, generator=g))
            bn.bias.copy_(0.2 * torch.randn(n, generator=g))
            bn.running_mean.copy_(0.2 * torch.randn(n, generator=g))
            bn.running_var.copy_(0.5 + torch.rand(n, generator=g))
    return m


@pytest.mark.parametrize('size', ['s', 'm', 'l'])
def test_topology_matches_the_published_networks(size):
    conv, silu, adds, params = PUBLISHED[size]
    m = meta_model(size)
    assert count_layers(m) == {'conv2d': conv, 'silu': silu, 'maxpool': 3, 'residual_add': adds}
    n = sum(p.numel() for p in m.parameters())
    assert abs(n - params) / params < 0.01, n


@pytest.mark.parametrize('side,rows', [(640, 25500), (1280, 102000)])
def test_output_shape_of_s(side, rows):
    m = meta_model('s')
    y = m(torch.zeros(1, 3, side, side, device='meta'))
    assert tuple(y.shape) == (1, rows, NUM_OUTPUTS)
    assert head_layout((side, side), np.ones((4, 3, 2))).rows == rows


def test_rectangular_input_and_bad_shapes():
    m = meta_model('s')
    assert tuple(m(torch.zeros(1, 3, 512, 640, device='meta')).shape) == (1, 3 * 85 * 80, 57)
    with pytest.raises(ValueError, match='multiples of 64'):
        m(torch.zeros(1, 3, 480, 640, device='meta'))
    with pytest.raises(ValueError, match='unknown KAPAO size'):
        build_kapao('x')


def test_head_rows_are_level_anchor_row_column(small_s):
    head = small_s.head
    feats = [torch.randn(1, c.in_channels, 128 // s, 192 // s)
             for c, s in zip(head.convs, (8, 16, 32, 64))]
    with torch.no_grad():
        y = head(feats)
        conv1 = head.convs[1](feats[1])   # level 1: 8 x 12 grid
    start = 3 * 16 * 24
    row = start + 2 * 8 * 12 + 3 * 12 + 5  # anchor 2, grid row 3, column 5
    torch.testing.assert_close(y[0, row], conv1[0, 2 * 57:3 * 57, 3, 5])


def test_forward_runs_and_bn_folding_keeps_the_outputs(small_s):
    x = torch.rand(1, 3, 64, 128, generator=torch.Generator().manual_seed(3))
    fused = fuse_conv_bn(small_s)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in small_s.modules())  # a copy
    with torch.no_grad():
        a, b = small_s(x), fused(x)
    assert a.shape == (1, 3 * (128 + 32 + 8 + 2), 57)
    assert a.std() > 0.02  # the comparison below is not between near-constants
    torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5)
