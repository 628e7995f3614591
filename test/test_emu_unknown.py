# Copyright 2026 rrto_ros authors. Apache-2.0.
"""The emu backend's test-only skip mode (RRTO_EMU_UNKNOWN_KERNELS=skip): off by default,
kernel parameter layouts read from a module's cubins (plain and zstd-compressed fatbin
entries), unknown kernels and library functions as no-ops only when asked."""

from __future__ import annotations

import ctypes
import ctypes.util
import struct

import pytest

from rrto_ros.protocol import forwarding
from rrto_ros.server import emu_unknown
from rrto_ros.server.backend import CudaError
from rrto_ros.server.emu_backend import EmuBackend
from rrto_ros.server.libcalls import Holder

KERNEL = '_Z6kernelPfi'


def kparam(ordinal: int, offset: int, size: int) -> bytes:
    body = struct.pack('<IHHI', 0, ordinal, offset, (size << 18) | 0x1f000)
    return struct.pack('<BBH', emu_unknown.EIFMT_SVAL, emu_unknown.EIATTR_KPARAM_INFO,
                       len(body)) + body


def elf(sections: dict) -> bytes:
    """A minimal little-endian ELF64 with the given sections (name -> bytes)."""
    names = b'\0.shstrtab\0' + b''.join(n.encode() + b'\0' for n in sections)
    blobs = [names] + list(sections.values())
    name_off = [1] + [names.index(n.encode() + b'\0') for n in sections]
    data, offsets = b'', []
    for b in blobs:
        offsets.append(64 + len(data))
        data += b
    shoff = 64 + len(data)
    head = bytearray(64)
    head[:6] = b'\x7fELF\x02\x01'
    struct.pack_into('<Q', head, 0x28, shoff)
    struct.pack_into('<HHH', head, 0x3A, 64, len(blobs) + 1, 1)
    shdrs = bytes(64) + b''.join(
        struct.pack('<IIQQQQ', n, 3, 0, 0, o, len(b)) + bytes(24)
        for n, o, b in zip(name_off, offsets, blobs))
    return bytes(head) + data + shdrs


def fatbin(cubin: bytes, compress: bool = False) -> bytes:
    body, flags, full = cubin, 0x11, 0
    if compress:
        z = ctypes.CDLL(ctypes.util.find_library('zstd') or 'libzstd.so.1')
        z.ZSTD_compress.restype = ctypes.c_size_t
        dst = ctypes.create_string_buffer(len(cubin) + 1024)
        n = z.ZSTD_compress(dst, len(dst), cubin, len(cubin), 3)
        body, flags, full = dst.raw[:n], 0x8011, len(cubin)
    entry = struct.pack('<HHIQI', 2, 0x101, 64, len(body), len(body)) + bytes(20) + \
        struct.pack('<QQQ', flags, 0, full) + body
    return struct.pack('<IHHQ', emu_unknown.FATBIN_MAGIC, 1, 16, len(entry)) + entry


CUBIN = elf({'.nv.info': b'', f'.nv.info.{KERNEL}': kparam(1, 8, 4) + kparam(0, 0, 8)})


def test_layout_read_from_cubin_and_fatbin():
    want = {KERNEL: [(0, 8), (8, 4)]}
    assert emu_unknown.param_layouts(CUBIN) == want
    assert emu_unknown.param_layouts(fatbin(CUBIN)) == want
    assert emu_unknown.param_layouts(b'not a module') == {}


def test_layouts_agree_with_the_example_binaries(examples_dir):
    """On real cubins (the examples' .nv_fatbin), the same layouts as the emu registry's."""
    from rrto_ros.server.emu_kernel import REGISTRY
    from test_emu_kernels import _elf_sections
    checked = 0
    for exe in sorted(examples_dir.iterdir()):
        data = exe.read_bytes()
        secs = _elf_sections(data)
        if '.nv_fatbin' not in secs:
            continue
        off, size, _, _ = secs['.nv_fatbin']
        for name, layout in emu_unknown.param_layouts(data[off:off + size]).items():
            assert tuple(layout) == REGISTRY[name].params, f'{exe.name}: {name}'
            checked += 1
    assert checked >= 5


def test_layout_read_from_a_zstd_compressed_entry():
    try:
        blob = fatbin(CUBIN, compress=True)
    except OSError:
        pytest.skip('no libzstd on this machine')
    assert emu_unknown.param_layouts(blob) == {KERNEL: [(0, 8), (8, 4)]}


def test_off_by_default_unknown_kernels_fail_by_name(monkeypatch):
    monkeypatch.delenv(emu_unknown.ENV, raising=False)
    be = EmuBackend()
    with pytest.raises(CudaError, match=KERNEL):
        be.function_get(be.module_load(fatbin(CUBIN)), KERNEL)
    with pytest.raises(CudaError, match='cublasLtCreate has no emu version'):
        be.lib_call(forwarding.by_name('cublasLtCreate'), [Holder()])
    monkeypatch.setenv(emu_unknown.ENV, 'yes')
    with pytest.raises(ValueError, match='skip'):
        EmuBackend()


def test_skip_mode_runs_unknown_work_as_no_ops(monkeypatch):
    monkeypatch.setenv(emu_unknown.ENV, 'skip')
    be = EmuBackend()
    h, layout = be.function_get(be.module_load(fatbin(CUBIN)), KERNEL)
    assert layout == [(0, 8), (8, 4)]
    be.launch(h, (1, 1, 1), (1, 1, 1), 0, 0, memoryview(bytes(12)))
    with pytest.raises(CudaError, match='_Z5otherv'):     # no layout: still fails by name
        be.function_get(be.module_load(fatbin(CUBIN)), '_Z5otherv')
    holder = Holder()
    assert be.lib_call(forwarding.by_name('cublasLtCreate'), [holder]) == 0
    assert holder.value is not None
    fn = forwarding.by_name('cublasLtMatmulAlgoGetHeuristic')
    args = [None] * len(fn.params)
    args[8], args[9] = bytearray(96), bytearray(4)
    assert be.lib_call(fn, args) == 0 and struct.unpack('<i', args[9])[0] == 1
