# Copyright 2026 rrto_ros authors. Apache-2.0.
"""How the client node sends large payloads to the server: by content hash when the server
holds them already, compressed when that pays (``client/compression.py``), in chunks.

Content addressing. The first copy into a device address that is at least
``content_min_bytes`` long (weights, a first input) carries its content key (sha256, the
module cache's key; measured faster than blake2b on x86 with SHA extensions, see
``bench/results/input_compression.json``), and the server keeps it in its content store.
The client node remembers, per server and app, the keys it sent (``ContentIndex``, in its
memory). At the next start of that app, its hello lists them; the server answers which it
still holds and keeps those for the session, so a copy whose key is among them goes as its
key alone, without waiting. Later copies into an address already written (an input each
inference) are not hashed: the check stays off the per-inference path.

Compression. A copy that is compressed travels in chunks of ``CHUNK`` bytes, each a
request of its own into the next part of the destination: the server decompresses one while
the next is on the wire, and the client compresses one while the previous is sent.
"""

from __future__ import annotations

import collections
import threading
import time
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

from rrto_ros.client.compression import CompressionPolicy
from rrto_ros.client.uplink import Uplink
from rrto_ros.protocol import payload_codec
from rrto_ros.protocol.messages import Reply
from rrto_ros.protocol.ops import Op
from rrto_ros.server.module_cache import content_key

CHUNK = 1 << 20        # measured: 1 MiB overlaps better than 2 or 4 (bench/upload_link.py)
CONTENT_KEY = 'h'          # request header key: the payload's content key (hex sha256)
HELD_KEY = 'held'          # hello reply key: one byte per offered key, 1 if held
MAX_KEYS = 16384           # keys remembered per server and app (oldest forgotten first)
MAX_WRITTEN = 1 << 16      # device addresses remembered per session as written


class ContentIndex:
    """The content keys a server stored for earlier sessions of each app (thread-safe;
    shared by the client node's sessions)."""

    def __init__(self, max_keys: int = MAX_KEYS) -> None:
        self.max_keys = max_keys
        self._keys: Dict[Tuple[str, str], 'collections.OrderedDict[str, None]'] = {}
        self._lock = threading.Lock()

    def known(self, server: str, app: str) -> List[str]:
        with self._lock:
            return list(self._keys.get((server, app), ()))

    def add(self, server: str, app: str, key: str) -> None:
        with self._lock:
            keys = self._keys.setdefault((server, app), collections.OrderedDict())
            keys[key] = None
            keys.move_to_end(key)
            while len(keys) > self.max_keys:
                keys.popitem(last=False)


class UploadStats:
    def __init__(self) -> None:
        self.payload_bytes = 0        # bytes of copies and replay inputs the app uploaded
        self.payload_wire_bytes = 0   # of those, what travelled (compressed, or not at all)
        self.compressed = 0           # payloads compressed
        self.by_hash = 0              # copies sent as their content key
        self.by_hash_bytes = 0
        self.content_sent_bytes = 0   # content-addressed copies whose bytes travelled


class Uploader:
    def __init__(self, uplink: Uplink, policy: CompressionPolicy, index: ContentIndex,
                 content_min_bytes: int, server: str) -> None:
        self.uplink = uplink
        self.policy = policy
        self.index = index
        self.content_min_bytes = content_min_bytes
        self.server = server
        self.app = ''
        self.stats = UploadStats()
        self.held: Set[str] = set()
        self._written: Set[int] = set()
        self._offered: List[str] = []

    # ----------------------------------------------------------- session start
    def offer(self, app: str) -> List[bytes]:
        """The hello's frames: the content keys earlier sessions of ``app`` stored."""
        self.app = app
        self._offered = self.index.known(self.server, app) if self.content_min_bytes else []
        return [b''.join(bytes.fromhex(k) for k in self._offered)] if self._offered else []

    def accept(self, reply: Reply) -> None:
        """Which offered keys the server holds for this session (its hello reply)."""
        held = reply.extra.get(HELD_KEY, b'')
        if isinstance(held, bytes) and len(held) == len(self._offered):
            self.held = {k for k, h in zip(self._offered, held) if h}

    # ----------------------------------------------------------- copies
    def htod(self, args: Sequence[int], data: bytes, wait: bool, split: bool
             ) -> Optional[Reply]:
        """Send a host-to-device copy; its reply when ``wait``. ``split``: a compressed copy
        may travel as several requests (not in rpc mode, where every request is waited
        for)."""
        n = len(data)
        self.stats.payload_bytes += n
        dst = args[0]
        if self.content_min_bytes and n >= self.content_min_bytes and \
                dst not in self._written:
            if len(self._written) >= MAX_WRITTEN:
                self._written.clear()
            self._written.add(dst)
            key = content_key(data)
            if key in self.held:
                self.stats.by_hash += 1
                self.stats.by_hash_bytes += n
                return self._send(Op.MEMCPY_HTOD, args, [], wait, {CONTENT_KEY: key})
            frames, extra = self.pack(data)
            self.index.add(self.server, self.app, key)
            self.stats.content_sent_bytes += n
            return self._send(Op.MEMCPY_HTOD, args, frames, wait, {CONTENT_KEY: key, **extra})
        self._written.add(dst)
        codec = self.policy.choose(n)
        if codec is None or not split or n <= CHUNK:
            frames, extra = self.pack(data, codec)
            return self._send(Op.MEMCPY_HTOD, args, frames, wait, extra)
        view = memoryview(data)
        offsets = range(0, n, CHUNK)
        for off in offsets:
            last = off == offsets[-1]
            frames, extra = self.pack(view[off:off + CHUNK], codec)
            reply = self._send(Op.MEMCPY_HTOD, [dst + off] + list(args[1:]), frames,
                               wait and last, extra)
        return reply

    def payload(self, data: bytes) -> Tuple[List[Any], Dict[str, Any]]:
        """Frames and header keys of a replay range's input payloads."""
        self.stats.payload_bytes += len(data)
        frames, extra = self.pack(data) if data else ([], {})
        return frames, extra

    def pack(self, data: Any, codec: Optional[str] = 'choose'
             ) -> Tuple[List[Any], Dict[str, Any]]:
        """``data`` as frames, compressed when the policy says so."""
        n = len(data)
        if codec == 'choose':
            codec = self.policy.choose(n)
        if codec is None:
            self.stats.payload_wire_bytes += n
            return ([data] if n else []), {}
        t0 = time.perf_counter()
        packed = payload_codec.compress(codec, data)
        self.policy.observed(codec, n, len(packed), time.perf_counter() - t0)
        if len(packed) >= n:   # it did not compress: the raw bytes are cheaper to restore
            self.stats.payload_wire_bytes += n
            return [data], {}
        self.stats.compressed += 1
        self.stats.payload_wire_bytes += len(packed)
        return [packed], payload_codec.header(codec, n)

    def _send(self, op: Op, args: Sequence[int], frames: List[Any], wait: bool,
              extra: Dict[str, Any]) -> Optional[Reply]:
        if wait:
            return self.uplink.call(op, args, frames, **extra)
        self.uplink.send(op, args, frames, quiet=True, **extra)
        return None
