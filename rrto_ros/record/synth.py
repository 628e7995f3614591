# Copyright 2026 rrto_ros authors. Apache-2.0.
"""Synthetic call streams that look like a CUDA inference app's, for the record tests and the
search benchmark: device allocations, weight uploads, per-inference input uploads (with a
payload whose content would vary), kernel launches whose parameter buffers hold device
pointers (also inside by-value structs), and output copies."""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
import struct
from typing import List, Optional, Sequence, Tuple

from rrto_ros.record.calls import Call


def pack_params(*items: Tuple[str, int]) -> bytes:
    """A kernel parameter buffer laid out like CUDA's: each (fmt, value) item is aligned to
    its own size ('Q' pointer/u64, 'i' int, 'f' float)."""
    buf = bytearray()
    for fmt, value in items:
        size = struct.calcsize('<' + fmt)
        buf += b'\0' * (-len(buf) % size)
        buf += struct.pack('<' + fmt, value)
    return bytes(buf)


class FakeApp:
    """Collects the calls an app makes; addresses come from a bump allocator."""

    def __init__(self, heap: int = 0x7f3a_0000_0000) -> None:
        self.calls: List[Call] = []
        self._heap = heap

    def __len__(self) -> int:
        return len(self.calls)

    def emit(self, op: str, *args: int, key_data: bytes = b'', var_len: int = 0,
             result: Sequence[int] = (), err: int = 0) -> Call:
        c = Call(op, tuple(args), key_data, var_len, tuple(result), err)
        self.calls.append(c)
        return c

    def malloc(self, size: int) -> int:
        ptr = self._heap
        self._heap += (size + 511) // 512 * 512
        self.emit('MALLOC', size, result=(ptr,))
        return ptr

    def free(self, ptr: int) -> None:
        self.emit('FREE', ptr)

    def htod(self, dst: int, n: int, stream: int = 0, is_async: int = 0) -> None:
        self.emit('MEMCPY_HTOD', dst, stream, is_async, var_len=n)

    def dtoh(self, src: int, n: int, stream: int = 0, is_async: int = 0) -> None:
        self.emit('MEMCPY_DTOH', src, n, stream, is_async)

    def dtod(self, dst: int, src: int, n: int, stream: int = 0, is_async: int = 0) -> None:
        self.emit('MEMCPY_DTOD', dst, src, n, stream, is_async)

    def memset(self, dst: int, value: int, n: int, stream: int = 0, is_async: int = 0) -> None:
        self.emit('MEMSET', dst, value, n, stream, is_async)

    def launch(self, handle: int, params: bytes, grid: Tuple[int, int, int] = (1, 1, 1),
               block: Tuple[int, int, int] = (128, 1, 1), shmem: int = 0,
               stream: int = 0) -> None:
        self.emit('LAUNCH', handle, *grid, *block, shmem, stream, key_data=params)

    def sync(self, stream: int = 0) -> None:
        self.emit('STREAM_SYNC', stream)


@dataclass
class FakeModel:
    """A model of ``layers`` kernels over ping-pong activation buffers.

    Options shape the inference: ``outputs`` DTOH copies (the last ones at the end),
    ``repeat`` identical launches of one kernel in the middle of every inference,
    ``struct_params`` (pointers inside by-value structs), ``async_out`` (async DTOH then a
    stream sync), ``shape`` (changes grid, sizes and so every key).
    """

    app: FakeApp
    layers: int = 8
    outputs: int = 1
    repeat: int = 0
    struct_params: bool = False
    async_out: bool = False
    shape: int = 1
    handle_base: int = 0x1000
    in_bytes: int = 0
    out_bytes: int = 0
    w: List[int] = field(default_factory=list)
    act: List[int] = field(default_factory=list)
    inp: int = 0
    out: List[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.in_bytes = self.in_bytes or 3 * 224 * 224 * 4 // 16 * self.shape
        self.out_bytes = self.out_bytes or 1000 * 4

    def prologue(self) -> None:
        """First-inference setup: allocate, upload weights, fetch kernels."""
        a = self.app
        for k in range(self.layers):
            a.emit('FUNC_GET', 7, key_data=f'_Z6layer{k}Pf'.encode(),
                   result=(self.handle_base + k, 3))
        self.w = [a.malloc(4096 * (k + 1)) for k in range(self.layers)]
        for k, p in enumerate(self.w):
            a.htod(p, 4096 * (k + 1))
        self.inp = a.malloc(self.in_bytes * 4)
        self.act = [a.malloc(1 << 20), a.malloc(1 << 20)]
        self.out = [a.malloc(self.out_bytes) for _ in range(self.outputs)]

    def _params(self, src: int, dst: int, weight: int, n: int) -> bytes:
        if self.struct_params:
            # struct { int n; float scale; float *w; } by value, then the tensors
            return pack_params(('i', n), ('f', 1.0), ('Q', weight), ('Q', src), ('Q', dst),
                               ('i', self.shape))
        return pack_params(('Q', src), ('Q', dst), ('Q', weight), ('i', n), ('i', self.shape))

    def infer(self, extra: Optional[List[Call]] = None) -> None:
        """One inference: input upload, the kernels, the output copies."""
        a = self.app
        a.htod(self.inp, self.in_bytes)
        src = self.inp
        grid = (16 * self.shape, 1, 1)
        for k in range(self.layers):
            dst = self.act[k % 2]
            a.launch(self.handle_base + k, self._params(src, dst, self.w[k], 1024 * self.shape),
                     grid)
            src = dst
            if k == self.layers // 2:
                for _ in range(self.repeat):    # identical launches (an in-place kernel)
                    a.launch(self.handle_base, self._params(src, src, self.w[0], 7), grid)
        for i, o in enumerate(self.out):
            a.launch(self.handle_base + i % self.layers,
                     self._params(src, o, self.w[-1], 1000), (4, 1, 1))
        for o in self.out:
            a.dtoh(o, self.out_bytes, is_async=int(self.async_out))
        if self.async_out:
            a.sync()
        for c in extra or ():
            a.calls.append(c)
