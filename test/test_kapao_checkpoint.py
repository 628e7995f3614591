# Copyright 2026 rrto_ros authors. Apache-2.0.
"""The KAPAO checkpoint converter, on a synthetic checkpoint pickled with stand-in classes
that carry KAPAO's module and class names (``models.yolo.Model``, ``models.common.C3``, ...)
and its layout (a 34-layer list routed by "from" indices, anchors in stride units). The
stand-ins are written here from the published network description; they are removed from
``sys.path`` and ``sys.modules`` before the converter reads the file."""

from __future__ import annotations

import os
import pickle
import sys
import textwrap
import zipfile

import numpy as np
import pytest

torch = pytest.importorskip('torch')

from rrto_ros.cli import kapao_convert_main  # noqa: E402
from rrto_ros.tracking import checkpoint  # noqa: E402
from rrto_ros.tracking.checkpoint import CheckpointError  # noqa: E402
from rrto_ros.tracking.kapao_model import build_kapao, fuse_conv_bn  # noqa: E402
from rrto_ros.tracking.pose_estimator import PoseEstimator  # noqa: E402

COMMON = """
import torch
from torch import nn


class Conv(nn.Module):
    def __init__(self, c1, c2, k=1, s=1):
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, k, s, k // 2, bias=False)
        self.bn = nn.BatchNorm2d(c2, eps=1e-3)
        self.act = nn.SiLU()

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


class Focus(nn.Module):
    def __init__(self, c1, c2, k=3):
        super().__init__()
        self.conv = Conv(4 * c1, c2, k)

    def forward(self, x):
        return self.conv(torch.cat([x[..., ::2, ::2], x[..., 1::2, ::2],
                                    x[..., ::2, 1::2], x[..., 1::2, 1::2]], 1))


class Bottleneck(nn.Module):
    def __init__(self, c, shortcut):
        super().__init__()
        self.cv1, self.cv2, self.add = Conv(c, c, 1), Conv(c, c, 3), shortcut

    def forward(self, x):
        y = self.cv2(self.cv1(x))
        return x + y if self.add else y


class C3(nn.Module):
    def __init__(self, c1, c2, n=1, shortcut=True):
        super().__init__()
        h = c2 // 2
        self.cv1, self.cv2, self.cv3 = Conv(c1, h), Conv(c1, h), Conv(2 * h, c2)
        self.m = nn.Sequential(*[Bottleneck(h, shortcut) for _ in range(n)])

    def forward(self, x):
        return self.cv3(torch.cat([self.m(self.cv1(x)), self.cv2(x)], 1))


class SPP(nn.Module):
    def __init__(self, c1, c2, k=(3, 5, 7)):
        super().__init__()
        self.cv1 = Conv(c1, c1 // 2)
        self.cv2 = Conv(c1 // 2 * (len(k) + 1), c2)
        self.m = nn.ModuleList([nn.MaxPool2d(i, 1, i // 2) for i in k])

    def forward(self, x):
        x = self.cv1(x)
        return self.cv2(torch.cat([x] + [m(x) for m in self.m], 1))


class Concat(nn.Module):
    def __init__(self, d=1):
        super().__init__()
        self.d = d

    def forward(self, xs):
        return torch.cat(xs, self.d)
"""

YOLO = """
import math

import torch
from torch import nn

from models.common import C3, Concat, Conv, Focus, SPP

ANCHORS = [[19, 27, 44, 40, 38, 94], [96, 68, 86, 152, 180, 137],
           [140, 301, 303, 264, 238, 542], [436, 615, 739, 380, 925, 792]]
# (from, repeats, module, output channels (x width), extra args); the P6 layer list.
LAYERS = [(-1, 1, 'Focus', 64, ()), (-1, 1, 'Conv', 128, (3, 2)), (-1, 3, 'C3', 128, ()),
          (-1, 1, 'Conv', 256, (3, 2)), (-1, 9, 'C3', 256, ()), (-1, 1, 'Conv', 512, (3, 2)),
          (-1, 9, 'C3', 512, ()), (-1, 1, 'Conv', 768, (3, 2)), (-1, 3, 'C3', 768, ()),
          (-1, 1, 'Conv', 1024, (3, 2)), (-1, 1, 'SPP', 1024, ()), (-1, 3, 'C3n', 1024, ()),
          (-1, 1, 'Conv', 768, (1, 1)), (-1, 1, 'Up', 0, ()), ([-1, 8], 1, 'Cat', 0, ()),
          (-1, 3, 'C3n', 768, ()), (-1, 1, 'Conv', 512, (1, 1)), (-1, 1, 'Up', 0, ()),
          ([-1, 6], 1, 'Cat', 0, ()), (-1, 3, 'C3n', 512, ()), (-1, 1, 'Conv', 256, (1, 1)),
          (-1, 1, 'Up', 0, ()), ([-1, 4], 1, 'Cat', 0, ()), (-1, 3, 'C3n', 256, ()),
          (-1, 1, 'Conv', 256, (3, 2)), ([-1, 20], 1, 'Cat', 0, ()), (-1, 3, 'C3n', 512, ()),
          (-1, 1, 'Conv', 512, (3, 2)), ([-1, 16], 1, 'Cat', 0, ()), (-1, 3, 'C3n', 768, ()),
          (-1, 1, 'Conv', 768, (3, 2)), ([-1, 12], 1, 'Cat', 0, ()), (-1, 3, 'C3n', 1024, ()),
          ([23, 26, 29, 32], 1, 'Detect', 0, ())]


class Detect(nn.Module):
    def __init__(self, ch, no=57, na=3):
        super().__init__()
        self.no, self.na, self.nl = no, na, len(ch)
        self.m = nn.ModuleList([nn.Conv2d(c, no * na, 1) for c in ch])
        self.stride = torch.tensor([8., 16., 32., 64.])
        a = torch.tensor(ANCHORS, dtype=torch.float32).view(4, 3, 2)
        self.register_buffer('anchors', a / self.stride.view(-1, 1, 1))
        self.register_buffer('anchor_grid', a.clone().view(4, 1, 3, 1, 1, 2))
        self.grid = [torch.zeros(1)] * 4

    def forward(self, xs):
        out = []
        for conv, x in zip(self.m, xs):
            y = conv(x)
            b, _, ny, nx = y.shape
            y = y.view(b, self.na, self.no, ny, nx).permute(0, 1, 3, 4, 2)
            out.append(y.reshape(b, -1, self.no))
        return torch.cat(out, 1)


class Model(nn.Module):
    def __init__(self, depth=0.33, width=0.5):
        super().__init__()
        self.yaml = {'depth_multiple': depth, 'width_multiple': width, 'nc': 52}
        ch, layers = [3], []
        for i, (f, n, kind, c, args) in enumerate(LAYERS):
            n = max(round(n * depth), 1) if n > 1 else n
            c2 = int(math.ceil(c * width / 8) * 8)
            c1 = ch[-1] if f == -1 else None
            if kind == 'Focus':
                m = Focus(c1, c2)
            elif kind == 'Conv':
                m = Conv(c1, c2, *args)
            elif kind in ('C3', 'C3n'):
                m = C3(c1, c2, n, kind == 'C3')
            elif kind == 'SPP':
                m = SPP(c1, c2)
            elif kind == 'Up':
                m, c2 = nn.Upsample(None, 2, 'nearest'), c1
            elif kind == 'Cat':
                m, c2 = Concat(1), sum(ch[j if j == -1 else j + 1] for j in f)
            else:
                m = Detect([ch[j + 1] for j in f])
            m.i, m.f, m.type = i, f, kind
            layers.append(m)
            ch.append(c2)
        self.model = nn.Sequential(*layers)
        self.stride = layers[-1].stride
        self.names = [str(i) for i in range(52)]

    def forward(self, x):
        ys = []
        for m in self.model:
            if m.f != -1:
                x = ys[m.f] if isinstance(m.f, int) else [x if j == -1 else ys[j] for j in m.f]
            x = m(x)
            ys.append(x)
        return x
"""


@pytest.fixture(scope='module')
def kapao_ckpt(tmp_path_factory):
    """(path of a KAPAO-S-like checkpoint in half precision, the stand-in model in float32,
    which no longer imports)."""
    root = tmp_path_factory.mktemp('kapao_standin')
    (root / 'models').mkdir()
    (root / 'models' / '__init__.py').write_text('')
    (root / 'models' / 'common.py').write_text(textwrap.dedent(COMMON))
    (root / 'models' / 'yolo.py').write_text(textwrap.dedent(YOLO))
    sys.path.insert(0, str(root))
    try:
        from models.yolo import Model
        torch.manual_seed(5)
        model = Model().eval()
        g = torch.Generator().manual_seed(6)
        with torch.no_grad():
            for bn in (m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)):
                bn.weight.copy_(0.5 + torch.rand(bn.num_features, generator=g))
                bn.bias.copy_(0.2 * torch.randn(bn.num_features, generator=g))
                bn.running_mean.copy_(0.2 * torch.randn(bn.num_features, generator=g))
                bn.running_var.copy_(0.5 + torch.rand(bn.num_features, generator=g))
            model.model[33].anchors.mul_(1.1)  # "auto-anchored": not the default anchors
        path = root / 'kapao_s_standin.pt'
        # What KAPAO's released (optimizer-stripped) checkpoints hold.
        torch.save({'epoch': -1, 'best_fitness': np.float64(0.63), 'model': model.half(),
                    'optimizer': None, 'training_results': None, 'ema': None, 'updates': None,
                    'wandb_id': None}, path)
        model.float()
    finally:
        sys.path.remove(str(root))
        for name in [n for n in sys.modules if n == 'models' or n.startswith('models.')]:
            del sys.modules[name]
    with pytest.raises(ImportError):
        __import__('models.yolo')
    return str(path), model


def test_conversion_reproduces_the_checkpoints_network(kapao_ckpt, tmp_path):
    src, standin = kapao_ckpt
    out = str(tmp_path / 'kapao_s.pt')
    w = checkpoint.convert(src, out)
    assert w.size == 's' and w.bn_eps == pytest.approx(1e-3)
    assert not any(n == 'models' or n.startswith('models.') for n in sys.modules)
    assert all(t.dtype == torch.float32 for k, t in w.state_dict.items()
               if not k.endswith('num_batches_tracked'))
    # 1.1 x (19, 27) pixels, in half precision like everything in a released checkpoint
    torch.testing.assert_close(w.state_dict['head.anchors'][0, 0], torch.tensor([20.9, 29.7]),
                               rtol=1e-3, atol=0)
    build_kapao('s').load_state_dict(w.state_dict)  # strict: every name and shape fits

    # The file is plain tensors: the safe loader reads it, and the estimator takes it
    # (loaded, BN folded) and computes what the checkpoint's own network computes.
    assert torch.load(out, weights_only=True)['format'] == checkpoint.FORMAT
    est = PoseEstimator('s', weights=out, img_size=64, device='cpu', auto=False)
    assert not est.random_init and 'kapao_s_standin.pt' in est.weights_description
    np.testing.assert_allclose(est.anchors, w.state_dict['head.anchors'].numpy())
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        ref = standin(x).numpy()
    assert ref.std() > 0.02
    np.testing.assert_allclose(est.run_network(x.numpy()), ref, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="set size='s'"):
        PoseEstimator('m', weights=out, device='cpu')


def test_raw_kapao_checkpoint_is_converted_in_memory(kapao_ckpt):
    w = checkpoint.load_weights(kapao_ckpt[0])
    assert w.size == 's' and 'head.convs.3.bias' in w.state_dict


def test_cli(kapao_ckpt, tmp_path, capsys):
    out = tmp_path / 'w.pt'
    assert kapao_convert_main.main([kapao_ckpt[0], str(out)]) == 0
    assert 'KAPAO-S converted from kapao_s_standin.pt' in capsys.readouterr().out
    assert out.is_file()
    assert kapao_convert_main.main([str(tmp_path / 'nope.pt'), str(out)]) == 2
    assert 'no such file' in capsys.readouterr().err


def write_torch_zip(path, pickled: bytes):
    with zipfile.ZipFile(path, 'w') as z:
        z.writestr('archive/data.pkl', pickled)
        z.writestr('archive/byteorder', 'little')
        z.writestr('archive/version', '3\n')


class _RunsCode:
    def __reduce__(self):
        return (os.system, ('touch {}',))


def test_a_pickle_that_would_run_code_is_refused(tmp_path):
    marker = tmp_path / 'ran'
    evil = pickle.dumps({'model': _RunsCode()}, protocol=2).replace(
        b'touch {}', f'touch {marker}'.encode())
    bad = tmp_path / 'evil.pt'
    write_torch_zip(bad, evil)
    with pytest.raises(CheckpointError, match='system.*refusing'):
        checkpoint.read_kapao_checkpoint(str(bad))
    assert not marker.exists()
    with pytest.raises(CheckpointError, match='refusing'):
        checkpoint.load_weights(str(bad))
    assert not marker.exists()


def test_other_files_are_refused_with_a_reason(tmp_path):
    legacy = tmp_path / 'legacy.pt'
    legacy.write_bytes(pickle.dumps({'model': None}))
    with pytest.raises(CheckpointError, match='not a torch zip checkpoint'):
        checkpoint.convert(str(legacy), str(tmp_path / 'o.pt'))
    unknown = tmp_path / 'ghost.pt'
    write_torch_zip(unknown, b'\x80\x02cmodels.common\nGhostConv\nq\x00.')
    with pytest.raises(CheckpointError, match='GhostConv.*not part of the KAPAO'):
        checkpoint.read_kapao_checkpoint(str(unknown))
    plain = tmp_path / 'plain.pt'
    torch.save({'model': {'weight': torch.zeros(2)}}, plain)
    with pytest.raises(CheckpointError, match='neither our KAPAO weights'):
        checkpoint.load_weights(str(plain))
    wrong = tmp_path / 'wrong.pt'
    torch.save({'stem.conv.conv.weight': torch.zeros(3)}, wrong)
    with pytest.raises(CheckpointError, match='fit none of KAPAO-S/M/L'):
        checkpoint.load_weights(str(wrong))
    not_model = tmp_path / 'dict.pt'
    torch.save({'model': torch.nn.Linear(2, 2)}, not_model)
    with pytest.raises(CheckpointError, match='Linear'):
        checkpoint.convert(str(not_model), str(tmp_path / 'o.pt'))


def test_a_bn_folded_checkpoint_converts_to_the_same_network(kapao_ckpt, tmp_path):
    """A checkpoint saved after KAPAO's own BN folding (convs with a bias, no bn)."""
    src, standin = kapao_ckpt
    ckpt = checkpoint.read_kapao_checkpoint(src)
    ref, _ = checkpoint.kapao_to_state_dict(ckpt)
    for h in _holders(ckpt['model']):
        if h.kapao_class == 'Conv':
            conv, bn = h.state['_modules']['conv'], h.state['_modules'].pop('bn')
            s = bn.state['_parameters']['weight'].float() / torch.sqrt(
                bn.state['_buffers']['running_var'].float() + 1e-3)
            w = conv.state['_parameters']['weight'].float()
            conv.state['_parameters']['weight'] = w * s.view(-1, 1, 1, 1)
            conv.state['_parameters']['bias'] = (
                bn.state['_parameters']['bias'].float()
                - bn.state['_buffers']['running_mean'].float() * s)
    folded, eps = checkpoint.kapao_to_state_dict(ckpt)
    assert eps == 1e-3 and set(folded) == set(ref)
    head = ckpt['model'].children['model'].children['33'].children['m'].children['0']
    head.state['_parameters']['weight'] = head.state['_parameters']['weight'][:144]
    with pytest.raises(CheckpointError, match='144 channels.*CrowdPose'):
        checkpoint.kapao_to_state_dict(ckpt)
    assert not torch.equal(folded['stem.conv.bn.bias'], ref['stem.conv.bn.bias'])
    # Folding both gives the same convs: the same network.
    a, b = build_kapao('s').eval(), build_kapao('s').eval()
    a.load_state_dict(ref)
    b.load_state_dict(folded)
    fa = fuse_conv_bn(a, inplace=True).state_dict()
    fb = fuse_conv_bn(b, inplace=True).state_dict()
    assert set(fa) == set(fb) and 'stem.conv.conv.bias' in fa
    worst = max(float((fb[k] - fa[k]).abs().max() / (fa[k].abs().max() + 1e-6)) for k in fa)
    assert worst < 1e-5, worst


def _holders(h):
    yield h
    for c in h.children.values():
        yield from _holders(c)


def test_unpickler_accepts_only_its_allowlist():
    u = checkpoint.KapaoUnpickler(pickle.dumps(None), lambda *a: None)
    assert u.find_class('models.yolo', 'Detect').kapao_class == 'Detect'
    assert u.find_class('torch', 'HalfStorage').dtype == torch.float16
    assert u.find_class('torch', 'float32') is torch.float32
    for mod, name in (('builtins', 'eval'), ('torch', 'load'), ('numpy', 'load'),
                      ('torch._utils', '_rebuild_qtensor'), ('subprocess', 'Popen')):
        with pytest.raises(CheckpointError):
            u.find_class(mod, name)
    # A module's bound method (KAPAO's folded Conv keeps forward = forward_fuse) is a name.
    getattr_ = u.find_class('builtins', 'getattr')
    assert getattr_(u.find_class('models.common', 'Conv')(), 'forward_fuse') == \
        '<method Conv.forward_fuse>'
    with pytest.raises(CheckpointError, match='getattr'):
        getattr_(os, 'system')
    with pytest.raises(CheckpointError, match='persistent'):
        u.persistent_load(('storage', 'not a type', '0', 'cpu', 1))
