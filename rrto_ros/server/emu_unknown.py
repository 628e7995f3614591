# Copyright 2026 rrto_ros authors. Apache-2.0.
"""TEST SCAFFOLDING ONLY: let the ``emu`` backend "run" kernels and library functions it has
no NumPy version of, as no-ops, so that the CALL SEQUENCE of a real program (a PyTorch
inference) can be recorded, searched and replayed without a GPU. Outputs are meaningless.

Enabled only by the environment variable ``RRTO_EMU_UNKNOWN_KERNELS=skip`` in the server's
environment (never by default; the server logs a warning for every session that uses it).
Without it, unknown kernels and functions fail by name, as they must.

A skipped kernel still needs its parameter layout (the interposer packs the app's arguments
with it): it is read from the module image as the driver does, from the ``.nv.info.<kernel>``
section of the module's ELF cubins (``EIATTR_KPARAM_INFO`` entries: ordinal, offset, size).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import struct
from typing import Dict, List, Tuple

log = logging.getLogger(__name__)
ENV = 'RRTO_EMU_UNKNOWN_KERNELS'
EIATTR_KPARAM_INFO = 0x17
EIFMT_SVAL = 0x04
FATBIN_MAGIC = 0xBA55ED50
FATBIN_ZSTD = 0x8000          # entry flag: the payload is zstd-compressed
_ZSTD = None


def enabled() -> bool:
    """Is the test-only skip mode on (``RRTO_EMU_UNKNOWN_KERNELS=skip``)?"""
    value = os.environ.get(ENV, '')
    if value not in ('', 'skip'):
        raise ValueError(f'{ENV}={value!r}: the only value is "skip" (test scaffolding); '
                         'unset it for normal operation')
    return value == 'skip'


def warn_once(what: str) -> None:
    log.warning('%s=skip (TEST SCAFFOLDING): %s runs as a NO-OP on the emu backend; results '
                'of this session are meaningless. Unset %s for real use.', ENV, what, ENV)


def _elf_sections(elf: bytes) -> Dict[str, bytes]:
    """Section name -> contents of one little-endian ELF64 image ({} if it is not one)."""
    if len(elf) < 64 or elf[:4] != b'\x7fELF' or elf[4] != 2 or elf[5] != 1:
        return {}
    shoff, = struct.unpack_from('<Q', elf, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from('<HHH', elf, 0x3A)
    if shentsize < 64 or shoff + shnum * shentsize > len(elf) or shstrndx >= shnum:
        return {}
    heads = []
    for i in range(shnum):
        name, _, _, _, off, size = struct.unpack_from('<IIQQQQ', elf, shoff + i * shentsize)
        heads.append((name, off, size))
    _, str_off, str_size = heads[shstrndx]
    names = elf[str_off:str_off + str_size]
    out = {}
    for name, off, size in heads:
        end = names.find(b'\0', name)
        out[names[name:end].decode(errors='replace')] = elf[off:off + size]
    return out


def param_layouts(image: bytes) -> Dict[str, List[Tuple[int, int]]]:
    """Kernel name -> (offset, size) per parameter, from the ELF cubins of ``image`` (a
    fatbin, zstd-compressed entries included, or a cubin; the first cubin that describes a
    kernel wins). Kernels only in PTX or in LZ4-compressed cubins are missing (they then
    fail by name)."""
    out: Dict[str, List[Tuple[int, int]]] = {}
    for elf in _cubins(image):
        for name, info in _elf_sections(elf).items():
            if name.startswith('.nv.info.') and name[9:] not in out:
                out[name[9:]] = _kparams(info)
    return out


def _cubins(image: bytes) -> List[bytes]:
    if image[:4] == b'\x7fELF':
        return [image]
    out, pos = [], 0
    while pos + 16 <= len(image):
        magic, _, head, size = struct.unpack_from('<IHHQ', image, pos)
        if magic != FATBIN_MAGIC:
            break
        e, end = pos + head, pos + head + size
        while e + 64 <= end:
            kind, _, ehead, esize, csize = struct.unpack_from('<HHIQI', image, e)
            flags, = struct.unpack_from('<Q', image, e + 40)
            full, = struct.unpack_from('<Q', image, e + 56) if ehead >= 64 else (0,)
            body = image[e + ehead:e + ehead + esize]
            if kind == 2 and flags & FATBIN_ZSTD:
                body = _unzstd(body[:csize], full)
            if kind == 2 and body[:4] == b'\x7fELF':
                out.append(body)
            e += ehead + esize
        pos = end
    return out


def _unzstd(data: bytes, size: int) -> bytes:
    """zstd through the system's libzstd (scaffolding: no new dependency); b'' if absent."""
    global _ZSTD
    if _ZSTD is None:
        try:
            _ZSTD = ctypes.CDLL(ctypes.util.find_library('zstd') or 'libzstd.so.1')
            _ZSTD.ZSTD_decompress.restype = ctypes.c_size_t
            _ZSTD.ZSTD_decompress.argtypes = [ctypes.c_char_p, ctypes.c_size_t,
                                              ctypes.c_char_p, ctypes.c_size_t]
            _ZSTD.ZSTD_isError.argtypes = [ctypes.c_size_t]
        except OSError:
            log.warning('%s: no libzstd, compressed cubins are not read', ENV)
            _ZSTD = False
    if not _ZSTD or not 0 < size <= 1 << 30:
        return b''
    dst = ctypes.create_string_buffer(size)
    n = _ZSTD.ZSTD_decompress(dst, size, data, len(data))
    return b'' if _ZSTD.ZSTD_isError(n) else dst.raw[:n]


def _kparams(info: bytes) -> List[Tuple[int, int]]:
    """Records of u8 format, u8 attribute: format 4 (EIFMT_SVAL) has a u16 length and
    that many bytes, format 3 a u16 value, formats 1 and 2 nothing more."""
    params: Dict[int, Tuple[int, int]] = {}
    i = 0
    while i + 2 <= len(info):
        fmt, attr = info[i], info[i + 1]
        if fmt == EIFMT_SVAL and i + 4 <= len(info):
            length, = struct.unpack_from('<H', info, i + 2)
            if attr == EIATTR_KPARAM_INFO and length >= 12 and i + 16 <= len(info):
                _, ordinal, offset, bits = struct.unpack_from('<IHHI', info, i + 4)
                params[ordinal] = (offset, (bits >> 18) & 0x3FFF)
            i += 4 + length
        else:
            i += 4 if fmt == 3 else 2
    return [params[k] for k in sorted(params)]


def lib_noop(fn, args: list) -> int:
    """A library function with no emu version, as a no-op that succeeds: creates get a
    placeholder object, `out` buffers are zeros (a count of results is 1, so a heuristic
    query "finds" one algorithm)."""
    for p, a in zip(fn.params, args):
        if p.role == 'create':
            a.value = ('emu-skip', fn.name)
        elif p.role == 'out' and p.name.startswith('return') and len(a) == 4:
            struct.pack_into('<i', a, 0, 1)
    return 0
