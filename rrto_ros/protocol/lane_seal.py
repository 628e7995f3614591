# Copyright 2026 rrto_ros authors. Apache-2.0.
"""Encryption and authentication of the replay lane (``lane_wire``), with libsodium through
PyNaCl; ``interposer/lane.c`` is the other end, with libsodium loaded at run time.

Keys. The server makes a random 32-byte lane key per session and returns it in its hello
reply (inside the CURVE-encrypted ZeroMQ link when security is curve); the client node hands
it to the app's interposer in its own hello reply, over the private local socket. Each lane
connection then works with its own key, BLAKE2b keyed with the session's lane key over both
ends' fresh randoms (``connection_key``): a recorded connection replayed later, or one end
tricked into an old random, meets a different key, and no nonce is ever used twice under
one key.

Records. After the hello (plain: the session id and the randoms), every message is one
record: a 4-byte little-endian length, then the XChaCha20-Poly1305 ciphertext (IETF AEAD,
16-byte tag) of one frame, the length being the associated data. Nonces are not sent: each
end counts the records of each direction from 0, so a record that was replayed, reordered,
dropped or altered does not authenticate and the lane is closed. The app's first record is
``PROOF`` (the server refuses a lane whose first record does not authenticate), the
server's first is ``lane_wire.LANE_ACK``.
"""

from __future__ import annotations

import secrets
import struct
from typing import List

from rrto_ros.protocol import lane_wire
from rrto_ros.protocol.messages import ProtocolError

try:
    from nacl import bindings as _nacl
    from nacl.encoding import RawEncoder
    from nacl.exceptions import CryptoError
    from nacl.hash import blake2b
    UNAVAILABLE = ''
except ImportError as _e:   # the lane stays off (the session runs on ZeroMQ): say so
    UNAVAILABLE = (f'PyNaCl is not installed ({_e}); install it (pip install pynacl, or '
                   'apt-get install python3-nacl)')

KEY_BYTES = 32
RANDOM_BYTES = 16
TAG_BYTES = 16
LEN = struct.Struct('<I')
CONTEXT = lane_wire.LANE_HELLO      # what a connection key is for
PROOF = CONTEXT.strip() + b' proof'  # the app's first record
TO_SERVER, TO_APP = 0, 1            # directions, part of each nonce


class LaneAuthError(ProtocolError):
    """A record that does not authenticate: wrong key, altered, replayed or reordered."""


def new_key() -> bytes:
    """A session's lane key."""
    return secrets.token_bytes(KEY_BYTES)


def new_random() -> bytes:
    """One end's random of a lane connection."""
    return secrets.token_bytes(RANDOM_BYTES)


def connection_key(lane_key: bytes, app_random: bytes, server_random: bytes) -> bytes:
    """The key of one lane connection (crypto_generichash, i.e. BLAKE2b-256 keyed with the
    session's lane key, of CONTEXT + both randoms)."""
    if len(lane_key) != KEY_BYTES or len(app_random) != RANDOM_BYTES or \
            len(server_random) != RANDOM_BYTES:
        raise ValueError('a lane key is 32 bytes and each random 16')
    return blake2b(CONTEXT + app_random + server_random, digest_size=KEY_BYTES, key=lane_key,
                   encoder=RawEncoder)


def _nonce(direction: int, counter: int) -> bytes:
    return struct.pack('<QB15x', counter, direction)


class Sealer:
    """Seals the records one end sends in one direction."""

    def __init__(self, key: bytes, direction: int) -> None:
        self._key, self._direction, self._count = key, direction, 0

    def seal(self, plain: bytes) -> bytes:
        head = LEN.pack(len(plain) + TAG_BYTES)
        box = _nacl.crypto_aead_xchacha20poly1305_ietf_encrypt(
            plain, head, _nonce(self._direction, self._count), self._key)
        self._count += 1
        return head + box


class Opener:
    """Takes the bytes one end receives in one direction, whatever their chunking, and
    returns the frames of the records that authenticate; raises ``LaneAuthError`` at the
    first that does not and ``ProtocolError`` for a record over ``max_frame_bytes`` (checked
    on its length, before it is read)."""

    def __init__(self, key: bytes, direction: int, max_frame_bytes: int) -> None:
        self._key, self._direction, self._count = key, direction, 0
        self.max_frame_bytes = max_frame_bytes
        self._buf = bytearray()

    def feed(self, data: bytes) -> List[bytes]:
        self._buf += data
        out = []
        while len(self._buf) >= LEN.size:
            (size,) = LEN.unpack_from(self._buf)
            if not TAG_BYTES <= size <= self.max_frame_bytes + TAG_BYTES:
                raise ProtocolError(f'lane record of {size} bytes (at most '
                                    f'{self.max_frame_bytes + TAG_BYTES})')
            end = LEN.size + size
            if len(self._buf) < end:
                break
            out.append(self.open(bytes(self._buf[:LEN.size]), bytes(self._buf[LEN.size:end])))
            del self._buf[:end]
        return out

    def open(self, head: bytes, box: bytes) -> bytes:
        """One record's frame (``head``: its length prefix, ``box``: the ciphertext)."""
        try:
            plain = _nacl.crypto_aead_xchacha20poly1305_ietf_decrypt(
                box, head, _nonce(self._direction, self._count), self._key)
        except CryptoError:
            raise LaneAuthError(f'lane record {self._count} does not authenticate (wrong key, '
                                'or altered, replayed or out of order)') from None
        self._count += 1
        return plain
