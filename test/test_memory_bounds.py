# Copyright 2026 rrto_ros authors. Apache-2.0.
"""Memory of the server and the client node returns near its baseline after sessions end,
and the in-memory module cache stays within its bound."""

from __future__ import annotations

import hashlib
import os

from test_client_robustness import App

from rrto_ros.client.config import ClientConfig
from rrto_ros.client.core import ClientCore
from rrto_ros.client.core import FINISHED_KEPT
from rrto_ros.protocol.ops import Op
from rrto_ros.server.module_cache import ModuleCache
from rrto_ros.server.server import Server
from rrto_ros.server.server import ServerConfig


def rss_mb() -> float:
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) / 1024
    raise RuntimeError('no VmRSS in /proc/self/status')


def one_app(path: str) -> None:
    """An app's life: a module of its own, an allocation, copies both ways."""
    app = App(path)
    app.hello()
    image = os.urandom(512 << 10)
    err, _, _, _, _ = app.call(Op.MODULE_LOAD, [1, 0, len(image)], image)
    assert err == 0
    err, res, _, _, _ = app.call(Op.MALLOC, [2 << 20])
    assert err == 0
    assert app.call(Op.MEMCPY_HTOD, [res[0], 0, 0], os.urandom(2 << 20))[0] == 0
    err, _, data, _, _ = app.call(Op.MEMCPY_DTOH, [res[0], 2 << 20, 0, 0])
    assert err == 0 and len(data) == 2 << 20
    app.close()


def test_rss_is_flat_over_many_sessions(tmp_path):
    server = Server(ServerConfig('tcp://127.0.0.1:*', 'emu', module_cache_dir=None,
                                 module_cache_mem_bytes=2 << 20)).start()
    core = ClientCore(ClientConfig(server.endpoint, str(tmp_path / 'a.sock'))).start()
    try:
        for _ in range(60):     # warm-up: allocator arenas, ZeroMQ, imports
            one_app(core.config.agent_socket)
        assert core.wait_idle(10)
        base = rss_mb()
        for _ in range(150):    # ~375 MB of modules and copies through both sides
            one_app(core.config.agent_socket)
        assert core.wait_idle(10)
        growth = rss_mb() - base
        assert server.cache.mem_bytes <= 2 << 20
        assert len(core.finished) == FINISHED_KEPT and core.finished_total == 210
        assert growth < 64, f'RSS grew by {growth:.1f} MB over 150 sessions'
    finally:
        core.stop()
        server.stop()


def test_module_cache_memory_is_bounded_lru(tmp_path):
    cache = ModuleCache(tmp_path, max_mem_bytes=2500)
    blobs = [bytes([i]) * 1000 for i in range(4)]
    keys = [hashlib.sha256(b).hexdigest() for b in blobs]
    cache.put(keys[0], blobs[0])
    cache.put(keys[1], blobs[1])
    assert cache.get(keys[0]) == blobs[0]          # 0 is now the most recently used
    cache.put(keys[2], blobs[2])                   # 1 leaves memory
    assert cache.mem_bytes == 2000 and keys[1] not in cache._mem
    assert cache.get(keys[1]) == blobs[1]          # still on disk
    memory_only = ModuleCache(None, max_mem_bytes=1500)
    memory_only.put(keys[0], blobs[0])
    memory_only.put(keys[3], blobs[3])
    assert memory_only.get(keys[0]) is None and memory_only.get(keys[3]) == blobs[3]
