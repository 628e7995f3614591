# Copyright 2026 rrto_ros authors. Apache-2.0.
"""The emu backend's NumPy kernels (rrto_ros/server/emu_kernels.py), called directly.

Three kinds of checks:

* each kernel against a reference written independently: plain Python loops over scalars
  rounded to float32 one operation at a time, in the CUDA kernel's order, so float
  results must match bit for bit;
* each example program's host flow replayed in Python against the emu kernels, whose
  output must equal, byte for byte, what the program printed on a GPU;
* the kernels and parameter layouts in the compiled example binaries against the
  registry (every kernel registered, every layout equal to the one in the cubin).
"""

from __future__ import annotations

from dataclasses import dataclass
import os
import pathlib
import shutil
import struct
import subprocess
from typing import Callable, Dict, Iterator, List, Optional, Tuple

import numpy as np
import pytest

from conftest import EXAMPLES
from rrto_ros.server import emu_kernels
from rrto_ros.server.emu_kernel import EmuLaunch
from rrto_ros.server.emu_kernel import REGISTRY
from rrto_ros.server.emu_kernels import EmuKernelError
from rrto_ros.server.emu_memory import EmuFault
from rrto_ros.server.emu_memory import EmuMemory

ROOT = pathlib.Path(__file__).resolve().parent.parent
PROGRAMS = EXAMPLES
F32 = np.float32

K_VECTOR_ADD = '_Z10vector_addPKfS0_Pfi'
K_MATMUL = '_Z12matmul_tiledPKfS0_Pfiii'
K_SCALE_OFFSET = '_Z12scale_offsetPKfPfiff'
K_SUBTRACT = '_Z16subtract_inplacePfPKfi'
K_STRUCT_AXPY = '_Z11struct_axpy8AxpyArgs'
K_SUM_ARRAYS = '_Z10sum_arraysf9MultiArgs'
K_FIR16 = '_Z5fir16PKfPfi'
K_SEGMENT_COUNT = '_Z13segment_countPKfiii'
K_ADD_TO_INTS = '_Z11add_to_intsPiii'
K_CONV = '_Z12conv3x3_biasPKfS0_S0_Pfiiii'
K_RELU = '_Z12relu_inplacePfi'
K_MAXPOOL = '_Z10maxpool2x2PKfPfiii'
K_FC = '_Z7fc_biasPKfS0_S0_Pfii'


# ------------------------------------------------------------------------------ helpers

@dataclass(frozen=True)
class SymbolLaunch(EmuLaunch):
    """An EmuLaunch carrying the ``symbol`` lookup that emu_kernels.symbol_address uses."""

    symbol: Optional[Callable[[str, int], int]] = None


def p64(v: int) -> bytes:
    return struct.pack('<Q', v)


def i32(v: int) -> bytes:
    return struct.pack('<i', v)


def f32(v: float) -> bytes:
    return struct.pack('<f', v)


def rf(x: float) -> float:
    """Round a Python float (double) to float32.

    One double operation on float32 inputs, rounded this way, gives the correctly rounded
    float32 result for + - * / (double has more than 2 * 24 + 2 bits).
    """
    return float(F32(x))


def dim3(v: int | Tuple[int, int, int]) -> Tuple[int, int, int]:
    return v if isinstance(v, tuple) else (v, 1, 1)


class Device:
    """EmuMemory plus module variables, and launches with the params packed per layout."""

    def __init__(self) -> None:
        self.mem = EmuMemory(1 << 30)
        self.symbols: Dict[str, int] = {}

    def symbol(self, name: str, size: int) -> int:
        if name not in self.symbols:
            self.symbols[name] = self.mem.alloc(size)
        return self.symbols[name]

    def put(self, arr: np.ndarray) -> int:
        arr = np.ascontiguousarray(arr)
        addr = self.mem.alloc(arr.nbytes)
        self.mem.write(addr, arr.tobytes())
        return addr

    def get(self, addr: int, dtype: type, count: int) -> np.ndarray:
        dt = np.dtype(dtype)
        return np.frombuffer(self.mem.read(addr, dt.itemsize * count), dtype=dt).copy()

    def launch(self, name: str, grid: int | Tuple[int, int, int],
               block: int | Tuple[int, int, int], *params: bytes,
               with_symbols: bool = True) -> None:
        kernel = REGISTRY[name]
        assert len(params) == len(kernel.params)
        buf = bytearray(kernel.param_bytes)
        for (off, size), value in zip(kernel.params, params):
            assert len(value) == size, f'{name}: parameter at {off} is {size} bytes'
            buf[off:off + size] = value
        launch: EmuLaunch
        if with_symbols:
            launch = SymbolLaunch(dim3(grid), dim3(block), 0, bytes(buf), self.symbol)
        else:
            launch = EmuLaunch(dim3(grid), dim3(block), 0, bytes(buf))
        kernel.run(self.mem, launch)


def blocks(n: int, block: int = 256) -> int:
    return (n + block - 1) // block


def bits(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, dtype=F32).view(np.uint32)


def lcg_uniform(seed: int, count: int) -> np.ndarray:
    """Return ``count`` values of the examples' generator, vectorised.

    state = state * 1664525 + 1013904223 (mod 2^32), value = (state >> 8) * 2^-23 - 1,
    exact in float32. Jumps ahead in blocks of precomputed multipliers and increments.
    """
    step = 1024
    mul = np.empty(step, dtype=np.uint64)
    add = np.empty(step, dtype=np.uint64)
    a, c = 1, 0
    for j in range(step):  # state_{i+j+1} = mul[j] * state_i + add[j]
        a, c = (a * 1664525) & 0xFFFFFFFF, (c * 1664525 + 1013904223) & 0xFFFFFFFF
        mul[j], add[j] = a, c
    out = np.empty(count, dtype=np.uint64)
    state = seed & 0xFFFFFFFF
    for start in range(0, count, step):
        k = min(step, count - start)
        out[start:start + k] = (mul[:k] * np.uint64(state) + add[:k]) & np.uint64(0xFFFFFFFF)
        state = int(out[start + k - 1])
    return ((out >> np.uint64(8)).astype(np.float64) * 2.0 ** -23 - 1.0).astype(F32)


def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def checksum(a: np.ndarray) -> float:
    """Sum as the programs do: a double accumulated element by element, in order."""
    total = 0.0
    for v in a.astype(np.float64).tolist():
        total += v
    return total


# ----------------------------------------------------------------------- registrations

EXPECTED_PARAM_BYTES = {
    K_VECTOR_ADD: 28, K_MATMUL: 36, K_SCALE_OFFSET: 28, K_SUBTRACT: 20, K_STRUCT_AXPY: 32,
    K_SUM_ARRAYS: 96, K_FIR16: 20, K_SEGMENT_COUNT: 20, K_ADD_TO_INTS: 16, K_CONV: 48,
    K_RELU: 12, K_MAXPOOL: 28, K_FC: 40, '_Z6affinePfPKffi': 24, '_Z5greeti': 4,
}
KERNEL_FREE_EXAMPLES = {'async_copy'}   # copies only


def test_registered_kernels_and_param_sizes() -> None:
    ours = {n for n, k in REGISTRY.items() if k.run.__module__ == emu_kernels.__name__}
    assert ours == set(EXPECTED_PARAM_BYTES)
    for name, size in EXPECTED_PARAM_BYTES.items():
        assert REGISTRY[name].param_bytes == size, name
    # The 88-byte struct of sum_arrays follows a float, so it starts at offset 8.
    assert REGISTRY[K_SUM_ARRAYS].params == ((0, 4), (8, 88))


# ------------------------------------------------------------------------- vector_add

def test_vector_add_exact_with_partial_last_block() -> None:
    d = Device()
    n = 1000
    a = rng().standard_normal(n).astype(F32)
    b = rng().standard_normal(n).astype(F32) * F32(3)
    da, db = d.put(a), d.put(b)
    dc = d.put(np.full(n + 24, -7, dtype=F32))   # the threads past n must not write
    d.launch(K_VECTOR_ADD, blocks(n), 256, p64(da), p64(db), p64(dc), i32(n))
    c = d.get(dc, F32, n + 24)
    np.testing.assert_array_equal(bits(c[:n]), bits([rf(x + y) for x, y in zip(a, b)]))
    assert (c[n:] == -7).all()


def test_vector_add_grid_smaller_than_n_and_empty() -> None:
    d = Device()
    n = 1000
    da, db = d.put(np.ones(n, F32)), d.put(np.full(n, 2, F32))
    dc = d.put(np.zeros(n, F32))
    d.launch(K_VECTOR_ADD, 2, 256, p64(da), p64(db), p64(dc), i32(n))   # 512 threads
    c = d.get(dc, F32, n)
    assert (c[:512] == 3).all() and (c[512:] == 0).all()
    d.launch(K_VECTOR_ADD, 1, 256, p64(0), p64(0), p64(0), i32(0))      # touches nothing


def test_vector_add_out_of_bounds_faults() -> None:
    d = Device()
    da = d.put(np.ones(100, F32))
    with pytest.raises(EmuFault):
        d.launch(K_VECTOR_ADD, 1, 256, p64(da), p64(da), p64(da), i32(200))


# ----------------------------------------------------------------------- matmul_tiled

def ref_matmul(a: np.ndarray, b: np.ndarray, m: int, n: int, k: int) -> np.ndarray:
    al, bl = a.tolist(), b.tolist()
    out = np.empty(m * n, dtype=F32)
    for i in range(m):
        for j in range(n):
            acc = 0.0
            for t in range(k):
                acc = rf(acc + rf(al[i * k + t] * bl[t * n + j]))
            out[i * n + j] = acc
    return out


def test_matmul_tiled_exact_on_non_multiple_of_tile_sizes() -> None:
    m, n, k = 37, 45, 29
    a = rng().uniform(-1, 1, m * k).astype(F32)
    b = rng().uniform(-1, 1, k * n).astype(F32)
    d = Device()
    da, db = d.put(a), d.put(b)
    dc = d.put(np.full(m * n, np.nan, F32))
    d.launch(K_MATMUL, (blocks(n, 16), blocks(m, 16), 1), (16, 16, 1),
             p64(da), p64(db), p64(dc), i32(m), i32(n), i32(k))
    np.testing.assert_array_equal(bits(d.get(dc, F32, m * n)), bits(ref_matmul(a, b, m, n, k)))


def test_matmul_tiled_partial_grid_and_close_to_float64() -> None:
    m, n, k = 100, 90, 70
    a = rng().uniform(-1, 1, m * k).astype(F32)
    b = rng().uniform(-1, 1, k * n).astype(F32)
    d = Device()
    da, db = d.put(a), d.put(b)
    dc = d.put(np.full(m * n, np.nan, F32))
    # 3 x 4 blocks cover rows < 64 and columns < 48 only.
    d.launch(K_MATMUL, (3, 4, 1), (16, 16, 1), p64(da), p64(db), p64(dc), i32(m), i32(n),
             i32(k))
    c = d.get(dc, F32, m * n).reshape(m, n)
    want = a.reshape(m, k).astype(np.float64) @ b.reshape(k, n).astype(np.float64)
    np.testing.assert_allclose(c[:64, :48], want[:64, :48], rtol=1e-5, atol=1e-5)
    assert np.isnan(c[64:, :]).all() and np.isnan(c[:, 48:]).all()


def test_matmul_tiled_rejects_other_block_shapes() -> None:
    d = Device()
    buf = d.put(np.zeros(16, F32))
    with pytest.raises(EmuKernelError):
        d.launch(K_MATMUL, (1, 1, 1), (32, 8, 1), p64(buf), p64(buf), p64(buf), i32(4),
                 i32(4), i32(1))


# ------------------------------------------------------------------------- multistream

def test_scale_offset_exact_and_tail_untouched() -> None:
    d = Device()
    n, size = 900, 1024
    x = rng().uniform(-1, 1, size).astype(F32)
    dx = d.put(x)
    dy = d.put(np.full(size, 5, F32))
    off, scale = rf(0.3), rf(2.7)
    d.launch(K_SCALE_OFFSET, blocks(n), 256, p64(dx), p64(dy), i32(n), f32(off), f32(scale))
    y = d.get(dy, F32, size)
    np.testing.assert_array_equal(bits(y[:n]), bits([rf(rf(v + off) * scale) for v in x[:n]]))
    assert (y[n:] == 5).all()


def test_subtract_inplace_exact() -> None:
    d = Device()
    n = 700
    y0 = rng().uniform(-1, 1, n).astype(F32)
    x = rng().uniform(-3, 3, n).astype(F32)
    dy, dx = d.put(y0), d.put(x)
    d.launch(K_SUBTRACT, blocks(n), 256, p64(dy), p64(dx), i32(n - 1))
    y = d.get(dy, F32, n)
    np.testing.assert_array_equal(bits(y[:-1]), bits([rf(a - b) for a, b in zip(y0, x)][:-1]))
    assert y[-1] == y0[-1]


# ------------------------------------------------------------------------ struct_param

def test_struct_axpy_reads_pointers_inside_the_struct() -> None:
    d = Device()
    n = 500
    x, w, y0 = (rng().uniform(-1, 1, n).astype(F32) for _ in range(3))
    pool = d.put(np.concatenate([np.zeros(64, F32), x, w]))   # x and w: interior pointers
    dx, dw = pool + 64 * 4, pool + (64 + n) * 4
    dy = d.put(np.concatenate([y0, [F32(9)]]))
    alpha = rf(0.75)
    args = struct.pack('<QQQif', dx, dw, dy, n, alpha)
    assert len(args) == 32
    d.launch(K_STRUCT_AXPY, blocks(n), 256, args)
    y = d.get(dy, F32, n + 1)
    want = [rf(c + rf(alpha * rf(a * b))) for a, b, c in zip(x, w, y0)]
    np.testing.assert_array_equal(bits(y[:n]), bits(want))
    assert y[n] == 9


@pytest.mark.parametrize('count,scale', [(8, 0.5), (5, -1.25), (0, 2.0)])
def test_sum_arrays_88_byte_struct(count: int, scale: float) -> None:
    d = Device()
    n = 300
    srcs = [rng().uniform(-1, 1, n).astype(F32) * F32(j + 1) for j in range(8)]
    pool = d.put(np.concatenate(srcs[:4]))
    ptrs = [pool + 4 * n * j for j in range(4)] + [d.put(s) for s in srcs[4:]]
    ptrs = [p if j < count else 0 for j, p in enumerate(ptrs)]   # unused slots are null
    dst = d.put(np.full(n, np.nan, F32))
    args = struct.pack('<i4x8QQi4x', count, *ptrs, dst, n)
    assert len(args) == 88
    d.launch(K_SUM_ARRAYS, blocks(n), 256, f32(scale), args)
    want = []
    for i in range(n):
        s = 0.0
        for j in range(count):
            s = rf(s + float(srcs[j][i]))
        want.append(rf(s * scale))
    np.testing.assert_array_equal(bits(d.get(dst, F32, n)), bits(want))


def test_sum_arrays_count_past_the_array_is_an_error() -> None:
    d = Device()
    buf = d.put(np.zeros(4, F32))
    args = struct.pack('<i4x8QQi4x', 9, *([buf] * 8), buf, 4)
    with pytest.raises(EmuKernelError):
        d.launch(K_SUM_ARRAYS, 1, 32, f32(1.0), args)


# --------------------------------------------------------------------- constant_memory

def test_fir16_reads_coeffs_symbol() -> None:
    d = Device()
    n = 400
    coeffs = rng().uniform(-0.25, 0.25, 16).astype(F32)
    d.mem.write(d.symbol('coeffs', 64), coeffs.tobytes())
    x = rng().uniform(-1, 1, n + 15).astype(F32)
    dx, dy = d.put(x), d.put(np.zeros(n, F32))
    d.launch(K_FIR16, blocks(n), 256, p64(dx), p64(dy), i32(n))
    want = []
    for i in range(n):
        acc = 0.0
        for k in range(16):
            acc = rf(acc + rf(float(coeffs[k]) * float(x[i + k])))
        want.append(acc)
    np.testing.assert_array_equal(bits(d.get(dy, F32, n)), bits(want))


def test_fir16_without_symbol_lookup_is_a_clear_error() -> None:
    d = Device()
    dx, dy = d.put(np.zeros(40, F32)), d.put(np.zeros(25, F32))
    with pytest.raises(EmuKernelError, match='coeffs'):
        d.launch(K_FIR16, 1, 32, p64(dx), p64(dy), i32(25), with_symbols=False)


def test_segment_count_writes_counter_array_symbol() -> None:
    d = Device()
    n, seg_len, nseg = 1000, 84, 14       # segment 11 is short, 12 and 13 lie past n
    y = rng().standard_normal(n).astype(F32)
    y[::7] = 0.0                           # zero is not positive
    y[5] = -0.0
    counter = d.symbol('counter_array', 64)
    d.mem.write(counter, np.full(16, -1, np.int32).tobytes())
    dy = d.put(y)
    d.launch(K_SEGMENT_COUNT, 1, 32, p64(dy), i32(n), i32(seg_len), i32(nseg))
    want = [int((y[t * seg_len:min(n, (t + 1) * seg_len)] > 0).sum()) for t in range(nseg)]
    assert d.get(counter, np.int32, 16).tolist() == want + [-1, -1]
    assert want[12:] == [0, 0] and sum(want) == int((y > 0).sum())


def test_segment_count_past_the_variable_faults() -> None:
    d = Device()
    dy = d.put(np.ones(100, F32))
    with pytest.raises(EmuFault):
        d.launch(K_SEGMENT_COUNT, 1, 32, p64(dy), i32(100), i32(5), i32(20))


def test_add_to_ints_wraps_like_int32() -> None:
    d = Device()
    vals = np.array([0, -5, 2**31 - 1, 7, 123], np.int32)
    dp = d.put(vals)
    d.launch(K_ADD_TO_INTS, 1, 32, p64(dp), i32(4), i32(1))
    assert d.get(dp, np.int32, 5).tolist() == [1, -4, -2**31, 8, 123]


# ------------------------------------------------------------------------------- cnn

def ref_conv(x: np.ndarray, w: np.ndarray, bias: np.ndarray, cin: int, cout: int, h: int,
             wd: int) -> np.ndarray:
    xl, wl, bl = x.tolist(), w.tolist(), bias.tolist()
    out = np.empty(cout * h * wd, dtype=F32)
    for co in range(cout):
        for y in range(h):
            for xx in range(wd):
                acc = 0.0
                for ci in range(cin):
                    for ky in range(3):
                        iy = y + ky - 1
                        if iy < 0 or iy >= h:
                            continue
                        for kx in range(3):
                            ix = xx + kx - 1
                            if ix < 0 or ix >= wd:
                                continue
                            prod = rf(xl[(ci * h + iy) * wd + ix]
                                      * wl[((co * cin + ci) * 3 + ky) * 3 + kx])
                            acc = rf(acc + prod)
                out[(co * h + y) * wd + xx] = rf(acc + bl[co])
    return out


def test_conv3x3_bias_exact() -> None:
    cin, cout, h, wd = 2, 3, 5, 6
    x = rng().uniform(0, 1, cin * h * wd).astype(F32)
    w = rng().uniform(-0.5, 0.5, cout * cin * 9).astype(F32)
    b = rng().uniform(-0.1, 0.1, cout).astype(F32)
    d = Device()
    dx, dw, db = d.put(x), d.put(w), d.put(b)
    dout = d.put(np.zeros(cout * h * wd, F32))
    d.launch(K_CONV, blocks(cout * h * wd, 32), 32, p64(dx), p64(dw), p64(db), p64(dout),
             i32(cin), i32(cout), i32(h), i32(wd))
    np.testing.assert_array_equal(bits(d.get(dout, F32, cout * h * wd)),
                                  bits(ref_conv(x, w, b, cin, cout, h, wd)))


def test_conv3x3_bias_skips_padding_taps() -> None:
    """Taps outside the image are skipped, not multiplied by zero.

    An infinite weight on such a tap must leave the border outputs finite, as on a GPU.
    """
    cin, cout, h, wd = 1, 2, 4, 4
    x = rng().uniform(0.5, 1, cin * h * wd).astype(F32)
    w = rng().uniform(-0.5, 0.5, cout * cin * 9).astype(F32)
    w[0] = np.inf                  # channel 0, tap (ky, kx) = (0, 0): padding for y or x = 0
    b = np.zeros(cout, F32)
    d = Device()
    dx, dw, db = d.put(x), d.put(w), d.put(b)
    dout = d.put(np.zeros(cout * h * wd, F32))
    d.launch(K_CONV, 1, 64, p64(dx), p64(dw), p64(db), p64(dout), i32(cin), i32(cout), i32(h),
             i32(wd))
    out = d.get(dout, F32, cout * h * wd)
    want = ref_conv(x, w, b, cin, cout, h, wd)
    np.testing.assert_array_equal(bits(out), bits(want))
    plane = out[:h * wd].reshape(h, wd)
    assert np.isfinite(plane[0, :]).all() and np.isfinite(plane[:, 0]).all()
    assert np.isinf(plane[1:, 1:]).all()


def test_conv3x3_bias_partial_grid() -> None:
    cin, cout, h, wd = 3, 4, 8, 8
    x = rng().uniform(0, 1, cin * h * wd).astype(F32)
    w = rng().uniform(-0.5, 0.5, cout * cin * 9).astype(F32)
    b = rng().uniform(-0.1, 0.1, cout).astype(F32)
    d = Device()
    dx, dw, db = d.put(x), d.put(w), d.put(b)
    dout = d.put(np.full(cout * h * wd, 42, F32))
    d.launch(K_CONV, 3, 32, p64(dx), p64(dw), p64(db), p64(dout), i32(cin), i32(cout), i32(h),
             i32(wd))   # 96 threads: channel 0 and half of channel 1
    out = d.get(dout, F32, cout * h * wd)
    np.testing.assert_array_equal(bits(out[:96]), bits(ref_conv(x, w, b, cin, cout, h, wd)[:96]))
    assert (out[96:] == 42).all()


def test_relu_inplace() -> None:
    d = Device()
    x = np.array([1.5, -2.0, 0.0, -0.0, np.nan, np.inf, -np.inf, 3e-45, -3e-45, 7.0], F32)
    dx = d.put(x)
    d.launch(K_RELU, 1, 32, p64(dx), i32(9))
    want = np.array([1.5, 0, 0, 0, 0, np.inf, 0, 3e-45, 0, 7.0], F32)
    np.testing.assert_array_equal(bits(d.get(dx, F32, 10)), bits(want))


def ref_pool(x: np.ndarray, c: int, h: int, w: int) -> np.ndarray:
    oh, ow = h // 2, w // 2
    out = np.empty(c * oh * ow, dtype=F32)
    for ch in range(c):
        for y in range(oh):
            for xx in range(ow):
                base = (ch * h + 2 * y) * w + 2 * xx
                m = x[base]
                for off in (1, w, w + 1):
                    if x[base + off] > m:
                        m = x[base + off]
                out[(ch * oh + y) * ow + xx] = m
    return out


def test_maxpool2x2_odd_sizes_ties_and_nan() -> None:
    c, h, w = 3, 5, 7                # odd: the last row and column are dropped
    x = rng().integers(-3, 4, c * h * w).astype(F32)
    x[0], x[1] = -0.0, 0.0          # a tie of zeros keeps the first (-0)
    x[2 * w + 2] = np.nan           # a NaN first element stays; a NaN later is skipped
    x[2 * w + 5] = np.nan
    d = Device()
    dx, dout = d.put(x), d.put(np.zeros(c * 2 * 3, F32))
    d.launch(K_MAXPOOL, 1, 64, p64(dx), p64(dout), i32(c), i32(h), i32(w))
    out = d.get(dout, F32, c * 2 * 3)
    np.testing.assert_array_equal(bits(out), bits(ref_pool(x, c, h, w)))
    assert bits(out)[0] == bits(F32(-0.0))


def test_fc_bias_exact_and_partial() -> None:
    nin, nout = 300, 10
    x = rng().uniform(0, 1, nin).astype(F32)
    w = rng().uniform(-0.1, 0.1, nin * nout).astype(F32)
    b = rng().uniform(-0.1, 0.1, nout).astype(F32)
    d = Device()
    dx, dw, db = d.put(x), d.put(w), d.put(b)
    dout = d.put(np.full(nout, np.nan, F32))
    want = []
    for o in range(nout):
        acc = 0.0
        for i in range(nin):
            acc = rf(acc + rf(float(x[i]) * float(w[o * nin + i])))
        want.append(rf(acc + float(b[o])))
    d.launch(K_FC, 1, 4, p64(dx), p64(dw), p64(db), p64(dout), i32(nin), i32(nout))
    out = d.get(dout, F32, nout)
    np.testing.assert_array_equal(bits(out[:4]), bits(want[:4]))
    assert np.isnan(out[4:]).all()
    d.launch(K_FC, 1, 256, p64(dx), p64(dw), p64(db), p64(dout), i32(nin), i32(nout))
    np.testing.assert_array_equal(bits(d.get(dout, F32, nout)), bits(want))


def test_fc_bias_zero_inputs_give_the_bias() -> None:
    d = Device()
    b = np.array([0.25, -0.0], F32)
    dw, db, dout = d.put(np.zeros(1, F32)), d.put(b), d.put(np.ones(2, F32))
    d.launch(K_FC, 1, 32, p64(0), p64(dw), p64(db), p64(dout), i32(0), i32(2))
    # 0 + -0 = +0: the sum starts at +0, as in the kernel.
    np.testing.assert_array_equal(bits(d.get(dout, F32, 2)), bits([0.25, 0.0]))


# -------------------------------------- the examples' host flows, against GPU output
#
# Each function below replays one example's main() on the emu kernels and returns what
# the program prints. The expected text is what the programs printed on an NVIDIA H200
# (sm_90 code, CUDA 13.0, driver 580); identical output shows that the NumPy kernels
# reproduce the CUDA ones bit for bit. When an example changes, regenerate both.

def flow_vector_add() -> List[str]:
    n = 1000000
    ab = lcg_uniform(12345, 2 * n)
    d = Device()
    da, db, dc = d.put(ab[0::2]), d.put(ab[1::2]), d.put(np.zeros(n, F32))
    d.launch(K_VECTOR_ADD, blocks(n), 256, p64(da), p64(db), p64(dc), i32(n))
    return [f'vector_add: n={n} checksum={checksum(d.get(dc, F32, n)):.6f} PASS']


def flow_matmul_tiled() -> List[str]:
    m, n, k = 250, 317, 197
    ab = lcg_uniform(2024, m * k + k * n)
    d = Device()
    da, db = d.put(ab[:m * k]), d.put(ab[m * k:])
    dc = d.put(np.full(m * n, np.nan, F32))
    d.launch(K_MATMUL, (blocks(n, 16), blocks(m, 16), 1), (16, 16, 1), p64(da), p64(db),
             p64(dc), i32(m), i32(n), i32(k))
    c = d.get(dc, F32, m * n)
    return [f'matmul_tiled: M={m} N={n} K={k} checksum={checksum(c):.6f} PASS']


def flow_multistream() -> List[str]:
    chunk = 65536
    h_in = lcg_uniform(777, 4 * chunk)
    d = Device()
    d_in = [d.put(h_in[s * chunk:(s + 1) * chunk]) for s in range(4)]
    d_out = [d.put(np.zeros(chunk, F32)) for _ in range(4)]
    d_tmp = d.put(np.zeros(chunk, F32))
    lines = []
    for s in range(4):            # emu runs in issue order, which respects the event wait
        n = chunk - 1000 * s
        d.mem.view(d_out[s], 4 * chunk)[:] = 0x3F
        src = d_in[s]
        if s == 2:
            d.mem.write(d_tmp, d.mem.read(d_in[s], 4 * chunk))
            src = d_tmp
        d.launch(K_SCALE_OFFSET, blocks(n), 256, p64(src), p64(d_out[s]), i32(n),
                 f32(rf(0.25 + 0.5 * s)), f32(rf(1.5 + s)))
        if s == 1:
            d.launch(K_SUBTRACT, blocks(n), 256, p64(d_out[1]), p64(d_out[0]), i32(n))
    for s in range(4):
        n = chunk - 1000 * s
        out = d.get(d_out[s], F32, chunk)
        assert (bits(out[n:]) == 0x3F3F3F3F).all()
        lines.append(f'multistream: stream {s} n={n} checksum={checksum(out[:n]):.6f} PASS')
    return lines + ['multistream: streams=4 chunk=65536 PASS']


def flow_struct_param() -> List[str]:
    n = 100000
    r = lcg_uniform(99, 11 * n)
    x, w, y0 = r[0:3 * n:3], r[1:3 * n:3], r[2:3 * n:3]
    d = Device()
    dx, dw, dy = d.put(x), d.put(w), d.put(y0)
    d.launch(K_STRUCT_AXPY, blocks(n), 256, struct.pack('<QQQif', dx, dw, dy, n, 0.75))
    lines = [f'struct_param: struct_axpy sizeof(args)=32 n={n} '
             f'checksum={checksum(d.get(dy, F32, n)):.6f} PASS']
    srcs = [r[(3 + j) * n:(4 + j) * n] for j in range(8)]
    pool = d.put(np.concatenate(srcs[:4]))
    ptrs = [pool + 4 * n * j for j in range(4)] + [d.put(s) for s in srcs[4:]]
    dst = d.put(np.zeros(n, F32))
    for count, scale in ((8, 0.5), (5, -1.25)):
        used = [p if j < count else 0 for j, p in enumerate(ptrs)]
        d.launch(K_SUM_ARRAYS, blocks(n), 256, f32(scale),
                 struct.pack('<i4x8QQi4x', count, *used, dst, n))
        lines.append(f'struct_param: sum_arrays sizeof(args)=88 count={count} n={n} '
                     f'checksum={checksum(d.get(dst, F32, n)):.6f} PASS')
    return lines + ['struct_param: PASS']


def flow_constant_memory() -> List[str]:
    n, nseg = 50000, 12
    seg_len = (n + nseg - 1) // nseg
    r = lcg_uniform(4242, 24 + n + 15)
    coeffs = (F32(0.25) * r[:16]).astype(F32)
    d = Device()
    d.mem.write(d.symbol('coeffs', 64), coeffs.tobytes())
    coeffs[8:] = F32(0.25) * r[16:24]
    d.mem.write(d.symbol('coeffs', 64) + 32, coeffs[8:].tobytes())    # the offset write
    assert (d.get(d.symbol('coeffs', 64), F32, 16) == coeffs).all()
    lines = ['constant_memory: coeffs roundtrip PASS']
    dx, dy = d.put(r[24:]), d.put(np.zeros(n, F32))
    d.launch(K_FIR16, blocks(n), 256, p64(dx), p64(dy), i32(n))
    lines.append(f'constant_memory: fir16 n={n} checksum={checksum(d.get(dy, F32, n)):.6f} PASS')
    counter = d.symbol('counter_array', 64)
    d.mem.view(counter, 64)[:] = 0xFF
    d.launch(K_SEGMENT_COUNT, 1, 32, p64(dy), i32(n), i32(seg_len), i32(nseg))
    counts = d.get(counter, np.int32, 16).tolist()
    lines.append('constant_memory: counts=' + ','.join(map(str, counts)) + ' PASS')
    d.launch(K_ADD_TO_INTS, 1, 32, p64(counter), i32(16), i32(1000))
    bumped = d.get(counter + 16, np.int32, 12).tolist()
    lines.append('constant_memory: bumped=' + ','.join(map(str, bumped)) + ' PASS')
    return lines + ['constant_memory: PASS']


# examples/cnn_model.cuh: (cin, cout, hw, pool after, weight scale) per convolution
CNN_CONVS = [(3, 8, 32, False, 0.45), (8, 8, 32, False, 0.3), (8, 8, 32, True, 0.3),
             (8, 16, 16, False, 0.3), (16, 16, 16, False, 0.2), (16, 16, 16, True, 0.2),
             (16, 16, 8, False, 0.2), (16, 16, 8, False, 0.2)]


def flow_cnn_infer(iterations: int = 3, seed: int = 1) -> List[str]:
    sizes = [s for ci, co, _, _, sc in CNN_CONVS for s in ((co * ci * 9, sc), (co, 0.1))]
    sizes += [(10240, 0.06), (10, 0.1)]
    r = lcg_uniform(20240601, sum(s for s, _ in sizes))
    weights, at = [], 0
    for size, scale in sizes:
        weights.append((F32(scale) * r[at:at + size]).astype(F32))
        at += size
    d = Device()
    dw = [d.put(w) for w in weights]
    d_in, act0, act1, scores = (d.put(np.zeros(k, F32)) for k in (3072, 8192, 8192, 10))
    act = [act0, act1]
    lines = []
    for it in range(iterations):
        image = F32(0.5) * lcg_uniform(seed * 2654435761 + it * 40503 + 12345, 3072) + F32(0.5)
        d.mem.write(d_in, image.astype(F32).tobytes())
        x, cur = d_in, 0
        for layer, (ci, co, hw, pool, _) in enumerate(CNN_CONVS):
            n, y = co * hw * hw, act[cur]
            d.launch(K_CONV, blocks(n), 256, p64(x), p64(dw[2 * layer]), p64(dw[2 * layer + 1]),
                     p64(y), i32(ci), i32(co), i32(hw), i32(hw))
            d.launch(K_RELU, blocks(n), 256, p64(y), i32(n))
            if pool:
                d.launch(K_MAXPOOL, blocks(n // 4), 256, p64(y), p64(act[1 - cur]), i32(co),
                         i32(hw), i32(hw))
                x = act[1 - cur]
            else:
                x, cur = y, 1 - cur
        d.launch(K_FC, 1, 256, p64(x), p64(dw[-2]), p64(dw[-1]), p64(scores), i32(1024), i32(10))
        s = d.get(scores, F32, 10)
        best = 0
        for k in range(10):
            if s[k] > s[best]:
                best = k
        lines.append(f'infer {it}: class={best} scores='
                     + ' '.join(f'{float(v):.5f}' for v in s))
    return lines + [f'cnn_infer: {iterations} inferences PASS']


GPU_OUTPUT: Dict[str, Tuple[str, ...]] = {
    'vector_add': (
        'vector_add: n=1000000 checksum=-791.661712 PASS',
    ),
    'matmul_tiled': (
        'matmul_tiled: M=250 N=317 K=197 checksum=-484.761941 PASS',
    ),
    'multistream': (
        'multistream: stream 0 n=65536 checksum=24738.065054 PASS',
        'multistream: stream 1 n=64536 checksum=96936.455895 PASS',
        'multistream: stream 2 n=63536 checksum=277399.058460 PASS',
        'multistream: stream 3 n=62536 checksum=491902.072369 PASS',
        'multistream: streams=4 chunk=65536 PASS',
    ),
    'struct_param': (
        'struct_param: struct_axpy sizeof(args)=32 n=100000 checksum=-19.906742 PASS',
        'struct_param: sum_arrays sizeof(args)=88 count=8 n=100000 checksum=-290.748312 PASS',
        'struct_param: sum_arrays sizeof(args)=88 count=5 n=100000 checksum=-3.886722 PASS',
        'struct_param: PASS',
    ),
    'constant_memory': (
        'constant_memory: coeffs roundtrip PASS',
        'constant_memory: fir16 n=50000 checksum=3.881000 PASS',
        'constant_memory: counts='
        '2060,2076,2068,2067,2089,2083,2041,2093,2093,2063,2071,2059,-1,-1,-1,-1 PASS',
        'constant_memory: bumped=3089,3083,3041,3093,3093,3063,3071,3059,999,999,999,999 PASS',
        'constant_memory: PASS',
    ),
    'cnn_infer': (
        'infer 0: class=9 scores='
        '0.22677 0.09448 -0.61880 0.02550 0.14963 0.10564 -0.02552 0.04578 0.12368 0.35532',
        'infer 1: class=9 scores='
        '0.19321 0.30966 -0.68201 -0.11421 0.04083 0.05991 -0.27685 0.19427 0.31974 0.33429',
        'infer 2: class=9 scores='
        '0.21479 0.18313 -0.74480 -0.11254 0.07187 0.17427 -0.00363 -0.12039 0.10314 0.30112',
        'cnn_infer: 3 inferences PASS',
    ),
    'cnn_infer 5 7': (
        'infer 0: class=7 scores='
        '-0.00252 0.04106 -0.69196 -0.25399 0.10383 -0.12558 -0.33128 0.18025 0.09511 0.11706',
        'infer 1: class=1 scores='
        '0.07697 0.31801 -0.55436 -0.17721 0.05172 0.02535 -0.04238 -0.06398 0.16278 0.23194',
        'infer 2: class=1 scores='
        '0.09881 0.23999 -0.55516 -0.16561 -0.01204 -0.12507 -0.05329 0.12847 0.03024 0.12109',
        'infer 3: class=1 scores='
        '0.20838 0.33769 -0.59874 -0.07668 0.02828 0.01714 0.03369 0.13838 -0.14433 0.30666',
        'infer 4: class=7 scores='
        '0.11976 0.01186 -0.48546 -0.04494 0.05472 0.13477 -0.17416 0.21642 -0.02475 0.17061',
        'cnn_infer: 5 inferences PASS',
    ),
}

FLOWS: Dict[str, Callable[[], List[str]]] = {
    'vector_add': flow_vector_add,
    'matmul_tiled': flow_matmul_tiled,
    'multistream': flow_multistream,
    'struct_param': flow_struct_param,
    'constant_memory': flow_constant_memory,
    'cnn_infer': flow_cnn_infer,
    'cnn_infer 5 7': lambda: flow_cnn_infer(5, 7),
}


@pytest.mark.parametrize('program', sorted(FLOWS))
def test_example_flow_prints_what_the_gpu_printed(program: str) -> None:
    assert tuple(FLOWS[program]()) == GPU_OUTPUT[program]


def test_lcg_matches_the_c_generator() -> None:
    state, want = 12345, []
    for _ in range(3000):
        state = (state * 1664525 + 1013904223) & 0xFFFFFFFF
        want.append((state >> 8) * 2.0 ** -23 - 1.0)
    np.testing.assert_array_equal(lcg_uniform(12345, 3000), np.array(want, F32))


# ------------------------------------------- registry against the compiled examples

CudaParams = Dict[str, Tuple[Tuple[Tuple[int, int], ...], Optional[int]]]


def _elf_sections(data: bytes) -> Dict[str, Tuple[int, int, int, int]]:
    """Map each section name of a little-endian ELF64 to (offset, size, link, type)."""
    if data[:4] != b'\x7fELF' or data[4] != 2 or data[5] != 1:
        raise ValueError('not a little-endian ELF64 file')
    shoff, = struct.unpack_from('<Q', data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from('<HHH', data, 0x3A)
    raw = [struct.unpack_from('<IIQQQQIIQQ', data, shoff + i * shentsize) for i in range(shnum)]
    names_off = raw[shstrndx][4]
    out: Dict[str, Tuple[int, int, int, int]] = {}
    for name, typ, _flags, _addr, off, size, link, _info, _align, _entsize in raw:
        end = data.index(b'\0', names_off + name)
        out[data[names_off + name:end].decode()] = (off, size, link, typ)
    return out


def _elf_symbols(data: bytes) -> Iterator[Tuple[str, int, int]]:
    """Yield (name, st_info, st_other) of each entry of .symtab."""
    secs = _elf_sections(data)
    if '.symtab' not in secs:
        return
    off, size, link, _ = secs['.symtab']
    strtab = list(secs.values())[link][0]
    for k in range(size // 24):
        name, info, other = struct.unpack_from('<IBB', data, off + 24 * k)
        end = data.index(b'\0', strtab + name)
        yield data[strtab + name:end].decode(), info, other


def _cubins(binary: bytes) -> Iterator[bytes]:
    """Yield the uncompressed cubins (ELF entries) in a host binary's .nv_fatbin.

    A fatbin is a sequence of containers (u32 magic 0xBA55ED50, u16 version, u16 header
    size, u64 payload size), each a sequence of entries (u16 kind: 1 PTX, 2 ELF; u16; u32
    header size; u64 payload size; ...). A compressed ELF entry does not start with the
    ELF magic and is skipped.
    """
    secs = _elf_sections(binary)
    if '.nv_fatbin' not in secs:
        return
    off, size, _, _ = secs['.nv_fatbin']
    fat = binary[off:off + size]
    pos = 0
    while pos + 16 <= len(fat):
        magic, _ver, hsize, psize = struct.unpack_from('<IHHQ', fat, pos)
        if magic != 0xBA55ED50:
            break
        entry, end = pos + hsize, pos + hsize + psize
        while entry + 16 <= end:
            kind, _, ehsize, epsize = struct.unpack_from('<HHIQ', fat, entry)
            payload = fat[entry + ehsize:entry + ehsize + epsize]
            if kind == 2 and payload[:4] == b'\x7fELF':
                yield payload
            entry += ehsize + epsize
        pos = end


def _kernel_params(cubin: bytes) -> CudaParams:
    """Map each kernel to ((offset, size) per parameter by ordinal, parameter bytes).

    Reads ``.nv.info.<kernel>``: records of (u8 format, u8 attribute, payload); format 4
    has a u16 length then the payload, format 3 a u16 value, formats 1/2 nothing more.
    Attribute 0x17 (one per parameter): u32 index, u16 ordinal, u16 offset, u32 whose bits
    18..31 are the size. Attribute 0x19: the size of the whole parameter block.
    """
    secs = _elf_sections(cubin)
    out: CudaParams = {}
    for name, info, other in _elf_symbols(cubin):
        if info & 0xF != 2 or not other & 0x10:       # STT_FUNC with STO_CUDA_ENTRY
            continue
        params: List[Tuple[int, int, int]] = []
        total: Optional[int] = None
        if '.nv.info.' + name in secs:
            off, size, _, _ = secs['.nv.info.' + name]
            blob = cubin[off:off + size]
            pos = 0
            while pos + 2 <= len(blob):
                fmt, attr = blob[pos], blob[pos + 1]
                if fmt == 4:
                    length, = struct.unpack_from('<H', blob, pos + 2)
                    if attr == 0x17:
                        _, ordinal, p_off, packed = struct.unpack_from('<IHHI', blob, pos + 4)
                        params.append((ordinal, p_off, packed >> 18))
                    pos += 4 + length
                elif fmt == 3:
                    if attr == 0x19:
                        total, = struct.unpack_from('<H', blob, pos + 2)
                    pos += 4
                else:
                    pos += 2
        out[name] = (tuple((o, s) for _, o, s in sorted(params)), total)
    return out


def _host_kernel_names(binary: bytes) -> set:
    """Name the kernels from host symbols, for fatbins without a readable cubin.

    The kernels are the ``_Z`` functions that nvcc gave a ``__device_stub_<name>``.
    """
    names = [n for n, _, _ in _elf_symbols(binary)]
    stubs = [n for n in names if '__device_stub_' in n]
    return {n for n in names if n.startswith('_Z') and '__device_stub_' not in n
            and any('__device_stub_' + n in s for s in stubs)}


def _nvcc() -> Optional[str]:
    for cand in (os.environ.get('NVCC'), shutil.which('nvcc'), '/usr/local/cuda/bin/nvcc'):
        if cand and os.path.exists(cand):
            return cand
    return None


@pytest.fixture(scope='module')
def example_binaries(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, bytes]:
    """Read the compiled examples: build/examples if up to date, else a build in tmp."""
    src = ROOT / 'examples'
    out = ROOT / 'build' / 'examples'

    def fresh(program: str) -> bool:
        binary = out / program
        return binary.is_file() and binary.stat().st_mtime >= max(
            (src / f'{program}.cu').stat().st_mtime, (src / 'Makefile').stat().st_mtime)

    if not all(fresh(p) for p in PROGRAMS):
        nvcc = _nvcc()
        if nvcc is None:
            pytest.skip('nvcc not found and build/examples missing or stale')
        out = tmp_path_factory.mktemp('examples')
        subprocess.run(['make', '-s', '-j4', '-C', str(src), f'OUT={out}', f'NVCC={nvcc}'],
                       check=True)
    return {p: (out / p).read_bytes() for p in PROGRAMS}


def test_every_example_kernel_is_registered(example_binaries: Dict[str, bytes]) -> None:
    found: Dict[str, str] = {}
    for program, binary in example_binaries.items():
        names = set()
        for cubin in _cubins(binary):
            names |= set(_kernel_params(cubin))
        if not names:
            names = _host_kernel_names(binary)
        assert names or program in KERNEL_FREE_EXAMPLES, f'no kernel found in {program}'
        for name in names:
            found[name] = program
    missing = {n: p for n, p in found.items() if n not in REGISTRY}
    assert not missing, f'kernels without an emu implementation: {missing}'
    ours = {n for n, k in REGISTRY.items() if k.run.__module__ == emu_kernels.__name__}
    assert ours <= set(found), f'registered but in no example: {ours - set(found)}'


def test_registered_layouts_match_the_cubins(example_binaries: Dict[str, bytes]) -> None:
    checked = 0
    for program, binary in example_binaries.items():
        for cubin in _cubins(binary):
            for name, (params, total) in _kernel_params(cubin).items():
                kernel = REGISTRY[name]
                assert kernel.params == params, f'{program}: {name}'
                if total is not None:
                    assert kernel.param_bytes == total, f'{program}: {name}'
                checked += 1
    if not checked:
        pytest.skip('no uncompressed cubin in the example binaries')
    assert checked >= len(EXPECTED_PARAM_BYTES)


def test_kernel_names_from_host_symbols_agree(example_binaries: Dict[str, bytes]) -> None:
    """Check that the fallback (host symbols) and the cubins name the same kernels."""
    for program, binary in example_binaries.items():
        from_cubins = set()
        for cubin in _cubins(binary):
            from_cubins |= set(_kernel_params(cubin))
        if from_cubins:
            assert _host_kernel_names(binary) == from_cubins, program
