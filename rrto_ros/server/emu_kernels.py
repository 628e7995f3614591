# Copyright 2026 rrto_ros authors. Apache-2.0.
"""NumPy versions of the kernels of the example programs (``examples/*.cu``) for ``emu``.

Each body emulates the whole grid at once and writes its results in place into the
emulated device memory. The CUDA kernels are written so that float32 results are
reproducible bit for bit: they never let the compiler fuse a multiply and an add into an
FMA (they use ``__fmul_rn``/``__fadd_rn`` where a product feeds a sum), and every sum runs
in a fixed order. The bodies below do the same float32 operations in the same order, so
an example run on ``emu`` prints what it prints on a GPU.

The 1-D kernels compute their index as ``blockIdx.x * blockDim.x + threadIdx.x``; only
the x extents of the launch matter to them. A grid or block with y/z extents above 1 would
run every index several times on a GPU, which changes nothing for the pure kernels and is
a data race for the in-place ones; emu runs each index once.

Kernels that touch module-scope variables (``__constant__``/``__device__``) get their
addresses through :func:`symbol_address`.
"""

from __future__ import annotations

import os
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

from rrto_ros.server.emu_kernel import emu_kernel
from rrto_ros.server.emu_kernel import EmuLaunch
from rrto_ros.server.emu_kernel import layout
from rrto_ros.server.emu_memory import EmuMemory

F32 = np.float32

# (size, alignment) of the C parameter types used by the examples.
PTR = (8, 8)
INT = (4, 4)
FLOAT = (4, 4)
AXPY_ARGS = (32, 8)    # struct AxpyArgs in struct_param.cu
MULTI_ARGS = (88, 8)   # struct MultiArgs in struct_param.cu

# struct.unpack formats of those structs, padding included.
AXPY_ARGS_FMT = 'QQQif'           # x, w, y, n, alpha
MULTI_ARGS_FMT = 'i4x8QQi4x'      # count, src[8], dst, n
MULTI_ARGS_MAX_SRC = 8

MATMUL_TILE = 16
FIR_TAPS = 16
COUNTER_BINS = 16


class EmuKernelError(Exception):
    """A launch this NumPy version cannot reproduce faithfully (e.g. unexpected blockDim)."""


def _decode(launch: EmuLaunch, spec: Sequence[Tuple[int, int]], codes: Sequence[str]
            ) -> List:
    """One value per parameter: ``codes[i]`` is the struct format of parameter ``i``.

    A single-value format yields the value; a multi-value one (a struct) yields the tuple.
    """
    offsets = layout(spec)
    if len(codes) != len(offsets):
        raise ValueError(f'{len(codes)} formats for {len(offsets)} parameters')
    out = []
    for code, (off, _) in zip(codes, offsets):
        vals = launch.unpack(code, off)
        out.append(vals[0] if len(vals) == 1 else vals)
    return out


def _threads_x(launch: EmuLaunch) -> int:
    """Count the distinct values of ``blockIdx.x * blockDim.x + threadIdx.x``."""
    return launch.grid[0] * launch.block[0]


def _f32(mem: EmuMemory, addr: int, count: int) -> np.ndarray:
    return mem.array(addr, F32, count)


def _matrix(mem: EmuMemory, addr: int, dtype: type, rows: int, cols: int, ld: int
            ) -> np.ndarray:
    """Return a (rows, cols) view with a row stride of ``ld`` elements.

    Only the elements the kernel would touch have to lie inside the allocation, which
    matters when a partial grid covers fewer columns than the matrix has.
    """
    flat = mem.array(addr, dtype, (rows - 1) * ld + cols)
    item = flat.itemsize
    return np.lib.stride_tricks.as_strided(flat, shape=(rows, cols), strides=(ld * item, item))


def symbol_address(launch: EmuLaunch, name: str, size: int) -> int:
    """Device address of the module-scope variable ``name`` of the launched kernel's module.

    A kernel reaches ``__constant__``/``__device__`` variables by name, not through a
    parameter, so the backend must tell the body where it keeps them: ``launch.symbol``
    is a callable ``(device_name, size) -> address`` for the module of the launched function
    (``EmuBackend.var_get`` bound to that module, creating zero-filled storage on first use
    as CUDA zero-initialises such variables).
    """
    lookup: Optional[Callable[[str, int], int]] = getattr(launch, 'symbol', None)
    if lookup is None:
        raise EmuKernelError(f'the kernel uses the module variable {name!r}, but the launch '
                             'carries no symbol lookup (EmuLaunch.symbol)')
    return lookup(name, size)


# ----------------------------------------------------------------------- vector_add.cu

_VECTOR_ADD = (PTR, PTR, PTR, INT)


@emu_kernel('_Z10vector_addPKfS0_Pfi', params=_VECTOR_ADD)
def vector_add(mem: EmuMemory, launch: EmuLaunch) -> None:
    """c[i] = a[i] + b[i] for i < n."""
    a, b, c, n = _decode(launch, _VECTOR_ADD, 'QQQi')
    m = min(n, _threads_x(launch))
    if m <= 0:
        return
    np.add(_f32(mem, a, m), _f32(mem, b, m), out=_f32(mem, c, m))


# --------------------------------------------------------------------- matmul_tiled.cu

_MATMUL = (PTR, PTR, PTR, INT, INT, INT)


@emu_kernel('_Z12matmul_tiledPKfS0_Pfiii', params=_MATMUL)
def matmul_tiled(mem: EmuMemory, launch: EmuLaunch) -> None:
    """C = A (M x K) * B (K x N), row-major; each C element summed over k in order.

    The zero-padded tile entries add +-0 to the running sum, which never changes it (the
    sum starts at +0 and a rounded sum is -0 only if both terms are), so skipping them is
    exact.
    """
    a, b, c, m_rows, n_cols, k_dim = _decode(launch, _MATMUL, 'QQQiii')
    if tuple(launch.block[:2]) != (MATMUL_TILE, MATMUL_TILE) or launch.block[2] != 1:
        raise EmuKernelError(f'matmul_tiled needs blockDim ({MATMUL_TILE}, {MATMUL_TILE}, 1), '
                             f'got {launch.block}')
    rows = min(m_rows, launch.grid[1] * MATMUL_TILE)
    cols = min(n_cols, launch.grid[0] * MATMUL_TILE)
    if rows <= 0 or cols <= 0:
        return
    acc = np.zeros((rows, cols), dtype=F32)
    if k_dim > 0:
        am = _matrix(mem, a, F32, rows, k_dim, k_dim)
        bm = _matrix(mem, b, F32, k_dim, cols, n_cols)
        for k in range(k_dim):
            acc += am[:, k:k + 1] * bm[k:k + 1, :]
    _matrix(mem, c, F32, rows, cols, n_cols)[:] = acc


# ---------------------------------------------------------------------- multistream.cu

_SCALE_OFFSET = (PTR, PTR, INT, FLOAT, FLOAT)


@emu_kernel('_Z12scale_offsetPKfPfiff', params=_SCALE_OFFSET)
def scale_offset(mem: EmuMemory, launch: EmuLaunch) -> None:
    """y[i] = (x[i] + offset) * scale for i < n."""
    x, y, n, offset, scale = _decode(launch, _SCALE_OFFSET, 'QQiff')
    m = min(n, _threads_x(launch))
    if m <= 0:
        return
    _f32(mem, y, m)[:] = (_f32(mem, x, m) + F32(offset)) * F32(scale)


_SUBTRACT_INPLACE = (PTR, PTR, INT)


@emu_kernel('_Z16subtract_inplacePfPKfi', params=_SUBTRACT_INPLACE)
def subtract_inplace(mem: EmuMemory, launch: EmuLaunch) -> None:
    """y[i] -= x[i] for i < n."""
    y, x, n = _decode(launch, _SUBTRACT_INPLACE, 'QQi')
    m = min(n, _threads_x(launch))
    if m <= 0:
        return
    yv = _f32(mem, y, m)
    np.subtract(yv, _f32(mem, x, m), out=yv)


# --------------------------------------------------------------------- struct_param.cu

_STRUCT_AXPY = (AXPY_ARGS,)


@emu_kernel('_Z11struct_axpy8AxpyArgs', params=_STRUCT_AXPY)
def struct_axpy(mem: EmuMemory, launch: EmuLaunch) -> None:
    """y[i] += alpha * (x[i] * w[i]) for i < n, with the pointers inside a by-value struct."""
    (args,) = _decode(launch, _STRUCT_AXPY, [AXPY_ARGS_FMT])
    x, w, y, n, alpha = args
    m = min(n, _threads_x(launch))
    if m <= 0:
        return
    yv = _f32(mem, y, m)
    prod = _f32(mem, x, m) * _f32(mem, w, m)
    prod *= F32(alpha)
    yv += prod


_SUM_ARRAYS = (FLOAT, MULTI_ARGS)


@emu_kernel('_Z10sum_arraysf9MultiArgs', params=_SUM_ARRAYS)
def sum_arrays(mem: EmuMemory, launch: EmuLaunch) -> None:
    """dst[i] = scale * (src[0][i] + ... + src[count - 1][i]) for i < n, summed in order.

    The 88-byte struct starts at parameter offset 8 (after the float and 4 bytes of
    padding) and holds 8 source pointers, of which only the first ``count`` are used.
    """
    scale, args = _decode(launch, _SUM_ARRAYS, ['f', MULTI_ARGS_FMT])
    count = args[0]
    srcs = args[1:1 + MULTI_ARGS_MAX_SRC]
    dst, n = args[1 + MULTI_ARGS_MAX_SRC:]
    if count > MULTI_ARGS_MAX_SRC:
        raise EmuKernelError(f'sum_arrays: count {count} > {MULTI_ARGS_MAX_SRC} reads past '
                             'the src array of the struct')
    m = min(n, _threads_x(launch))
    if m <= 0:
        return
    acc = np.zeros(m, dtype=F32)
    for j in range(max(count, 0)):
        acc += _f32(mem, srcs[j], m)
    acc *= F32(scale)
    _f32(mem, dst, m)[:] = acc


# ------------------------------------------------------------------ constant_memory.cu

_FIR16 = (PTR, PTR, INT)


@emu_kernel('_Z5fir16PKfPfi', params=_FIR16)
def fir16(mem: EmuMemory, launch: EmuLaunch) -> None:
    """y[i] = sum_k coeffs[k] * x[i + k] (k = 0..15, in order) for i < n.

    ``coeffs`` is the module's ``__constant__ float coeffs[16]``.
    """
    x, y, n = _decode(launch, _FIR16, 'QQi')
    m = min(n, _threads_x(launch))
    if m <= 0:
        return
    coeffs = _f32(mem, symbol_address(launch, 'coeffs', 4 * FIR_TAPS), FIR_TAPS)
    xv = _f32(mem, x, m + FIR_TAPS - 1)
    acc = np.zeros(m, dtype=F32)
    for k in range(FIR_TAPS):
        acc += coeffs[k] * xv[k:k + m]
    _f32(mem, y, m)[:] = acc


_SEGMENT_COUNT = (PTR, INT, INT, INT)


@emu_kernel('_Z13segment_countPKfiii', params=_SEGMENT_COUNT)
def segment_count(mem: EmuMemory, launch: EmuLaunch) -> None:
    """counter_array[t] = #{j in segment t : y[j] > 0} for t < nseg.

    Segment t is ``[t * seg_len, min(n, (t + 1) * seg_len))``; ``counter_array`` is the
    module's ``__device__ int counter_array[16]``.
    """
    y, n, seg_len, nseg = _decode(launch, _SEGMENT_COUNT, 'Qiii')
    t = min(nseg, _threads_x(launch))
    if t <= 0:
        return
    begin = np.arange(t, dtype=np.int64) * seg_len
    end = np.maximum(np.minimum(n, begin + seg_len), begin)   # an empty segment counts 0
    hi = int(np.clip(end.max(), 0, max(n, 0)))                # y[:hi] is all that is read
    positive = np.zeros(hi + 1, dtype=np.int64)               # positive[j] = #{y[:j] > 0}
    if hi > 0:
        np.cumsum(_f32(mem, y, hi) > 0, out=positive[1:])
    counts = positive[np.clip(end, 0, hi)] - positive[np.clip(begin, 0, hi)]
    # Storage of exactly COUNTER_BINS ints: nseg > COUNTER_BINS faults, as it would on a GPU.
    counter = mem.array(symbol_address(launch, 'counter_array', 4 * COUNTER_BINS), np.int32, t)
    counter[:] = counts.astype(np.int32)


_ADD_TO_INTS = (PTR, INT, INT)


@emu_kernel('_Z11add_to_intsPiii', params=_ADD_TO_INTS)
def add_to_ints(mem: EmuMemory, launch: EmuLaunch) -> None:
    """p[i] += v for i < n (int32, wrapping)."""
    p, n, v = _decode(launch, _ADD_TO_INTS, 'Qii')
    m = min(n, _threads_x(launch))
    if m <= 0:
        return
    pv = mem.array(p, np.int32, m)
    np.add(pv, np.int32(v), out=pv)


# ------------------------------------------------------------------------ cnn_infer.cu

_CONV3X3_BIAS = (PTR, PTR, PTR, PTR, INT, INT, INT, INT)


@emu_kernel('_Z12conv3x3_biasPKfS0_S0_Pfiiii', params=_CONV3X3_BIAS)
def conv3x3_bias(mem: EmuMemory, launch: EmuLaunch) -> None:
    """3x3 convolution with zero padding 1, then + bias: (cin, h, w) -> (cout, h, w).

    Per output element the taps are summed over ci, ky, kx in that order, taps outside
    the image skipped (not multiplied by zero), the bias added last. Threads
    ``idx < cout * h * w`` each write one element of the flat output.
    """
    inp, w, bias, out, cin, cout, h, wd = _decode(launch, _CONV3X3_BIAS, 'QQQQiiii')
    plane = h * wd
    total = min(cout * plane, _threads_x(launch))
    if total <= 0:
        return
    co_n = -(-total // plane)               # output channels (partly) covered by the grid
    acc = np.zeros((co_n, h, wd), dtype=F32)
    if cin > 0:
        x = _f32(mem, inp, cin * plane).reshape(cin, h, wd)
        wts = _f32(mem, w, co_n * cin * 9).reshape(co_n, cin, 3, 3)
        for ci in range(cin):
            for ky in range(3):
                dy = ky - 1
                y0, y1 = max(0, -dy), min(h, h - dy)
                for kx in range(3):
                    dx = kx - 1
                    x0, x1 = max(0, -dx), min(wd, wd - dx)
                    if y0 >= y1 or x0 >= x1:
                        continue
                    src = x[ci, y0 + dy:y1 + dy, x0 + dx:x1 + dx]
                    acc[:, y0:y1, x0:x1] += src[None, :, :] * wts[:, ci, ky, kx][:, None, None]
    acc += _f32(mem, bias, co_n)[:, None, None]
    _f32(mem, out, total)[:] = acc.reshape(-1)[:total]


_RELU_INPLACE = (PTR, INT)


@emu_kernel('_Z12relu_inplacePfi', params=_RELU_INPLACE)
def relu_inplace(mem: EmuMemory, launch: EmuLaunch) -> None:
    """x[i] = x[i] > 0 ? x[i] : 0 for i < n (so -0 and NaN become +0, as on the GPU)."""
    x, n = _decode(launch, _RELU_INPLACE, 'Qi')
    m = min(n, _threads_x(launch))
    if m <= 0:
        return
    xv = _f32(mem, x, m)
    xv[:] = np.where(xv > 0, xv, F32(0))


_MAXPOOL2X2 = (PTR, PTR, INT, INT, INT)


@emu_kernel('_Z10maxpool2x2PKfPfiii', params=_MAXPOOL2X2)
def maxpool2x2(mem: EmuMemory, launch: EmuLaunch) -> None:
    """2x2/stride 2 max pooling: (c, h, w) -> (c, h/2, w/2), C integer division.

    The maximum is taken as the kernel does, ``m = p00; if (p01 > m) m = p01; ...``,
    which fixes the result for ties of +0/-0 and for NaNs.
    """
    inp, out, c, h, w = _decode(launch, _MAXPOOL2X2, 'QQiii')
    oh, ow = h // 2, w // 2
    plane = oh * ow
    total = min(c * plane, _threads_x(launch))
    if total <= 0:
        return
    ch_n = -(-total // plane)
    x = _f32(mem, inp, ch_n * h * w).reshape(ch_n, h, w)
    m = x[:, 0:2 * oh:2, 0:2 * ow:2].copy()
    for dy, dx in ((0, 1), (1, 0), (1, 1)):
        p = x[:, dy:2 * oh:2, dx:2 * ow:2]
        np.copyto(m, p, where=p > m)
    _f32(mem, out, total)[:] = m.reshape(-1)[:total]


_FC_BIAS = (PTR, PTR, PTR, PTR, INT, INT)


@emu_kernel('_Z7fc_biasPKfS0_S0_Pfii', params=_FC_BIAS)
def fc_bias(mem: EmuMemory, launch: EmuLaunch) -> None:
    """out[o] = (sum over i, in order, of in[i] * w[o * in_features + i]) + bias[o].

    The ordered float32 sum is an ``np.add.accumulate`` (sequential, unlike ``np.sum``,
    which sums pairwise) over the products with a leading 0, the kernel's starting value.
    """
    inp, w, bias, out, nin, nout = _decode(launch, _FC_BIAS, 'QQQQii')
    m = min(nout, _threads_x(launch))
    if m <= 0:
        return
    acc = np.zeros(m, dtype=F32)
    if nin > 0:
        prods = np.zeros((m, nin + 1), dtype=F32)
        np.multiply(_f32(mem, w, m * nin).reshape(m, nin), _f32(mem, inp, nin)[None, :],
                    out=prods[:, 1:])
        acc = np.add.accumulate(prods, axis=1, dtype=F32)[:, -1]
    _f32(mem, out, m)[:] = acc + _f32(mem, bias, m)


# ---------------------------------------------------------------------- runtime_api.cu

_AFFINE = (PTR, PTR, FLOAT, INT)


@emu_kernel('_Z6affinePfPKffi', params=_AFFINE)
def affine(mem: EmuMemory, launch: EmuLaunch) -> None:
    """y[i] = x[i] * scale + offsets[i % 4] for i < n (offsets: a __constant__ int[4])."""
    y, x, scale, n = _decode(launch, _AFFINE, 'QQfi')
    m = min(n, _threads_x(launch))
    if m <= 0:
        return
    offsets = mem.array(symbol_address(launch, 'offsets', 16), np.int32, 4)
    add = offsets[np.arange(m) % 4].astype(np.float32)
    np.add(np.multiply(_f32(mem, x, m), np.float32(scale), dtype=np.float32), add,
           out=_f32(mem, y, m), dtype=np.float32)


# ---------------------------------------------------------------------- device_printf.cu

_GREET = (INT,)


@emu_kernel('_Z5greeti', params=_GREET)
def greet(mem: EmuMemory, launch: EmuLaunch) -> None:
    """printf per thread, in thread order, written to the process's fd 1 as the CUDA driver
    writes a context's printf buffer (rrto_ros/server/device_output.py takes it from there
    to the app)."""
    base, = _decode(launch, _GREET, 'i')
    text = ''.join(f'device printf: thread {t} says {base + t}\n'
                   for _ in range(launch.grid[0]) for t in range(launch.block[0]))
    os.write(1, text.encode())
