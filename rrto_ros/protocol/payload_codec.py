# Copyright 2026 rrto_ros authors. Apache-2.0.
"""Lossless compression of a request's bulk frame (client node -> server).

A compressed frame travels with the request header keys ``z`` (the codec's name) and
``zn`` (the frame's size before compression); the server restores the exact bytes before
the request runs. Both libraries are well-kept PyPI packages (``zstandard``, ``lz4``);
what each costs and gains on real photographs is measured by
``bench/input_compression.py``.

Decompression is bounded by ``zn``: a frame that claims more, decodes to another size or
does not decode at all raises PayloadError, never allocates more than ``zn`` bytes.
"""

from __future__ import annotations

import threading
from typing import Any, Dict, Tuple

import lz4.block
import zstandard

CODECS = ('zstd', 'lz4')
ZSTD_LEVEL = 1          # level 3 gains ~15% more ratio for ~50% more time: see the bench
CODEC_KEY, RAW_LEN_KEY = 'z', 'zn'


class PayloadError(ValueError):
    """A compressed frame that cannot be restored; the message says what was wrong."""


_local = threading.local()   # zstandard's (de)compressor objects are not thread-safe


def _zstd() -> Tuple[zstandard.ZstdCompressor, zstandard.ZstdDecompressor]:
    pair = getattr(_local, 'zstd', None)
    if pair is None:
        pair = _local.zstd = (zstandard.ZstdCompressor(level=ZSTD_LEVEL),
                              zstandard.ZstdDecompressor())
    return pair


def compress(codec: str, data: Any) -> bytes:
    """``data`` (bytes-like) compressed with ``codec`` (zstd: one frame that states its
    size, which decompress() checks before allocating)."""
    if codec == 'zstd':
        return _zstd()[0].compress(data)
    if codec == 'lz4':
        return lz4.block.compress(data, store_size=False)
    raise ValueError(f'unknown compression codec {codec!r}; known: {", ".join(CODECS)}')


def header(codec: str, raw_len: int) -> Dict[str, Any]:
    """The request header keys that describe a compressed frame."""
    return {CODEC_KEY: codec, RAW_LEN_KEY: raw_len}


def describes(extra: Dict[str, Any]) -> bool:
    return CODEC_KEY in extra


def decompress(codec: Any, data: Any, raw_len: Any, limit: int) -> bytes:
    """The original bytes of a compressed frame; ``limit`` bounds ``raw_len``."""
    if codec not in CODECS:
        raise PayloadError(f'compressed frame with unknown codec {codec!r:.40} (this server '
                           f'knows {", ".join(CODECS)}); update rrto_ros on both machines')
    if type(raw_len) is not int or not 0 <= raw_len <= limit:
        raise PayloadError(f'compressed frame claims {raw_len!r:.40} bytes uncompressed; it '
                           f'must be an integer from 0 to {limit} (max_message_bytes)')
    view = memoryview(data)
    try:
        if codec == 'zstd':
            size = zstandard.frame_content_size(view)
            if size != raw_len:
                raise PayloadError(f'zstd frame holds {size} bytes, the header says {raw_len}')
            out = _zstd()[1].decompress(view, max_output_size=raw_len)
        else:
            out = lz4.block.decompress(view, uncompressed_size=raw_len)
    except PayloadError:
        raise
    except (zstandard.ZstdError, lz4.block.LZ4BlockError, ValueError) as e:
        raise PayloadError(f'{codec} frame of {view.nbytes} bytes does not decompress: {e}'
                           ) from None
    if len(out) != raw_len:
        raise PayloadError(f'{codec} frame decompressed to {len(out)} bytes, the header says '
                           f'{raw_len}')
    return out


def pop_header(extra: Dict[str, Any]) -> Tuple[Any, Any]:
    """Remove and return (codec, raw length) from a request's header keys."""
    return extra.pop(CODEC_KEY, None), extra.pop(RAW_LEN_KEY, None)
