# Copyright 2026 rrto_ros authors. Apache-2.0.
"""The ``emu`` backend's forwarded functions: a small NumPy cuBLAS (handles, streams,
SGEMM / DGEMM) and the runtime's device queries, so that library forwarding runs end to
end without a GPU. Any other forwarded function is a clear error naming it."""

from __future__ import annotations

import struct
from typing import Callable, Dict

import numpy as np

from rrto_ros.protocol import ops
from rrto_ros.server import emu_unknown
from rrto_ros.server.backend import CudaError
from rrto_ros.server.emu_memory import EmuFault
from rrto_ros.server.emu_memory import EmuMemory

CUBLAS_OK, CUBLAS_INVALID_VALUE, CUBLAS_EXECUTION_FAILED = 0, 7, 13
OP_N, OP_T, OP_C = 0, 1, 2
EMU_PRIORITY_RANGE = (0, -5)   # least, greatest: what an sm_90 device reports
EMU_LIMITS = {0: 1024, 1: 1 << 20, 2: 8 << 20}   # stack, printf FIFO, malloc heap


class EmuBlasHandle:
    def __init__(self) -> None:
        self.stream = 0
        self.math_mode = 0
        self.pointer_mode = 0


class EmuLibraries:
    def __init__(self, mem: EmuMemory, check_stream: Callable[[int], None],
                 skip_unknown: bool = False) -> None:
        self.mem = mem
        self.skip_unknown = skip_unknown   # test scaffolding: emu_unknown
        self.check_stream = check_stream
        self.limits = dict(EMU_LIMITS)

    def call(self, fn, args: list) -> int:
        impl = _IMPL.get(fn.name)
        if impl is None and self.skip_unknown:
            return emu_unknown.lib_noop(fn, args)
        if impl is None:
            raise CudaError(ops.CUDA_ERROR_NOT_SUPPORTED, f'{fn.name} has no emu version: run '
                            'the server with the cuda backend (a GPU) for it')
        try:
            return impl(self, *args)
        except EmuFault as e:
            if fn.lib == 'cudart':
                return ops.CUDA_ERROR_ILLEGAL_ADDRESS
            raise CudaError(ops.CUDA_ERROR_ILLEGAL_ADDRESS, f'{fn.name}: {e}') from None

    # ----------------------------------------------------------- cuBLAS
    def create(self, holder) -> int:
        holder.value = EmuBlasHandle()
        return CUBLAS_OK

    def destroy(self, handle) -> int:
        return CUBLAS_OK if handle is not None else 1

    def set_stream(self, handle, stream: int) -> int:
        self.check_stream(stream)
        handle.stream = stream
        return CUBLAS_OK

    def set_math_mode(self, handle, mode: int) -> int:
        handle.math_mode = mode
        return CUBLAS_OK

    def set_pointer_mode(self, handle, mode: int) -> int:
        handle.pointer_mode = mode
        return CUBLAS_OK

    def set_workspace(self, handle, ptr: int, size: int) -> int:
        return CUBLAS_OK

    def gemm(self, dtype, handle, ta: int, tb: int, m: int, n: int, k: int, alpha, a: int,
             lda: int, b: int, ldb: int, beta, c: int, ldc: int) -> int:
        """Column-major C = alpha op(A) op(B) + beta C, as cuBLAS defines it."""
        if handle is None:
            return 1
        if min(m, n, k) < 0 or ta not in (OP_N, OP_T, OP_C) or tb not in (OP_N, OP_T, OP_C):
            return CUBLAS_INVALID_VALUE
        if handle.pointer_mode:   # device pointer mode: alpha/beta live on the device
            return CUBLAS_INVALID_VALUE
        code = 'f' if dtype == np.float32 else 'd'
        al, = struct.unpack('<' + code, alpha)
        be, = struct.unpack('<' + code, beta)
        ra, ca = (m, k) if ta == OP_N else (k, m)
        rb, cb = (k, n) if tb == OP_N else (n, k)
        if lda < max(1, ra) or ldb < max(1, rb) or ldc < max(1, m):
            return CUBLAS_INVALID_VALUE
        if m == 0 or n == 0:
            return CUBLAS_OK
        A = self._matrix(a, dtype, ra, ca, lda)
        B = self._matrix(b, dtype, rb, cb, ldb)
        C = self._matrix(c, dtype, m, n, ldc)
        opa = A if ta == OP_N else A.T
        opb = B if tb == OP_N else B.T
        prod = opa @ opb if k else np.zeros((m, n), dtype)
        C[...] = (dtype(al) * prod + (dtype(be) * C if be != 0 else 0)).astype(dtype)
        return CUBLAS_OK

    def _matrix(self, addr: int, dtype, rows: int, cols: int, ld: int) -> np.ndarray:
        """A column-major view: element (i, j) at addr + (i + j * ld) * size."""
        count = ld * (cols - 1) + rows
        flat = self.mem.array(addr, dtype, count)
        return np.lib.stride_tricks.as_strided(
            flat, shape=(rows, cols), strides=(flat.itemsize, ld * flat.itemsize))

    # ----------------------------------------------------------- the runtime
    def priority_range(self, least: bytearray, greatest: bytearray) -> int:
        struct.pack_into('<i', least, 0, EMU_PRIORITY_RANGE[0])
        struct.pack_into('<i', greatest, 0, EMU_PRIORITY_RANGE[1])
        return 0

    def get_limit(self, out: bytearray, limit: int) -> int:
        if limit not in self.limits:
            return ops.CUDA_ERROR_NOT_SUPPORTED
        struct.pack_into('<Q', out, 0, self.limits[limit])
        return 0

    def set_limit(self, limit: int, value: int) -> int:
        if limit not in self.limits:
            return ops.CUDA_ERROR_NOT_SUPPORTED
        self.limits[limit] = value
        return 0


_IMPL: Dict[str, Callable[..., int]] = {
    'cublasCreate_v2': EmuLibraries.create,
    'cublasDestroy_v2': EmuLibraries.destroy,
    'cublasSetStream_v2': EmuLibraries.set_stream,
    'cublasSetMathMode': EmuLibraries.set_math_mode,
    'cublasSetPointerMode_v2': EmuLibraries.set_pointer_mode,
    'cublasSetWorkspace_v2': EmuLibraries.set_workspace,
    'cublasSgemm_v2': lambda self, *a: EmuLibraries.gemm(self, np.float32, *a),
    'cublasDgemm_v2': lambda self, *a: EmuLibraries.gemm(self, np.float64, *a),
    'cudaDeviceGetStreamPriorityRange': EmuLibraries.priority_range,
    'cudaDeviceGetLimit': EmuLibraries.get_limit,
    'cudaDeviceSetLimit': EmuLibraries.set_limit,
    'cudaProfilerStart': lambda self: 0,   # no profiler attached: a no-op, as on a GPU
    'cudaProfilerStop': lambda self: 0,
}
