# Copyright 2026 rrto_ros authors. Apache-2.0.
"""The device memory one session may name: its allocations and its modules' variables.

Every address a request carries (copies, memsets, frees, and the same in replay templates)
is checked here before the backend sees it, so that a session can neither read nor write
nor free another session's memory through the API; a foreign or stale address gets
``cudaErrorInvalidValue``, as CUDA answers natively. (A kernel given a foreign pointer is
another matter: only separate contexts in separate processes stop that.)
"""

from __future__ import annotations

import bisect
from typing import Dict, List, Tuple

from rrto_ros.protocol import ops
from rrto_ros.server.backend import CudaError


class AddressBook:
    def __init__(self) -> None:
        self._bases: List[int] = []          # sorted
        self._ranges: List[Tuple[int, int, bool]] = []   # (base, end, freeable), same order
        self._sizes: Dict[int, int] = {}     # base -> bytes the app asked for (allocations)
        self.allocated = 0                   # their sum: what a quota counts

    def add(self, base: int, size: int, freeable: bool = True) -> None:
        i = bisect.bisect_left(self._bases, base)
        if i < len(self._bases) and self._bases[i] == base:   # a variable named twice
            self._ranges[i] = (base, max(self._ranges[i][1], base + max(size, 1)), freeable)
            return
        self._bases.insert(i, base)
        self._ranges.insert(i, (base, base + max(size, 1), freeable))
        if freeable:
            self._sizes[base] = size
            self.allocated += size

    def remove(self, base: int) -> None:
        """Forget an allocation the app frees; raise unless ``base`` is one."""
        i = bisect.bisect_left(self._bases, base)
        if i == len(self._bases) or self._bases[i] != base or not self._ranges[i][2]:
            raise CudaError(ops.CUDA_ERROR_INVALID_VALUE,
                            f'free of 0x{base:x}: not an allocation of this session')
        self.allocated -= self._sizes.pop(base)
        del self._bases[i], self._ranges[i]

    def check(self, addr: int, count: int, what: str) -> None:
        """Raise unless [addr, addr + count) lies inside one range of this session."""
        if count == 0:
            return
        i = bisect.bisect_right(self._bases, addr) - 1
        if i < 0 or not addr + count <= self._ranges[i][1]:
            raise CudaError(ops.CUDA_ERROR_INVALID_VALUE,
                            f'{what}: 0x{addr:x} + {count} bytes is not device memory of this '
                            'session')

    def clear(self) -> None:
        self._bases.clear()
        self._ranges.clear()
        self._sizes.clear()
        self.allocated = 0

    def __len__(self) -> int:
        return len(self._bases)
