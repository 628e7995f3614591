# Copyright 2026 rrto_ros authors. Apache-2.0.
"""Device memory of the ``emu`` backend: host memory behind fake device addresses.

Addresses look like real device pointers (64-bit, 256-byte aligned, far from the
client's own heap) so that everything that carries device pointers -- kernel parameter
buffers, structs passed by value -- behaves as on a GPU.
"""

from __future__ import annotations

import bisect
from typing import Dict, List, Tuple

import numpy as np

EMU_HEAP_BASE = 0x7E00_0000_0000
ALIGNMENT = 256


class EmuFault(Exception):
    """An access outside every live allocation (a GPU would report an illegal address)."""


class EmuMemory:
    """A flat fake device address space of NumPy byte buffers."""

    def __init__(self, capacity: int = 8 << 30) -> None:
        self.capacity = capacity
        self._next = EMU_HEAP_BASE
        self._bases: List[int] = []
        self._buffers: Dict[int, np.ndarray] = {}
        self._sizes: Dict[int, int] = {}
        self.in_use = 0

    def alloc(self, size: int) -> int:
        """Allocate ``size`` bytes (zero-filled) and return the fake device address."""
        if size < 0:
            raise ValueError(f'negative allocation size {size}')
        if self.in_use + size > self.capacity:
            raise MemoryError(f'emu device memory exhausted ({self.in_use} + {size} bytes '
                              f'> capacity {self.capacity})')
        addr = self._next
        self._next += max(ALIGNMENT, (size + ALIGNMENT - 1) // ALIGNMENT * ALIGNMENT)
        bisect.insort(self._bases, addr)
        self._buffers[addr] = np.zeros(max(size, 1), dtype=np.uint8)
        self._sizes[addr] = size
        self.in_use += size
        return addr

    def free(self, addr: int) -> None:
        """Free an allocation by its base address; freeing 0 is a no-op as in CUDA."""
        if addr == 0:
            return
        buf = self._buffers.pop(addr, None)
        if buf is None:
            raise EmuFault(f'free of 0x{addr:x}, which is not the start of an allocation')
        self._bases.remove(addr)
        self.in_use -= self._sizes.pop(addr)

    def find(self, addr: int) -> Tuple[int, np.ndarray] | None:
        """Return ``(base, buffer)`` of the allocation holding ``addr``, or None."""
        i = bisect.bisect_right(self._bases, addr) - 1
        if i < 0:
            return None
        base = self._bases[i]
        buf = self._buffers[base]
        if addr - base >= buf.size:
            return None
        return base, buf

    def view(self, addr: int, nbytes: int) -> np.ndarray:
        """Writable uint8 view of ``nbytes`` at ``addr``; raises EmuFault when out of bounds."""
        if nbytes == 0:   # CUDA accepts empty copies at any address
            return np.zeros(0, dtype=np.uint8)
        found = self.find(addr)
        if found is None:
            raise EmuFault(f'address 0x{addr:x} is not inside any allocation')
        base, buf = found
        off = addr - base
        if off + nbytes > buf.size:
            raise EmuFault(f'access of {nbytes} bytes at 0x{addr:x} runs past the end of '
                           f'the {buf.size}-byte allocation at 0x{base:x}')
        return buf[off:off + nbytes]

    def array(self, addr: int, dtype: np.dtype | str, count: int) -> np.ndarray:
        """Writable typed view of ``count`` elements of ``dtype`` at ``addr``."""
        dt = np.dtype(dtype)
        return self.view(addr, dt.itemsize * count).view(dt)

    def write(self, addr: int, data: bytes | memoryview) -> None:
        """Copy host bytes to device memory."""
        src = np.frombuffer(data, dtype=np.uint8)
        self.view(addr, src.size)[:] = src

    def read(self, addr: int, nbytes: int) -> bytes:
        """Copy device memory to host bytes."""
        return self.view(addr, nbytes).tobytes()

    def allocations(self) -> List[int]:
        """Base addresses of the live allocations."""
        return list(self._bases)

    def is_device(self, addr: int) -> bool:
        return self.find(addr) is not None
