# Copyright 2026 rrto_ros authors. Apache-2.0.
"""The ``cuda`` backend's forwarded functions: cuBLAS, cuBLASLt and cuDNN called through
ctypes with the C types of vendor_api/ (the server's own libraries, on the session's
context, which the session thread holds current), and the few runtime functions of
forwarded.txt answered with the driver."""

from __future__ import annotations

import ctypes
import glob
import logging
import os
import struct
import sys
from typing import Callable, Dict, List, Optional

from cuda.bindings import driver as cu

from rrto_ros.protocol import forwarding
from rrto_ros.server.backend import CudaError
from rrto_ros.server.cuda_backend import _check

SONAMES = {
    'cublas': ('libcublas.so.13', 'libcublas.so.12'),
    'cublasLt': ('libcublasLt.so.13', 'libcublasLt.so.12'),
    'cudnn': ('libcudnn.so.9',),
}
_CTYPE = {'i8': ctypes.c_int8, 'i16': ctypes.c_int16, 'i32': ctypes.c_int32,
          'i64': ctypes.c_int64, 'f': ctypes.c_float, 'd': ctypes.c_double,
          'p': ctypes.c_void_p}
_loaded: Dict[str, ctypes.CDLL] = {}
log = logging.getLogger(__name__)


def _candidates(soname: str) -> List[str]:
    """Where the library may be: the nvidia-* wheels (the copies PyTorch uses), torch's lib
    dir, then the loader's path. The wheels come first: a system cuDNN of another minor
    version mixed with the wheel's parts finds no engines (seen: 9.14 beside 9.19)."""
    found = []
    for root in sys.path:
        found += sorted(glob.glob(os.path.join(root, 'nvidia', '*', 'lib', soname)))
        found += sorted(glob.glob(os.path.join(root, 'nvidia', 'lib', soname)))
        found += sorted(glob.glob(os.path.join(root, 'torch', 'lib', soname)))
    return found + [soname]


def library(lib: str) -> ctypes.CDLL:
    """The server's copy of ``lib``; CudaError naming what to install when there is none."""
    if lib in _loaded:
        return _loaded[lib]
    tried = []
    if lib == 'cudnn':   # its engines dlopen cuBLASLt
        try:
            library('cublasLt')
        except CudaError:
            pass
    for soname in SONAMES[lib]:
        for path in _candidates(soname):
            try:
                if lib == 'cudnn' and os.path.isabs(path):
                    _preload_parts(os.path.dirname(path))
                _loaded[lib] = ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
                return _loaded[lib]
            except OSError as e:
                tried.append(f'{path}: {e}')
    raise CudaError(801, f'{lib} is not installed on the server ({", ".join(SONAMES[lib])} '
                    f'not found): pip install nvidia-{lib.lower()}-cu13 (or PyTorch, which '
                    'brings it) on the edge machine')


# What cuDNN's engines load by soname besides cuDNN's own parts (runtime-compiled engines
# need NVRTC), in the order they depend on each other.
ENGINE_DEPENDENCIES = ('libcudart.so.13', 'libnvrtc.so.13', 'libnvrtc-builtins.so.13*',
                       'libnvJitLink.so.13', 'libcublasLt.so.13', 'libcublas.so.13')


def _preload_parts(directory: str) -> None:
    """cuDNN 9 dlopens its sub-libraries (graph, engines, heuristics) and their CUDA
    dependencies by soname, which the loader finds only on the library path: load them from
    the wheels' directories first, as PyTorch does, or cuDNN finds no engine for any graph
    (and says nothing)."""
    paths = [found[0] for found in (_candidates(dep)[:-1] for dep in ENGINE_DEPENDENCIES)
             if found]   # the wheels' copies (the bare soname is the loader's, last)
    paths += sorted(glob.glob(os.path.join(directory, 'libcudnn_*.so.9')),
                    key=lambda p: 'graph' not in p)
    for path in paths:
        try:
            ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
        except OSError as e:
            log.warning('cuDNN needs %s, which does not load here (%s): its engines that '
                        'need it are missing', os.path.basename(path), e)


class CudaLibraries:
    """Calls for one session; ``stream_of`` / ``function_of`` map the app's handles."""

    def __init__(self, stream_of: Callable[[int], object],
                 function_of: Callable[[int], object]) -> None:
        self._stream_of = stream_of
        self._function_of = function_of
        self._fns: Dict[str, ctypes._CFuncPtr] = {}

    def _bind(self, fn: forwarding.Function):
        f = self._fns.get(fn.name)
        if f is None:
            f = getattr(library(fn.lib), fn.name)
            f.restype = ctypes.c_int
            f.argtypes = [_CTYPE[p.abi] if p.role in ('value', 'key') else ctypes.c_void_p
                          for p in fn.params]
            self._fns[fn.name] = f
        return f

    def call(self, fn: forwarding.Function, args: list) -> int:
        if fn.lib == 'cudart':
            try:
                return RUNTIME[fn.name](self, *args)
            except CudaError as e:
                return e.code
        f = self._bind(fn)
        keep, cargs, holders = [], [], []
        for p, a in zip(fn.params, args):
            if p.role in ('value', 'key'):
                cargs.append(a)
            elif p.role == 'create':   # a libcalls.Holder
                h = ctypes.c_void_p()
                holders.append((a, h))
                cargs.append(ctypes.addressof(h))
            elif p.role == 'stream':
                cargs.append(int(self._stream_of(a)) or None)
            elif p.role == 'kernel':
                cargs.append(int(self._function_of(a)))
            elif p.role == 'elems' and isinstance(a, list):   # the server's handles
                arr = (ctypes.c_void_p * max(len(a), 1))(*a)
                keep.append(arr)
                cargs.append(ctypes.addressof(arr))
            elif p.role in ('in', 'out', 'elems'):
                if a is None:
                    cargs.append(None)
                    continue
                buf = (ctypes.c_char * max(len(a), 1)).from_buffer(
                    a if isinstance(a, bytearray) else bytearray(a))
                keep.append(buf)
                cargs.append(ctypes.addressof(buf))
            else:   # handles, device addresses
                cargs.append(a)
        status = f(*cargs)   # out buffers: from_buffer wrote through to the bytearrays
        for holder, h in holders:
            holder.value = h.value
        return status


def _put(out: Optional[bytearray], fmt: str, *values) -> None:
    if out is not None:
        struct.pack_into(fmt, out, 0, *values)


def _priority_range(libs, least: bytearray, greatest: bytearray) -> int:
    lo, hi = _check(cu.cuCtxGetStreamPriorityRange(), 'cuCtxGetStreamPriorityRange')
    _put(least, '<i', lo)
    _put(greatest, '<i', hi)
    return 0


def _get_limit(libs, out: bytearray, limit: int) -> int:
    _put(out, '<Q', int(_check(cu.cuCtxGetLimit(cu.CUlimit(limit)), 'cuCtxGetLimit')))
    return 0


def _set_limit(libs, limit: int, value: int) -> int:
    _check(cu.cuCtxSetLimit(cu.CUlimit(limit), value), 'cuCtxSetLimit')
    return 0


_FUNC_ATTRS = (1, 2, 3, 0, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 15, 14)   # struct order


def _func_attributes(libs, out: bytearray, func: int) -> int:
    f = libs._function_of(func)
    v = [int(_check(cu.cuFuncGetAttribute(cu.CUfunction_attribute(a), f),
                    'cuFuncGetAttribute')) for a in _FUNC_ATTRS]
    struct.pack_into('<3Q13i', out, 0, *v[:3], *v[3:])
    return 0


def _func_set_attribute(libs, func: int, attr: int, value: int) -> int:
    _check(cu.cuFuncSetAttribute(libs._function_of(func), cu.CUfunction_attribute(attr), value),
           'cuFuncSetAttribute')
    return 0


def _func_set_cache(libs, func: int, config: int) -> int:
    _check(cu.cuFuncSetCacheConfig(libs._function_of(func), cu.CUfunc_cache(config)),
           'cuFuncSetCacheConfig')
    return 0


def _occupancy(libs, out: bytearray, func: int, block: int, smem: int, flags: int = 0) -> int:
    n = _check(cu.cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(
        libs._function_of(func), block, smem, flags), 'cuOccupancyMaxActiveBlocks')
    _put(out, '<i', int(n))
    return 0


def _dynamic_smem(libs, out: bytearray, func: int, blocks: int, block: int) -> int:
    n = _check(cu.cuOccupancyAvailableDynamicSMemPerBlock(libs._function_of(func), blocks,
                                                          block), 'cuOccupancyAvailableDSM')
    _put(out, '<Q', int(n))
    return 0


def _stream_priority(libs, stream: int, out: bytearray) -> int:
    _put(out, '<i', int(_check(cu.cuStreamGetPriority(libs._stream_of(stream)),
                               'cuStreamGetPriority')))
    return 0


def _stream_flags(libs, stream: int, out: bytearray) -> int:
    _put(out, '<I', int(_check(cu.cuStreamGetFlags(libs._stream_of(stream)),
                               'cuStreamGetFlags')))
    return 0


def _profiler(start: bool) -> Callable[..., int]:
    def run(libs) -> int:
        _check(cu.cuProfilerStart() if start else cu.cuProfilerStop(), 'cuProfilerStart/Stop')
        return 0
    return run


RUNTIME: Dict[str, Callable[..., int]] = {
    'cudaProfilerStart': _profiler(True),
    'cudaProfilerStop': _profiler(False),
    'cudaDeviceGetStreamPriorityRange': _priority_range,
    'cudaDeviceGetLimit': _get_limit,
    'cudaDeviceSetLimit': _set_limit,
    'cudaFuncGetAttributes': _func_attributes,
    'cudaFuncSetAttribute': _func_set_attribute,
    'cudaFuncSetCacheConfig': _func_set_cache,
    'cudaOccupancyMaxActiveBlocksPerMultiprocessor': _occupancy,
    'cudaOccupancyMaxActiveBlocksPerMultiprocessorWithFlags': _occupancy,
    'cudaOccupancyAvailableDynamicSMemPerBlock': _dynamic_smem,
    'cudaStreamGetPriority': _stream_priority,
    'cudaStreamGetFlags': _stream_flags,
}
