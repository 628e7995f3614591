# Copyright 2026 rrto_ros authors. Apache-2.0.
"""The ``emu`` backend: a CPU stand-in for a GPU, for machines without one (CI, laptops).

Device memory is host memory at fake device addresses (EmuMemory). Work runs in order at
the time it is issued, so streams and events only keep their bookkeeping. A kernel runs
only if a NumPy implementation is registered for its mangled name; any other is a clear
error naming the kernel.
"""

from __future__ import annotations

import itertools
import time
from typing import Dict, List, Optional, Sequence, Tuple

from rrto_ros.protocol import ops
from rrto_ros.server import emu_kernels  # noqa: F401  (registers the kernels)
from rrto_ros.server import emu_unknown
from rrto_ros.server.backend import Backend
from rrto_ros.server.backend import CudaError
from rrto_ros.server.backend import DeviceInfo
from rrto_ros.server.emu_kernel import EmuKernel
from rrto_ros.server.emu_kernel import EmuLaunch
from rrto_ros.server.emu_kernel import REGISTRY
from rrto_ros.server.emu_libraries import EmuLibraries
from rrto_ros.server.emu_memory import EmuFault
from rrto_ros.server.emu_memory import EmuMemory

# cudaDeviceAttr -> value of the emulated device (sm_90-like limits).
EMU_ATTRS = {
    1: 1024, 2: 1024, 3: 1024, 4: 64, 5: 2147483647, 6: 65535, 7: 65535, 8: 49152,
    9: 65536, 10: 32, 11: 2147483647, 12: 65536, 14: 512, 16: 4, 18: 0, 19: 1, 31: 1,
    32: 0, 33: 0, 34: 0, 37: 64, 38: 4 << 20, 39: 2048, 40: 1, 41: 1, 50: 0, 75: 9, 76: 0,
    78: 1, 81: 233472, 82: 65536, 83: 0, 95: 0, 97: 232448, 106: 32, 111: 1024,
}
EMU_CAPACITY = 4 << 30
SPECIAL_STREAMS = (0, 1, 2)   # default (legacy), cudaStreamLegacy, cudaStreamPerThread


class EmuModule:
    def __init__(self, image: bytes) -> None:
        self.image = image
        self.globals: Dict[str, int] = {}
        self.layouts: Optional[Dict[str, list]] = None   # emu_unknown (test scaffolding)


class EmuBackend(Backend):
    name = 'emu'

    def __init__(self) -> None:
        self.mem = EmuMemory(EMU_CAPACITY)
        self._handles = itertools.count(0x1000, 0x10)
        self.streams: set = set()
        self.events: Dict[int, float | None] = {}
        self.functions: Dict[int, Tuple[EmuKernel, EmuModule]] = {}
        self.modules: List[EmuModule] = []
        self._libs = None   # emu_libraries.EmuLibraries, made at the first library call
        # Test scaffolding (emu_unknown): unknown kernels and library functions as no-ops.
        self.skip_unknown = emu_unknown.enabled()
        if self.skip_unknown:
            emu_unknown.warn_once('every kernel and library function without an emu version')

    # ----------------------------------------------------------- device
    def device_info(self, attr_ids: Sequence[int]) -> DeviceInfo:
        return DeviceInfo('rrto emu device (CPU, NumPy kernels)', b'rrto-emu-device\0',
                          EMU_CAPACITY, tuple(EMU_ATTRS.get(i, 0) for i in attr_ids))

    def mem_get_info(self) -> Tuple[int, int]:
        return EMU_CAPACITY - self.mem.in_use, EMU_CAPACITY

    def device_sync(self) -> None:
        pass

    # ----------------------------------------------------------- memory
    def malloc(self, size: int) -> int:
        try:
            return self.mem.alloc(size)
        except MemoryError as e:
            raise CudaError(ops.CUDA_ERROR_MEMORY_ALLOCATION, str(e)) from None

    def free(self, ptr: int) -> None:
        try:
            self.mem.free(ptr)
        except EmuFault as e:
            raise CudaError(ops.CUDA_ERROR_INVALID_VALUE, str(e)) from None

    def _access(self, fn, *args):
        try:
            return fn(*args)
        except EmuFault as e:
            raise CudaError(ops.CUDA_ERROR_INVALID_VALUE, str(e)) from None

    def memcpy_htod(self, dst: int, data: memoryview, stream: int, is_async: bool) -> None:
        self._check_stream(stream)
        self._access(self.mem.write, dst, data)

    def memcpy_dtoh(self, src: int, count: int, stream: int, is_async: bool) -> bytes:
        self._check_stream(stream)
        return self._access(self.mem.read, src, count)

    def memcpy_dtod(self, dst: int, src: int, count: int, stream: int, is_async: bool) -> None:
        self._check_stream(stream)
        data = self._access(self.mem.read, src, count)
        self._access(self.mem.write, dst, data)

    def memset(self, dst: int, value: int, count: int, stream: int, is_async: bool) -> None:
        self._check_stream(stream)
        self._access(self.mem.view, dst, count)[:] = value & 0xFF

    def lib_call(self, fn, args: list) -> int:
        if self._libs is None:
            self._libs = EmuLibraries(self.mem, self._check_stream, self.skip_unknown)
        return self._libs.call(fn, args)

    # ----------------------------------------------------------- streams and events
    def _check_stream(self, stream: int) -> None:
        if stream not in SPECIAL_STREAMS and stream not in self.streams:
            raise CudaError(ops.CUDA_ERROR_INVALID_RESOURCE_HANDLE,
                            f'stream 0x{stream:x} does not exist in this session')

    def _check_event(self, event: int) -> None:
        if event not in self.events:
            raise CudaError(ops.CUDA_ERROR_INVALID_RESOURCE_HANDLE,
                            f'event 0x{event:x} does not exist in this session')

    def stream_create(self, flags: int, priority: int) -> int:
        h = next(self._handles)
        self.streams.add(h)
        return h

    def stream_destroy(self, stream: int) -> None:
        self._check_stream(stream)
        self.streams.discard(stream)

    def stream_sync(self, stream: int) -> None:
        self._check_stream(stream)

    def stream_query(self, stream: int) -> bool:
        self._check_stream(stream)
        return True

    def stream_wait_event(self, stream: int, event: int, flags: int) -> None:
        self._check_stream(stream)
        self._check_event(event)

    def event_create(self, flags: int) -> int:
        h = next(self._handles)
        self.events[h] = None
        return h

    def event_destroy(self, event: int) -> None:
        self._check_event(event)
        del self.events[event]

    def event_record(self, event: int, stream: int) -> None:
        self._check_event(event)
        self._check_stream(stream)
        self.events[event] = time.perf_counter()

    def event_sync(self, event: int) -> None:
        self._check_event(event)

    def event_query(self, event: int) -> bool:
        self._check_event(event)
        return True

    def event_elapsed(self, start: int, end: int) -> float:
        self._check_event(start)
        self._check_event(end)
        t0, t1 = self.events[start], self.events[end]
        if t0 is None or t1 is None:
            raise CudaError(ops.CUDA_ERROR_INVALID_RESOURCE_HANDLE,
                            'cudaEventElapsedTime on an event that was never recorded')
        return (t1 - t0) * 1000.0

    # ----------------------------------------------------------- modules and kernels
    def module_load(self, image: bytes) -> object:
        self.modules.append(EmuModule(image))
        return self.modules[-1]

    def function_get(self, module: object, name: str) -> Tuple[int, List[Tuple[int, int]]]:
        kernel = REGISTRY.get(name)
        if kernel is None and self.skip_unknown:
            kernel = self._noop_kernel(module, name)
        if kernel is None:
            raise CudaError(ops.CUDA_ERROR_INVALID_DEVICE_FUNCTION,
                            f'kernel {name} has no NumPy implementation in the emu backend '
                            '(emu runs only the kernels of the example programs); run this '
                            'program against a server with --backend cuda')
        assert isinstance(module, EmuModule)
        h = next(self._handles)
        self.functions[h] = (kernel, module)
        return h, list(kernel.params)

    @staticmethod
    def _noop_kernel(module: object, name: str):
        assert isinstance(module, EmuModule)
        if module.layouts is None:
            module.layouts = emu_unknown.param_layouts(module.image)
        params = module.layouts.get(name)
        if params is None:
            return None
        return EmuKernel(name, tuple(params), lambda mem, launch: None)

    def var_get(self, module: object, name: str, size: int) -> int:
        assert isinstance(module, EmuModule)
        if name not in module.globals:
            module.globals[name] = self.malloc(size)
        return module.globals[name]

    def launch(self, function: int, grid: Tuple[int, int, int], block: Tuple[int, int, int],
               shared_mem: int, stream: int, params: memoryview) -> None:
        found = self.functions.get(function)
        if found is None:
            raise CudaError(ops.CUDA_ERROR_INVALID_DEVICE_FUNCTION,
                            f'launch of unknown function handle 0x{function:x}')
        kernel, module = found
        self._check_stream(stream)
        if len(params) < kernel.param_bytes:
            raise CudaError(ops.CUDA_ERROR_INVALID_VALUE,
                            f'{kernel.name}: {len(params)} parameter bytes, '
                            f'expected {kernel.param_bytes}')
        try:
            kernel.run(self.mem, EmuLaunch(grid, block, shared_mem, bytes(params),
                                           lambda name, size: self.var_get(module, name, size)))
        except EmuFault as e:
            raise CudaError(ops.CUDA_ERROR_ILLEGAL_ADDRESS, f'{kernel.name}: {e}') from None
        except Exception as e:  # e.g. a launch configuration the NumPy body cannot emulate
            raise CudaError(ops.CUDA_ERROR_LAUNCH_FAILURE,
                            f'{kernel.name}: {type(e).__name__}: {e}') from None

    def reset(self) -> None:
        """cudaDeviceReset: drop allocations, streams and events; modules stay loaded."""
        keep = {a for m in self.modules for a in m.globals.values()}
        for base in self.mem.allocations():
            if base not in keep:
                self.mem.free(base)
        self.streams.clear()
        self.events.clear()

    def close(self) -> None:
        self.mem = EmuMemory(0)
