# Copyright 2026 rrto_ros authors. Apache-2.0.
"""The ``cuda`` backend: one session's work on a real GPU through cuda-python's driver API.

Each session gets its own CUDA context (created on, and only used from, the session's
thread). Modules load from the app's shipped fatbins, kernel parameter layouts come from
``cuFuncGetParamInfo``, and a launch passes the app's flat parameter buffer as is
(``CU_LAUNCH_PARAM_BUFFER_POINTER``), so device pointers inside by-value structs arrive
untouched: they are this GPU's real addresses.
"""

from __future__ import annotations

import ctypes
import threading
from typing import Dict, List, Sequence, Tuple

from cuda.bindings import driver as cu
import numpy as np

from rrto_ros.protocol import ops
from rrto_ros.server.backend import Backend
from rrto_ros.server.backend import CudaError
from rrto_ros.server.backend import DeviceInfo

OK = cu.CUresult.CUDA_SUCCESS
NOT_READY = cu.CUresult.CUDA_ERROR_NOT_READY
LAUNCH_PARAM_END, LAUNCH_PARAM_BUFFER_POINTER, LAUNCH_PARAM_BUFFER_SIZE = 0, 1, 2


def _check(result, what: str):
    """Unwrap a cuda-python result tuple, raising CudaError with the driver's words."""
    err = result[0] if isinstance(result, tuple) else result
    if err != OK:
        _, name = cu.cuGetErrorName(err)
        _, text = cu.cuGetErrorString(err)
        n = name.decode() if isinstance(name, bytes) else str(name)
        t = text.decode() if isinstance(text, bytes) else str(text)
        raise CudaError(int(err), f'{what}: {n} ({t})')
    if not isinstance(result, tuple):
        return None
    return result[1] if len(result) == 2 else result[1:]


_bound = threading.local()    # the context each thread last made current through bind_thread


def _host_addr(buf) -> Tuple[int, np.ndarray]:
    arr = np.frombuffer(buf, dtype=np.uint8)
    return arr.ctypes.data, arr


class CudaBackend(Backend):
    name = 'cuda'

    def __init__(self, device: int = 0) -> None:
        _check(cu.cuInit(0), 'cuInit')
        self.dev = _check(cu.cuDeviceGet(device), f'cuDeviceGet({device})')
        try:
            self.ctx = _check(cu.cuCtxCreate(None, 0, self.dev), 'cuCtxCreate')
        except TypeError:   # bindings before CUDA 12.5 take (flags, dev)
            self.ctx = _check(cu.cuCtxCreate(0, self.dev), 'cuCtxCreate')
        self.allocs: Dict[int, int] = {}
        self.streams: Dict[int, cu.CUstream] = {}
        self.events: Dict[int, cu.CUevent] = {}
        self.functions: Dict[int, cu.CUfunction] = {}
        self.modules: List[cu.CUmodule] = []
        self.graphs: List[tuple] = []
        self.staged: List[int] = []          # page-locked host buffers (cuMemHostAlloc)
        self._capture_stream = _check(cu.cuStreamCreate(
            cu.CUstream_flags.CU_STREAM_NON_BLOCKING), 'cuStreamCreate')
        self._capturing = False
        self._libs = None   # cuda_libraries.CudaLibraries, made at the first library call

    # ----------------------------------------------------------- helpers
    def _stream(self, handle: int) -> cu.CUstream:
        if self._capturing:   # everything captured goes to the private capture stream
            return self._capture_stream
        if handle in (0, 1, 2):   # default, cudaStreamLegacy, cudaStreamPerThread
            return cu.CUstream(handle)
        s = self.streams.get(handle)
        if s is None:
            raise CudaError(ops.CUDA_ERROR_INVALID_RESOURCE_HANDLE,
                            f'stream 0x{handle:x} does not exist in this session')
        return s

    def _event(self, handle: int) -> cu.CUevent:
        e = self.events.get(handle)
        if e is None:
            raise CudaError(ops.CUDA_ERROR_INVALID_RESOURCE_HANDLE,
                            f'event 0x{handle:x} does not exist in this session')
        return e

    # ----------------------------------------------------------- device
    def device_info(self, attr_ids: Sequence[int]) -> DeviceInfo:
        name = _check(cu.cuDeviceGetName(256, self.dev), 'cuDeviceGetName')
        name = name.split(b'\0', 1)[0].decode(errors='replace')
        uuid = _check(cu.cuDeviceGetUuid(self.dev), 'cuDeviceGetUuid')
        total = _check(cu.cuDeviceTotalMem(self.dev), 'cuDeviceTotalMem')
        values = []
        for i in attr_ids:
            try:
                err, v = cu.cuDeviceGetAttribute(cu.CUdevice_attribute(i), self.dev)
            except ValueError:   # not an attribute id of this driver
                err, v = None, 0
            values.append(int(v) if err == OK else 0)
        return DeviceInfo(name, bytes(uuid.bytes)[:16], int(total), tuple(values))

    def mem_get_info(self) -> Tuple[int, int]:
        free, total = _check(cu.cuMemGetInfo(), 'cuMemGetInfo')
        return int(free), int(total)

    def device_sync(self) -> None:
        _check(cu.cuCtxSynchronize(), 'cuCtxSynchronize')

    # ----------------------------------------------------------- memory
    def malloc(self, size: int) -> int:
        ptr = int(_check(cu.cuMemAlloc(max(size, 1)), f'cuMemAlloc({size})'))
        self.allocs[ptr] = size
        return ptr

    def free(self, ptr: int) -> None:
        _check(cu.cuMemFree(ptr), f'cuMemFree(0x{ptr:x})')
        self.allocs.pop(ptr, None)

    def memcpy_htod(self, dst: int, data: memoryview, stream: int, is_async: bool) -> None:
        addr, keep = _host_addr(data)
        if is_async:   # pageable source: staged before the call returns
            _check(cu.cuMemcpyHtoDAsync(dst, addr, len(keep), self._stream(stream)),
                   'cuMemcpyHtoDAsync')
        else:
            _check(cu.cuMemcpyHtoD(dst, addr, len(keep)), 'cuMemcpyHtoD')

    def memcpy_dtoh(self, src: int, count: int, stream: int, is_async: bool) -> bytearray:
        out = bytearray(count)   # a fresh buffer each call: it is sent without a copy
        addr, keep = _host_addr(out)
        if is_async:   # pageable destination: returns once the copy is complete
            _check(cu.cuMemcpyDtoHAsync(addr, src, count, self._stream(stream)),
                   'cuMemcpyDtoHAsync')
        else:
            _check(cu.cuMemcpyDtoH(addr, src, count), 'cuMemcpyDtoH')
        return out

    def memcpy_dtod(self, dst: int, src: int, count: int, stream: int, is_async: bool) -> None:
        if is_async or self._capturing:
            _check(cu.cuMemcpyDtoDAsync(dst, src, count, self._stream(stream)),
                   'cuMemcpyDtoDAsync')
        else:
            _check(cu.cuMemcpyDtoD(dst, src, count), 'cuMemcpyDtoD')

    def memset(self, dst: int, value: int, count: int, stream: int, is_async: bool) -> None:
        _check(cu.cuMemsetD8Async(dst, value & 0xFF, count, self._stream(stream)),
               'cuMemsetD8Async')

    # ----------------------------------------------------------- streams and events
    def stream_create(self, flags: int, priority: int) -> int:
        s = _check(cu.cuStreamCreateWithPriority(flags, priority), 'cuStreamCreate')
        self.streams[int(s)] = s
        return int(s)

    def stream_destroy(self, stream: int) -> None:
        _check(cu.cuStreamDestroy(self._stream(stream)), 'cuStreamDestroy')
        self.streams.pop(stream, None)

    def stream_sync(self, stream: int) -> None:
        _check(cu.cuStreamSynchronize(self._stream(stream)), 'cuStreamSynchronize')

    def stream_query(self, stream: int) -> bool:
        r = cu.cuStreamQuery(self._stream(stream))
        if r[0] == NOT_READY:
            return False
        _check(r, 'cuStreamQuery')
        return True

    def stream_wait_event(self, stream: int, event: int, flags: int) -> None:
        _check(cu.cuStreamWaitEvent(self._stream(stream), self._event(event), flags),
               'cuStreamWaitEvent')

    def event_create(self, flags: int) -> int:
        e = _check(cu.cuEventCreate(flags), 'cuEventCreate')
        self.events[int(e)] = e
        return int(e)

    def event_destroy(self, event: int) -> None:
        _check(cu.cuEventDestroy(self._event(event)), 'cuEventDestroy')
        self.events.pop(event, None)

    def event_record(self, event: int, stream: int) -> None:
        _check(cu.cuEventRecord(self._event(event), self._stream(stream)), 'cuEventRecord')

    def event_sync(self, event: int) -> None:
        _check(cu.cuEventSynchronize(self._event(event)), 'cuEventSynchronize')

    def event_query(self, event: int) -> bool:
        r = cu.cuEventQuery(self._event(event))
        if r[0] == NOT_READY:
            return False
        _check(r, 'cuEventQuery')
        return True

    def event_elapsed(self, start: int, end: int) -> float:
        return float(_check(cu.cuEventElapsedTime(self._event(start), self._event(end)),
                            'cuEventElapsedTime'))

    # ----------------------------------------------------------- modules and kernels
    def module_load(self, image: bytes) -> object:
        module = _check(cu.cuModuleLoadData(image), 'cuModuleLoadData')
        self.modules.append(module)
        return module

    def function_get(self, module: object, name: str) -> Tuple[int, List[Tuple[int, int]]]:
        f = _check(cu.cuModuleGetFunction(module, name.encode()),
                   f'cuModuleGetFunction({name})')
        layout = []
        while True:
            r = cu.cuFuncGetParamInfo(f, len(layout))
            if r[0] != OK:
                break   # CUDA_ERROR_INVALID_VALUE past the last parameter
            layout.append((int(r[1]), int(r[2])))
        self.functions[int(f)] = f
        return int(f), layout

    def var_get(self, module: object, name: str, size: int) -> int:
        ptr, nbytes = _check(cu.cuModuleGetGlobal(module, name.encode()),
                             f'cuModuleGetGlobal({name})')
        if size and int(nbytes) < size:
            raise CudaError(ops.CUDA_ERROR_INVALID_VALUE,
                            f'{name} is {int(nbytes)} bytes on the device, the app says {size}')
        return int(ptr)

    def launch(self, function: int, grid: Tuple[int, int, int], block: Tuple[int, int, int],
               shared_mem: int, stream: int, params: memoryview) -> None:
        f = self._function(function)
        n = len(params)
        if n:
            buf = ctypes.create_string_buffer(bytes(params), n)
            size = ctypes.c_size_t(n)
            extra = (ctypes.c_void_p * 5)(LAUNCH_PARAM_BUFFER_POINTER, ctypes.addressof(buf),
                                          LAUNCH_PARAM_BUFFER_SIZE, ctypes.addressof(size),
                                          LAUNCH_PARAM_END)
            extra_addr = ctypes.addressof(extra)
        else:
            extra_addr = 0
        _check(cu.cuLaunchKernel(f, *grid, *block, shared_mem, self._stream(stream), 0,
                                 extra_addr), 'cuLaunchKernel')

    def lib_call(self, fn, args: list) -> int:
        if self._libs is None:
            from rrto_ros.server.cuda_libraries import CudaLibraries   # needs _check above
            self._libs = CudaLibraries(self._stream, self._function)
        return self._libs.call(fn, args)

    def _function(self, handle: int) -> cu.CUfunction:
        f = self.functions.get(handle)
        if f is None:
            raise CudaError(ops.CUDA_ERROR_INVALID_DEVICE_FUNCTION,
                            f'unknown function handle 0x{handle:x}')
        return f

    def bind_thread(self) -> None:
        if getattr(_bound, 'ctx', None) is self.ctx:   # already current on this thread
            return
        _check(cu.cuCtxSetCurrent(self.ctx), 'cuCtxSetCurrent')
        _bound.ctx = self.ctx

    # ----------------------------------------------------------- graphs
    supports_graphs = True

    def capture_begin(self) -> None:
        _check(cu.cuStreamBeginCapture(
            self._capture_stream, cu.CUstreamCaptureMode.CU_STREAM_CAPTURE_MODE_THREAD_LOCAL),
            'cuStreamBeginCapture')
        self._capturing = True

    def capture_end(self) -> object:
        self._capturing = False
        graph = _check(cu.cuStreamEndCapture(self._capture_stream), 'cuStreamEndCapture')
        exe = _check(cu.cuGraphInstantiate(graph, 0), 'cuGraphInstantiate')
        self.graphs.append((graph, exe))
        return exe

    def capture_abort(self) -> None:
        if self._capturing:
            self._capturing = False
            r = cu.cuStreamEndCapture(self._capture_stream)
            if r[0] == OK and r[1] is not None:
                cu.cuGraphDestroy(r[1])

    def graph_launch(self, graph: object, stream: int) -> None:
        _check(cu.cuGraphLaunch(graph, self._stream(stream)), 'cuGraphLaunch')

    def staging(self, nbytes: int) -> memoryview:
        addr = _check(cu.cuMemHostAlloc(max(1, nbytes), 0), 'cuMemHostAlloc')
        self.staged.append(addr)
        return memoryview((ctypes.c_char * max(1, nbytes)).from_address(addr)).cast('B')[:nbytes]

    def capture_htod(self, dst: int, src: memoryview) -> None:
        _check(cu.cuMemcpyHtoDAsync(dst, _host_addr(src)[0], src.nbytes, self._capture_stream),
               'cuMemcpyHtoDAsync')

    def capture_dtoh(self, dst: memoryview, src: int) -> None:
        _check(cu.cuMemcpyDtoHAsync(_host_addr(dst)[0], src, dst.nbytes, self._capture_stream),
               'cuMemcpyDtoHAsync')

    # ----------------------------------------------------------- teardown
    def reset(self) -> None:
        """cudaDeviceReset: drop allocations, streams and events; loaded modules stay, so
        kernel handles the app already holds remain valid."""
        cu.cuCtxSynchronize()
        for s in self.streams.values():
            cu.cuStreamDestroy(s)
        for e in self.events.values():
            cu.cuEventDestroy(e)
        for p in self.allocs:
            cu.cuMemFree(p)
        self.streams.clear()
        self.events.clear()
        self.allocs.clear()

    def close(self) -> None:
        for graph, exe in self.graphs:
            cu.cuGraphExecDestroy(exe)
            cu.cuGraphDestroy(graph)
        self.graphs.clear()
        for addr in self.staged:
            cu.cuMemFreeHost(addr)
        self.staged.clear()
        if self.ctx is not None:
            cu.cuCtxDestroy(self.ctx)
            self.ctx = None
