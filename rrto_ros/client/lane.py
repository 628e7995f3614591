# Copyright 2026 rrto_ros authors. Apache-2.0.
"""Where a session's replay lane is, and what the interposer needs to seal it: the
interposer connects to it itself (see ``rrto_ros.protocol.lane_wire`` and ``lane_seal``);
the client node works out the address and hands it over, with the session's lane key and
the libsodium to load, in its hello reply."""

from __future__ import annotations

import ctypes
import functools
import glob
import os
import socket
from typing import Sequence, Tuple

from rrto_ros.protocol import lane_wire

# Debian's and Ubuntu's libsodium23 (libzmq5 depends on it, so it is there wherever the
# distribution's ZeroMQ is).
SODIUM_SONAME = 'libsodium.so.23'
SODIUM_PACKAGE = 'libsodium23 (sudo apt-get install libsodium23)'
# What the interposer calls (interposer/lane.c).
SODIUM_SYMBOLS = ('sodium_init', 'randombytes_buf', 'crypto_generichash',
                  'crypto_aead_xchacha20poly1305_ietf_encrypt',
                  'crypto_aead_xchacha20poly1305_ietf_decrypt', 'sodium_memzero')


def pyzmq_bundled_sodium() -> list:
    """The libsodium that pyzmq's manylinux wheels ship next to their libzmq (on machines
    where ZeroMQ came from PyPI rather than the distribution)."""
    try:
        import zmq
    except ImportError:
        return []
    libs = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(zmq.__file__))),
                        'pyzmq.libs')
    return sorted(glob.glob(os.path.join(libs, 'libsodium*.so*')))


def sodium_library(candidates: Sequence[str] = ()) -> str:
    """The libsodium the interposer is to load: the first of ``candidates`` (default: the
    distribution's, then pyzmq's bundled copy) that loads here and has what the lane needs;
    '' when none does."""
    for lib in candidates or [SODIUM_SONAME] + pyzmq_bundled_sodium():
        if any(c.isspace() for c in lib):
            continue   # the lane descriptor is space-separated
        try:
            handle = ctypes.CDLL(lib)
        except OSError:
            continue
        if all(hasattr(handle, s) for s in SODIUM_SYMBOLS):
            return lib
    return ''


@functools.lru_cache(maxsize=1)
def default_sodium_library() -> str:
    return sodium_library()


def lane_address(server_endpoint: str, port: int, override: str = '') -> Tuple[str, int]:
    """Where the lane is: ``override`` (``tcp://HOST:PORT``) when set, else the server
    endpoint's host with the port the server announced."""
    if override:
        host, _, p = override[len('tcp://'):].rpartition(':') if override.startswith(
            'tcp://') else ('', '', '')
        if not host or not p.isdigit():
            raise ValueError(f'lane_endpoint {override!r} is not tcp://HOST:PORT')
        return host.strip('[]'), int(p)
    host = server_endpoint[len('tcp://'):].rpartition(':')[0].strip('[]')
    return host, port


def lane_descriptor(server_endpoint: str, port: int, override: str, timeout_s: float,
                    sid: bytes, key: bytes, sodium: str) -> bytes:
    """The interposer's description of the lane, its host resolved to a numeric address
    (the interposer does no name lookups). Raises OSError when the host does not resolve."""
    host, lane_port = lane_address(server_endpoint, port, override)
    numeric = socket.getaddrinfo(host, lane_port, type=socket.SOCK_STREAM)[0][4][0]
    return lane_wire.describe(numeric, lane_port, timeout_s, sid, key, sodium)
