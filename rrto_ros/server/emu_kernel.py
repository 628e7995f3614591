# Copyright 2026 rrto_ros authors. Apache-2.0.
"""What an ``emu`` kernel is: a NumPy function registered under a mangled kernel name.

The emu backend can only run kernels it has a NumPy implementation for; the registry maps
the mangled device-function name (as ``__cudaRegisterFunction`` reports it) to the kernel's
parameter layout (what ``cuFuncGetParamInfo`` would report on a GPU) and its body.
"""

from __future__ import annotations

from dataclasses import dataclass
import struct
from typing import Callable, Dict, Optional, Sequence, Tuple

from rrto_ros.server.emu_memory import EmuMemory

Dim3 = Tuple[int, int, int]


@dataclass(frozen=True)
class EmuLaunch:
    """One kernel launch as the emu backend receives it."""

    grid: Dim3
    block: Dim3
    shared_mem: int
    params: bytes
    # (device name, size) -> address of a __constant__/__device__ variable of the kernel's
    # module: kernels reach those by name, not through a parameter.
    symbol: Optional[Callable[[str, int], int]] = None

    def unpack(self, fmt: str, offset: int = 0) -> tuple:
        """Unpack little-endian parameters, e.g. ``launch.unpack('QQQi')``."""
        return struct.unpack_from('<' + fmt, self.params, offset)


@dataclass(frozen=True)
class EmuKernel:
    """A kernel the emu backend can run."""

    name: str
    params: Tuple[Tuple[int, int], ...]   # (offset, size) per parameter
    run: Callable[[EmuMemory, EmuLaunch], None]

    @property
    def param_bytes(self) -> int:
        return max((o + s for o, s in self.params), default=0)


def layout(sizes: Sequence[Tuple[int, int]]) -> Tuple[Tuple[int, int], ...]:
    """Offsets for parameters given as (size, alignment), laid out as the C ABI does."""
    out = []
    off = 0
    for size, align in sizes:
        off = (off + align - 1) // align * align
        out.append((off, size))
        off += size
    return tuple(out)


REGISTRY: Dict[str, EmuKernel] = {}
KernelBody = Callable[[EmuMemory, EmuLaunch], None]


def emu_kernel(name: str, params: Sequence[Tuple[int, int]]
               ) -> Callable[[KernelBody], KernelBody]:
    """Register a NumPy kernel body under its mangled name; params are (size, align)."""
    def deco(fn: KernelBody) -> KernelBody:
        if name in REGISTRY:
            raise ValueError(f'emu kernel {name} registered twice')
        REGISTRY[name] = EmuKernel(name, layout(params), fn)
        return fn
    return deco
