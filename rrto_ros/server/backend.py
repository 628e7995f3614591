# Copyright 2026 rrto_ros authors. Apache-2.0.
"""What a server backend does for one session. ``cuda`` runs it on a GPU, ``emu`` on the CPU."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import List, Sequence, Tuple, Union

from rrto_ros.protocol import ops


class CudaError(Exception):
    """A CUDA error code to return to the app, with a human explanation for the logs."""

    def __init__(self, code: int, message: str = '', res: Sequence[int] = ()) -> None:
        super().__init__(message or f'CUDA error {code}')
        self.code = code
        self.res = list(res)   # results the reply still carries (a library's status)


@dataclass(frozen=True)
class DeviceInfo:
    name: str
    uuid: bytes            # 16 bytes
    total_mem: int
    attrs: Tuple[int, ...]  # value of each cudaDeviceAttr id asked for


class Backend(abc.ABC):
    """One session's device state. Methods raise CudaError on failure.

    Handles (pointers, streams, events, functions) are plain integers, returned to the app
    as they are: device pointers are the device's real addresses.
    """

    name = 'abstract'

    @abc.abstractmethod
    def device_info(self, attr_ids: Sequence[int]) -> DeviceInfo: ...

    @abc.abstractmethod
    def mem_get_info(self) -> Tuple[int, int]: ...

    @abc.abstractmethod
    def malloc(self, size: int) -> int: ...

    @abc.abstractmethod
    def free(self, ptr: int) -> None: ...

    @abc.abstractmethod
    def memcpy_htod(self, dst: int, data: memoryview, stream: int, is_async: bool) -> None: ...

    @abc.abstractmethod
    def memcpy_dtoh(self, src: int, count: int, stream: int, is_async: bool
                    ) -> Union[bytes, bytearray]: ...

    @abc.abstractmethod
    def memcpy_dtod(self, dst: int, src: int, count: int, stream: int,
                    is_async: bool) -> None: ...

    @abc.abstractmethod
    def memset(self, dst: int, value: int, count: int, stream: int, is_async: bool) -> None: ...

    @abc.abstractmethod
    def stream_create(self, flags: int, priority: int) -> int: ...

    @abc.abstractmethod
    def stream_destroy(self, stream: int) -> None: ...

    @abc.abstractmethod
    def stream_sync(self, stream: int) -> None: ...

    @abc.abstractmethod
    def stream_query(self, stream: int) -> bool: ...

    @abc.abstractmethod
    def stream_wait_event(self, stream: int, event: int, flags: int) -> None: ...

    @abc.abstractmethod
    def event_create(self, flags: int) -> int: ...

    @abc.abstractmethod
    def event_destroy(self, event: int) -> None: ...

    @abc.abstractmethod
    def event_record(self, event: int, stream: int) -> None: ...

    @abc.abstractmethod
    def event_sync(self, event: int) -> None: ...

    @abc.abstractmethod
    def event_query(self, event: int) -> bool: ...

    @abc.abstractmethod
    def event_elapsed(self, start: int, end: int) -> float: ...

    @abc.abstractmethod
    def device_sync(self) -> None: ...

    @abc.abstractmethod
    def module_load(self, image: bytes) -> object:
        """Load a fatbin; return an opaque module object."""

    @abc.abstractmethod
    def function_get(self, module: object, name: str) -> Tuple[int, List[Tuple[int, int]]]:
        """(handle, [(offset, size) per parameter]) of a kernel in a loaded module."""

    @abc.abstractmethod
    def var_get(self, module: object, name: str, size: int) -> int:
        """Device address of a ``__device__``/``__constant__`` variable."""

    @abc.abstractmethod
    def launch(self, function: int, grid: Tuple[int, int, int], block: Tuple[int, int, int],
               shared_mem: int, stream: int, params: memoryview) -> None: ...

    def bind_thread(self) -> None:
        """Make the session's device state usable from the calling thread."""

    def lib_call(self, fn, args: list) -> int:
        """Run forwarded library function ``fn`` (a forwarding.Function) with the arguments
        server/libcalls.py prepared; return the library's status."""
        raise CudaError(ops.CUDA_ERROR_NOT_SUPPORTED,
                        f'{fn.name} ({fn.lib}) cannot run on the {self.name} backend')

    # CUDA graphs: the replayer captures runs of launches once and relaunches them.
    supports_graphs = False

    def capture_begin(self) -> None:
        """Until capture_end, stream work is recorded into a graph instead of running."""
        raise NotImplementedError

    def capture_end(self) -> object:
        """Stop capturing; return an executable graph."""
        raise NotImplementedError

    def capture_abort(self) -> None:
        raise NotImplementedError

    def graph_launch(self, graph: object, stream: int) -> None:
        raise NotImplementedError

    def staging(self, nbytes: int) -> memoryview:
        """Page-locked host memory that lives as long as the backend: where captured copies
        between host and device read and write."""
        raise NotImplementedError

    def capture_htod(self, dst: int, src: memoryview) -> None:
        """While capturing: copy staging memory ``src`` to ``dst`` (when the graph runs)."""
        raise NotImplementedError

    def capture_dtoh(self, dst: memoryview, src: int) -> None:
        """While capturing: copy from ``src`` into staging memory ``dst``."""
        raise NotImplementedError

    @abc.abstractmethod
    def reset(self) -> None:
        """cudaDeviceReset: free everything the session holds, keep the session."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release every resource of the session."""


def make_backend(kind: str, device: int = 0) -> Backend:
    """Create a session backend by name; raises ValueError naming the valid choices."""
    if kind == 'emu':
        from rrto_ros.server.emu_backend import EmuBackend
        return EmuBackend()
    if kind == 'cuda':
        from rrto_ros.server.cuda_backend import CudaBackend
        return CudaBackend(device)
    raise ValueError(f"unknown backend {kind!r}: choose 'cuda' (a GPU) or 'emu' (CPU stand-in)")


class BackendUnavailable(Exception):
    """The backend asked for cannot run here; the message says why and what to do."""


@dataclass(frozen=True)
class GpuProbe:
    """Whether the cuda backend can run here, and why (or why not), in one line."""

    ok: bool
    reason: str


def probe_gpu(device: int = 0) -> GpuProbe:
    """Look for cuda-python and a GPU the way the cuda backend will use them."""
    try:
        from cuda.bindings import driver
    except ImportError as e:
        return GpuProbe(False, f'cuda-python is not installed in this Python ({e}); '
                               '`pip install cuda-bindings` (requirements.txt has it)')
    try:
        err, = driver.cuInit(0)
        if err != driver.CUresult.CUDA_SUCCESS:
            return GpuProbe(False, f'the CUDA driver has no usable GPU here (cuInit: '
                                   f'{err.name}); check the driver with nvidia-smi')
        err, n = driver.cuDeviceGetCount()
        if err != driver.CUresult.CUDA_SUCCESS or n == 0:
            return GpuProbe(False, 'the CUDA driver sees no GPU here')
        if not 0 <= device < n:
            return GpuProbe(False, f'device {device} does not exist (this machine has {n} '
                                   f'GPU{"s" if n > 1 else ""}: device 0..{n - 1})')
        err, dev = driver.cuDeviceGet(device)
        err, name = driver.cuDeviceGetName(256, dev)
        err, version = driver.cuDriverGetVersion()
    except Exception as e:  # no driver library, or a broken driver install
        what = 'no NVIDIA driver (libcuda) here' if 'NotFound' in type(e).__name__ else \
            'the CUDA driver failed'
        return GpuProbe(False, f'{what} ({type(e).__name__}: {e})')
    name = name.split(b'\0', 1)[0].decode(errors='replace')
    return GpuProbe(True, f'{name} (device {device} of {n}), driver CUDA '
                          f'{version // 1000}.{version % 1000 // 10}')


def choose_backend(requested: str, device: int = 0) -> Tuple[str, str]:
    """The backend to run and why: ``requested`` is 'auto' (or ''), 'cuda' or 'emu'.

    'auto' takes cuda when a GPU is usable here, else emu, and says why; 'cuda' without a
    usable GPU raises BackendUnavailable (a server that announces cuda and then refuses
    every session helps nobody).
    """
    if requested == 'emu':
        return 'emu', 'asked for (a CPU stand-in: kernels run only where a NumPy version exists)'
    if requested not in ('auto', '', 'cuda'):
        raise BackendUnavailable(f"unknown backend {requested!r}: choose 'cuda' (a GPU), 'emu' "
                                 "(CPU stand-in) or 'auto'")
    gpu = probe_gpu(device)
    if gpu.ok:
        return 'cuda', ('asked for: ' if requested == 'cuda' else 'found ') + gpu.reason
    if requested == 'cuda':
        raise BackendUnavailable(f'backend cuda cannot run here: {gpu.reason}. Or choose the '
                                 'emu backend (a CPU stand-in for machines without a GPU).')
    return 'emu', f'no GPU to use: {gpu.reason}; emu is a CPU stand-in'
