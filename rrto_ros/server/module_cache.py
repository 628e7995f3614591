# Copyright 2026 rrto_ros authors. Apache-2.0.
"""Content-addressed store of fatbins and of large copies to the device (weights, sent with
their content key by client/uploads.py): in memory, and on disk so that a restarted server
or a second run of the same program needs no upload. Both parts are bounded; the least
recently used entries leave first. (Files keep the ``.fatbin`` suffix of the older
modules-only cache, so existing caches stay valid.)"""

from __future__ import annotations

from collections import OrderedDict
import hashlib
import logging
import os
import pathlib
import tempfile
import threading
from typing import Optional

log = logging.getLogger(__name__)


def content_key(data: bytes | memoryview) -> str:
    return hashlib.sha256(data).hexdigest()


class ModuleCache:
    """``max_mem_bytes`` bounds the in-memory part (least recently used entries leave it
    first; the disk keeps them), ``max_disk_bytes`` the disk (least recently used files
    are removed)."""

    def __init__(self, directory: Optional[str | os.PathLike] = None,
                 max_mem_bytes: int = 256 << 20, max_disk_bytes: int = 8 << 30) -> None:
        self.dir = pathlib.Path(directory).expanduser() if directory else None
        self.max_disk_bytes = max_disk_bytes
        self._disk: 'OrderedDict[str, int]' = OrderedDict()   # key -> size, oldest first
        if self.dir:
            self.dir.mkdir(parents=True, exist_ok=True)
            files = sorted(self.dir.glob('*.fatbin'), key=lambda p: p.stat().st_mtime)
            for f in files:
                self._disk[f.stem] = f.stat().st_size
        self.max_mem_bytes = max_mem_bytes
        self._mem: 'OrderedDict[str, bytes]' = OrderedDict()
        self._mem_bytes = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def _path(self, key: str) -> pathlib.Path:
        assert self.dir is not None
        return self.dir / f'{key}.fatbin'

    def get(self, key: str) -> Optional[bytes]:
        if len(key) != 64 or any(c not in '0123456789abcdef' for c in key):
            return None
        with self._lock:
            data = self._mem.get(key)
            if data is None and self.dir and self._path(key).is_file():
                data = self._path(key).read_bytes()
                if content_key(data) != key:
                    log.warning('module cache file %s is corrupt; removing it', self._path(key))
                    self._path(key).unlink(missing_ok=True)
                    data = None
                else:
                    self._remember(key, data)
            if data is not None and key in self._disk:
                self._disk.move_to_end(key)
                try:
                    os.utime(self._path(key))   # the order survives a restart
                except OSError:
                    pass
            if data is None:
                self.misses += 1
            else:
                self.hits += 1
                if key in self._mem:
                    self._mem.move_to_end(key)
            return data

    def _remember(self, key: str, data: bytes) -> None:
        """Keep ``data`` in memory, dropping the least recently used beyond the bound."""
        if key in self._mem:
            return
        self._mem[key] = data
        self._mem_bytes += len(data)
        while self._mem_bytes > self.max_mem_bytes and self._mem:
            _, old = self._mem.popitem(last=False)
            self._mem_bytes -= len(old)

    @property
    def mem_bytes(self) -> int:
        return self._mem_bytes

    def put(self, key: str, data: bytes | memoryview) -> bytes:
        """Store data under its key; raises ValueError when the key is not its hash."""
        blob = bytes(data)
        if content_key(blob) != key:
            raise ValueError('data does not match its content key (sha256)')
        with self._lock:
            self._remember(key, blob)
            if self.dir and not self._path(key).is_file():
                fd, tmp = tempfile.mkstemp(dir=self.dir, suffix='.part')
                with os.fdopen(fd, 'wb') as f:
                    f.write(blob)
                os.replace(tmp, self._path(key))
                self._disk[key] = len(blob)
                self._trim_disk(key)
        return blob

    def _trim_disk(self, keep: str) -> None:
        total = sum(self._disk.values())
        while total > self.max_disk_bytes and len(self._disk) > 1:
            old, size = next(iter(self._disk.items()))
            if old == keep:
                self._disk.move_to_end(old)
                continue
            del self._disk[old]
            total -= size
            try:
                self._path(old).unlink()
            except OSError as e:
                log.warning('cannot remove %s from the content cache: %s', self._path(old), e)
