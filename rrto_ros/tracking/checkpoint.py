# Copyright 2026 rrto_ros authors. Apache-2.0.
"""Reading a user's own KAPAO checkpoint without KAPAO's code, and our weights file.

A KAPAO ``.pt`` file is a torch zip archive whose ``data.pkl`` pickles a dict holding the
whole network (``'model'``, or ``'ema'``) as objects of KAPAO's classes
(``models.yolo.Model``, ``models.common.C3`` ...). Unpickling it normally would import and
run that (GPL) code. ``read_kapao_checkpoint`` instead reads the archive itself with a
restricted unpickler: KAPAO's and torch.nn's module classes become inert state holders,
tensors are rebuilt by our own function from the archive's raw storages, and any other
global is refused, so nothing from the file is executed. ``kapao_to_state_dict`` then
renames the parameters and buffers into ``KapaoNet``'s names.

Our weights file (what ``rrto-kapao-convert`` writes, ``torch.save`` of plain tensors, read
back with ``weights_only=True``): ``{'format': FORMAT, 'version': 1, 'size': 's'|'m'|'l',
'bn_eps': float, 'source': str, 'state_dict': {name: tensor}}``.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
import io
import logging
import os
import pickle
from typing import Any, Callable, Dict, List, Tuple
import zipfile

import numpy as np
import torch

from rrto_ros.tracking.kapao_decode import NUM_ANCHORS, NUM_OUTPUTS, STRIDES

FORMAT = 'rrto_ros.kapao_state_dict'
VERSION = 1
LOG = logging.getLogger(__name__)


class CheckpointError(ValueError):
    """The file is not something this module can read; the message says why and what to do."""


# --------------------------------------------------------------------------- unpickling

class StateHolder:
    """What a pickled module becomes: its class name and its ``__dict__``, nothing runs."""

    kapao_class = ''
    state: Dict[str, Any] = {}  # until BUILD sets the instance's (unpickling skips __init__)

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2:  # (dict, slots) form
            state = {**(state[0] or {}), **(state[1] or {})}
        if not isinstance(state, dict):
            raise CheckpointError(f'unexpected pickled state for {self.kapao_class}')
        self.state = state

    @property
    def children(self) -> Dict[str, 'StateHolder']:
        return dict(self.state.get('_modules') or {})

    @property
    def tensors(self) -> Dict[str, torch.Tensor]:
        out = {k: v for k, v in (self.state.get('_parameters') or {}).items() if v is not None}
        out.update({k: v for k, v in (self.state.get('_buffers') or {}).items() if v is not None})
        return out


KAPAO_CLASSES = {
    'models.yolo': ('Model', 'Detect'),
    'models.common': ('Conv', 'Focus', 'C3', 'Bottleneck', 'SPP', 'SPPF', 'Concat'),
    'torch.nn.modules.conv': ('Conv2d',),
    'torch.nn.modules.batchnorm': ('BatchNorm2d',),
    'torch.nn.modules.activation': ('SiLU',),
    'torch.nn.modules.pooling': ('MaxPool2d',),
    'torch.nn.modules.upsampling': ('Upsample',),
    'torch.nn.modules.container': ('Sequential', 'ModuleList'),
    'torch.nn.modules.linear': ('Identity',),
}
_HOLDERS: Dict[Tuple[str, str], type] = {
    (mod, name): type(name, (StateHolder,), {'kapao_class': name})
    for mod, names in KAPAO_CLASSES.items() for name in names}


@dataclass(frozen=True)
class _StorageType:
    dtype: torch.dtype


_STORAGE_DTYPES = {
    'HalfStorage': torch.float16, 'FloatStorage': torch.float32, 'DoubleStorage': torch.float64,
    'BFloat16Storage': torch.bfloat16, 'LongStorage': torch.int64, 'IntStorage': torch.int32,
    'ShortStorage': torch.int16, 'CharStorage': torch.int8, 'ByteStorage': torch.uint8,
    'BoolStorage': torch.bool, 'UntypedStorage': torch.uint8}


def _rebuild_tensor(storage: torch.Tensor, offset: int, size: Tuple[int, ...],
                    stride: Tuple[int, ...], *_: Any) -> torch.Tensor:
    if not isinstance(storage, torch.Tensor):
        raise CheckpointError('a tensor in the checkpoint does not refer to a stored array')
    need = offset + sum((s - 1) * st for s, st in zip(size, stride)) + 1 if all(size) else 0
    if need > storage.numel():
        raise CheckpointError('a tensor in the checkpoint reaches past its stored data')
    return torch.as_strided(storage, tuple(size), tuple(stride), offset)


def _rebuild_parameter(data: torch.Tensor, *_: Any) -> torch.Tensor:
    return data


def _latin1_bytes(text: str, encoding: str = 'latin1') -> bytes:
    """Protocol-2 pickles spell ``bytes`` as ``_codecs.encode(str, 'latin1')``."""
    if not isinstance(text, str) or encoding not in ('latin1', 'latin-1'):
        raise CheckpointError('the checkpoint calls _codecs.encode in an unexpected way')
    return text.encode('latin1')


def _method_of_holder(obj: Any, name: str) -> str:
    """A module pickled after KAPAO's own BN folding carries ``forward = forward_fuse``, a
    bound method, pickled as ``getattr(module, 'forward_fuse')``; only that form is
    accepted, and it becomes a mere name."""
    if not isinstance(obj, StateHolder) or not isinstance(name, str):
        raise CheckpointError('the checkpoint calls getattr on something other than a module')
    return f'<method {obj.kapao_class}.{name}>'


def _numpy_globals() -> Dict[Tuple[str, str], Any]:
    """numpy's own pickle reconstructors (a training checkpoint stores e.g. a numpy float
    as its best fitness): they build arrays from bytes and run nothing else."""
    try:
        from numpy._core import multiarray  # numpy >= 2
    except ImportError:  # numpy 1
        from numpy.core import multiarray
    out: Dict[Tuple[str, str], Any] = {('numpy', 'ndarray'): np.ndarray,
                                       ('numpy', 'dtype'): np.dtype}
    for mod in ('numpy.core.multiarray', 'numpy._core.multiarray'):
        out[(mod, '_reconstruct')] = multiarray._reconstruct
        out[(mod, 'scalar')] = multiarray.scalar
    return out


class KapaoUnpickler(pickle.Unpickler):
    """Unpickles a KAPAO ``data.pkl`` (see the module docstring); ``load_storage(key,
    dtype, numel)`` supplies the raw arrays the pickle refers to."""

    _FUNCTIONS: Dict[Tuple[str, str], Any] = {
        ('torch._utils', '_rebuild_tensor_v2'): _rebuild_tensor,
        ('torch._utils', '_rebuild_parameter'): _rebuild_parameter,
        ('torch._utils', '_rebuild_parameter_with_state'): _rebuild_parameter,
        ('collections', 'OrderedDict'): collections.OrderedDict,
        ('builtins', 'set'): set, ('__builtin__', 'set'): set,
        ('builtins', 'frozenset'): frozenset, ('__builtin__', 'frozenset'): frozenset,
        ('torch', 'Size'): torch.Size, ('torch', 'device'): torch.device,
        ('_codecs', 'encode'): _latin1_bytes,
        ('builtins', 'getattr'): _method_of_holder, ('__builtin__', 'getattr'): _method_of_holder,
    }

    def __init__(self, data: bytes,
                 load_storage: Callable[[str, torch.dtype, int], torch.Tensor]) -> None:
        super().__init__(io.BytesIO(data))
        self._load_storage = load_storage
        self._numpy = _numpy_globals()

    def find_class(self, module: str, name: str) -> Any:
        key = (module, name)
        if key in _HOLDERS:
            return _HOLDERS[key]
        if key in self._FUNCTIONS:
            return self._FUNCTIONS[key]
        if key in self._numpy:
            return self._numpy[key]
        if module == 'torch' and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name])
        if module == 'torch' and isinstance(getattr(torch, name, None), torch.dtype):
            return getattr(torch, name)
        if module.startswith('models.') or module.startswith('torch.nn.'):
            raise CheckpointError(
                f'the checkpoint contains a {module}.{name}, which is not part of the KAPAO-S/M/L '
                f'networks this converter reads (a different model or an unsupported variant)')
        raise CheckpointError(f'the checkpoint refers to {module}.{name}, which a KAPAO '
                              f'checkpoint never needs; refusing to load it (it could run code)')

    def persistent_load(self, pid: Any) -> torch.Tensor:
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == 'storage'
                and isinstance(pid[1], _StorageType)):
            raise CheckpointError(f'unexpected persistent reference {pid!r:.80} in the checkpoint')
        return self._load_storage(str(pid[2]), pid[1].dtype, int(pid[4]))


def read_kapao_checkpoint(path: str) -> Dict[str, Any]:
    """The unpickled top-level object of a torch zip checkpoint, modules as StateHolders."""
    if not os.path.isfile(path):
        raise CheckpointError(f'no such file: {path}')
    if not zipfile.is_zipfile(path):
        raise CheckpointError(
            f'{path} is not a torch zip checkpoint (the format torch >= 1.6 writes and KAPAO '
            f'releases use); this converter reads only that format')
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        pkl = [n for n in names if n.endswith('data.pkl') and n.count('/') == 1]
        if len(pkl) != 1:
            raise CheckpointError(f'{path} is a zip file but not a torch checkpoint (no data.pkl)')
        prefix = pkl[0][:-len('data.pkl')]
        if prefix + 'byteorder' in names and z.read(prefix + 'byteorder').strip() != b'little':
            raise CheckpointError(f'{path} was saved on a big-endian machine; not supported')
        storages: Dict[str, torch.Tensor] = {}

        def load_storage(key: str, dtype: torch.dtype, numel: int) -> torch.Tensor:
            if key not in storages:
                try:
                    raw = bytearray(z.read(f'{prefix}data/{key}'))
                except KeyError:
                    raise CheckpointError(f'{path} lacks the stored array {key}') from None
                t = torch.frombuffer(raw, dtype=dtype) if raw else torch.empty(0, dtype=dtype)
                if t.numel() != numel:
                    raise CheckpointError(f'{path}: stored array {key} has {t.numel()} elements, '
                                          f'the pickle says {numel}')
                storages[key] = t
            return storages[key]

        try:
            obj = KapaoUnpickler(z.read(pkl[0]), load_storage).load()
        except CheckpointError:
            raise
        except Exception as e:  # a corrupt or foreign pickle: say so, by name
            raise CheckpointError(f'{path}: cannot read the checkpoint ({type(e).__name__}: '
                                  f'{e})') from e
    if not isinstance(obj, dict):
        raise CheckpointError(f'{path} holds a {type(obj).__name__}, not a KAPAO checkpoint dict')
    return obj


# --------------------------------------------------------------------------- renaming

# KAPAO's layer index (its yolov5*6 layer list) -> our KapaoNet attribute; the indices
# missing here are the upsamples and concats, which hold no weights.
LAYER_NAMES = {
    0: 'stem', 1: 'down2', 2: 'csp2', 3: 'down3', 4: 'csp3', 5: 'down4', 6: 'csp4',
    7: 'down5', 8: 'csp5', 9: 'down6', 10: 'pool6', 11: 'csp6', 12: 'lat6', 15: 'td5',
    16: 'lat5', 19: 'td4', 20: 'lat4', 23: 'out3', 24: 'bu3', 26: 'out4', 27: 'bu4',
    29: 'out5', 30: 'bu5', 32: 'out6', 33: 'head'}
_LAYER_KINDS = {0: ('Focus',), 10: ('SPP',), 33: ('Detect',),
                13: ('Upsample',), 17: ('Upsample',), 21: ('Upsample',),
                **{i: ('Concat',) for i in (14, 18, 22, 25, 28, 31)},
                **{i: ('Conv',) for i in (1, 3, 5, 7, 9, 12, 16, 20, 24, 27, 30)},
                **{i: ('C3',) for i in (2, 4, 6, 8, 11, 15, 19, 23, 26, 29, 32)}}
# Child names per KAPAO class -> ours (None: holds no weights, skipped).
_CHILDREN = {
    'Focus': {'conv': 'conv'},
    'Conv': {'conv': 'conv', 'bn': 'bn', 'act': None},
    'C3': {'cv1': 'main_in', 'cv2': 'skip_in', 'cv3': 'merge', 'm': 'blocks'},
    'Bottleneck': {'cv1': 'reduce', 'cv2': 'expand'},
    'SPP': {'cv1': 'reduce', 'cv2': 'merge', 'm': None},
    'Sequential': None,  # children keep their (index) names
}


def kapao_to_state_dict(ckpt: Dict[str, Any]) -> Tuple[Dict[str, torch.Tensor], float]:
    """Our KapaoNet state_dict (float32) and the BatchNorm epsilon, from a checkpoint dict
    read by ``read_kapao_checkpoint``."""
    root = ckpt.get('ema') or ckpt.get('model')
    if not isinstance(root, StateHolder) or root.kapao_class != 'Model':
        found = type(root).__name__ if root is not None else 'nothing'
        raise CheckpointError(f"the checkpoint's 'model' entry is {found}, not a KAPAO "
                              f'models.yolo.Model')
    seq = root.children.get('model')
    layers = seq.children if isinstance(seq, StateHolder) else {}
    if len(layers) != 34:
        raise CheckpointError(f'the network has {len(layers)} layers, KAPAO-S/M/L (P6) have 34: '
                              f'a different YOLO variant (e.g. a P5 model)?')
    out: Dict[str, torch.Tensor] = {}
    eps: List[float] = []
    for i in range(34):
        layer = layers.get(str(i))
        kind = layer.kapao_class if isinstance(layer, StateHolder) else type(layer).__name__
        if kind not in _LAYER_KINDS[i]:
            raise CheckpointError(f'layer {i} is a {kind}, KAPAO has a {_LAYER_KINDS[i][0]} there')
        if i == 33:
            _convert_head(layer, out)
        elif i in LAYER_NAMES:
            _convert(layer, LAYER_NAMES[i], out, eps)
    if len(set(eps)) > 1:
        raise CheckpointError(f'the BatchNorm layers use different epsilons {sorted(set(eps))}')
    return out, (eps[0] if eps else 1e-3)


def _convert(h: StateHolder, prefix: str, out: Dict[str, torch.Tensor],
             eps: List[float]) -> None:
    kind = h.kapao_class
    if kind == 'Conv':
        _convert_conv(h, prefix, out, eps)
        return
    if kind not in _CHILDREN:
        raise CheckpointError(f'unexpected {kind} at {prefix}')
    names = _CHILDREN[kind]
    for name, child in h.children.items():
        ours = name if names is None else names.get(name, '?')
        if ours == '?':
            raise CheckpointError(f'unexpected child {name!r} of a {kind} at {prefix}')
        if ours is not None:
            if not isinstance(child, StateHolder):
                raise CheckpointError(f'{prefix}.{name} is not a module')
            _convert(child, f'{prefix}.{ours}', out, eps)


def _convert_conv(h: StateHolder, prefix: str, out: Dict[str, torch.Tensor],
                  eps: List[float]) -> None:
    kids = h.children
    conv, bn, act = kids.get('conv'), kids.get('bn'), kids.get('act')
    if getattr(act, 'kapao_class', None) != 'SiLU':
        raise CheckpointError(f'the activation at {prefix} is {type(act).__name__}, KAPAO '
                              f'uses SiLU')
    if getattr(conv, 'kapao_class', None) != 'Conv2d':
        raise CheckpointError(f'{prefix} has no Conv2d')
    w = conv.tensors.get('weight')
    if w is None:
        raise CheckpointError(f'{prefix}: the conv has no weight')
    out[f'{prefix}.conv.weight'] = w.float().clone()
    if getattr(bn, 'kapao_class', None) == 'BatchNorm2d':
        eps.append(float(bn.state.get('eps', 1e-3)))
        for k, v in bn.tensors.items():
            keep = k == 'num_batches_tracked'  # an integer count
            out[f'{prefix}.bn.{k}'] = v.clone() if keep else v.float().clone()
        return
    # A checkpoint saved after BN folding: the conv carries a bias. Express it as a BN
    # that is an exact identity (scale 1, shift = the bias), so the same loading applies.
    b = conv.tensors.get('bias')
    if b is None:
        raise CheckpointError(f'{prefix} has neither a BatchNorm nor a conv bias')
    e = eps[0] if eps else 1e-3
    out[f'{prefix}.bn.weight'] = torch.ones_like(b, dtype=torch.float32)
    out[f'{prefix}.bn.bias'] = b.float().clone()
    out[f'{prefix}.bn.running_mean'] = torch.zeros_like(b, dtype=torch.float32)
    out[f'{prefix}.bn.running_var'] = torch.full_like(b, 1.0 - e, dtype=torch.float32)
    out[f'{prefix}.bn.num_batches_tracked'] = torch.tensor(0)


def _convert_head(h: StateHolder, out: Dict[str, torch.Tensor]) -> None:
    convs = h.children.get('m')
    convs = convs.children if isinstance(convs, StateHolder) else {}
    if len(convs) != 4:
        raise CheckpointError(f'the Detect layer has {len(convs)} output convs, KAPAO (P6) has 4')
    for j in range(4):
        t = convs[str(j)].tensors
        if 'weight' not in t or 'bias' not in t:
            raise CheckpointError(f'Detect output conv {j} lacks a weight or bias')
        if t['weight'].shape[0] != NUM_ANCHORS * NUM_OUTPUTS:
            raise CheckpointError(
                f"the Detect layer outputs {t['weight'].shape[0]} channels per level, KAPAO's "
                f'COCO models {NUM_ANCHORS * NUM_OUTPUTS} (3 anchors x 57); other keypoint sets '
                f'(e.g. CrowdPose, 14 keypoints) are not supported')
        out[f'head.convs.{j}.weight'] = t['weight'].float().clone()
        out[f'head.convs.{j}.bias'] = t['bias'].float().clone()
    anchors = h.tensors.get('anchors')
    if anchors is None or tuple(anchors.shape) != (4, 3, 2):
        shape = None if anchors is None else tuple(anchors.shape)
        raise CheckpointError(f'the Detect layer has anchors of shape {shape}, expected (4, 3, 2)')
    stride = h.state.get('stride')
    if isinstance(stride, torch.Tensor) and stride.tolist() != [float(s) for s in STRIDES]:
        raise CheckpointError(f'the Detect strides are {stride.tolist()}, KAPAO uses {STRIDES}')
    # KAPAO keeps anchors in units of the level's stride; ours are pixels.
    strides = torch.tensor(STRIDES, dtype=torch.float32).view(4, 1, 1)
    out['head.anchors'] = anchors.float() * strides


# --------------------------------------------------------------------------- our file

@dataclass(frozen=True)
class Weights:
    size: str
    state_dict: Dict[str, torch.Tensor]
    bn_eps: float
    description: str


def infer_size(state_dict: Dict[str, torch.Tensor]) -> str:
    """Which KAPAO size a state_dict is for (its shapes must match that network exactly)."""
    from rrto_ros.tracking.kapao_model import SIZES, build_kapao
    problems = []
    for size in SIZES:
        with torch.device('meta'):
            ref = build_kapao(size).state_dict()
        missing = sorted(set(ref) - set(state_dict))
        extra = sorted(set(state_dict) - set(ref))
        bad = [k for k in ref if k in state_dict and tuple(ref[k].shape) !=
               tuple(state_dict[k].shape)]
        if not (missing or extra or bad):
            return size
        problems.append(f'{size}: {len(missing)} missing (e.g. {missing[:1]}), {len(extra)} '
                        f'unexpected (e.g. {extra[:1]}), {len(bad)} of another shape '
                        f'(e.g. {bad[:1]})')
    raise CheckpointError('the weights fit none of KAPAO-S/M/L: ' + '; '.join(problems))


def convert(src: str, dst: str) -> Weights:
    """Convert a KAPAO checkpoint ``src`` into our weights file ``dst``."""
    sd, eps = kapao_to_state_dict(read_kapao_checkpoint(src))
    size = infer_size(sd)
    w = Weights(size, sd, eps, f'KAPAO-{size.upper()} converted from {os.path.basename(src)}')
    torch.save({'format': FORMAT, 'version': VERSION, 'size': size, 'bn_eps': eps,
                'source': os.path.basename(src), 'state_dict': sd}, dst)
    return w


def load_weights(path: str) -> Weights:
    """Our weights file (see the module docstring), or a bare KapaoNet state_dict; a raw
    KAPAO checkpoint is converted in memory (with the same restricted reader)."""
    if not os.path.isfile(path):
        raise CheckpointError(f'no weights file at {path}; convert a KAPAO checkpoint with '
                              f'`rrto-kapao-convert KAPAO.pt OUT.pt` and pass OUT.pt')
    try:
        obj = torch.load(path, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError:
        obj = None  # not plain tensors: perhaps KAPAO's own checkpoint
    except Exception as e:
        raise CheckpointError(f'{path} is not a torch weights file ({type(e).__name__}: '
                              f'{e})') from e
    if obj is None:
        sd, eps = kapao_to_state_dict(read_kapao_checkpoint(path))
        size = infer_size(sd)
        LOG.info('%s is a KAPAO checkpoint; converted it in memory (convert it once with '
                 'rrto-kapao-convert to skip this)', path)
        return Weights(size, sd, eps, f'KAPAO-{size.upper()} from {os.path.basename(path)}')
    if isinstance(obj, dict) and obj.get('format') == FORMAT:
        if obj.get('version') != VERSION:
            raise CheckpointError(f'{path} is version {obj.get("version")} of our weights '
                                  f'format, this code reads version {VERSION}; re-convert it')
        sd = obj['state_dict']
        size = infer_size(sd)
        if size != obj.get('size'):
            raise CheckpointError(f'{path} says size {obj.get("size")!r} but holds {size!r}')
        return Weights(size, sd, float(obj['bn_eps']),
                       f'KAPAO-{size.upper()} converted from {obj.get("source", "?")}')
    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        size = infer_size(obj)
        return Weights(size, obj, 1e-3,
                       f'KAPAO-{size.upper()} state_dict {os.path.basename(path)}')
    raise CheckpointError(f'{path} is neither our KAPAO weights file nor a KAPAO checkpoint')
