# Copyright 2026 rrto_ros authors. Apache-2.0.
"""Content-addressed uploads: a second start of the same app uploads neither its modules nor
its weights (bytes on the wire from the client node's statistics), outputs stay the same;
the per-inference copies are never hashed."""

from __future__ import annotations

import pytest

from rrto_ros.client.uploads import ContentIndex
from rrto_ros.server.module_cache import content_key
from rrto_ros.server.module_cache import ModuleCache
from rrto_ros.stack import LocalStack

WEIGHTS_MIN = 1024   # cnn_infer's weights are small: every tensor of 1 KiB or more counts


@pytest.mark.parametrize('mode', ['pipelined', 'replay'])
def test_second_start_uploads_no_module_and_no_weight_bytes(interposer, examples_dir,
                                                            tmp_path, backend, mode):
    opts = {'content_min_bytes': WEIGHTS_MIN}
    with LocalStack(backend, mode, cache_dir=str(tmp_path / 'cache'),
                    client_options=opts) as s:
        runs = []
        for _ in range(2):
            r = s.run([str(examples_dir / 'cnn_infer'), '8'])
            assert r.returncode == 0 and 'PASS' in r.stdout, r.stdout + r.stderr
            runs.append((r.stdout, s.last_session()))
    (out1, cold), (out2, warm) = runs
    assert out1 == out2                                 # identical outputs
    assert cold['errors'] == warm['errors'] == 0
    assert cold['module_bytes_uploaded'] > 0 and cold['modules_uploaded'] >= 1
    assert cold['content_bytes_sent'] > 0 and cold['content_bytes_by_hash'] == 0
    # Warm: not one module byte, not one weight byte; the weights went as their keys.
    assert warm['module_bytes_uploaded'] == 0 and warm['modules_uploaded'] == 0
    assert warm['content_bytes_sent'] == 0
    assert warm['content_bytes_by_hash'] == cold['content_bytes_sent']
    # On the wire: what the warm run did not send is what the cold run spent on them
    # (less the keys, ~100 bytes of header each, and the hello's offer).
    saved = cold['bytes_up'] - warm['bytes_up']
    spent = cold['module_bytes_uploaded'] + cold['content_bytes_sent']
    assert spent - 200 * 64 < saved <= spent


def test_server_restart_with_an_empty_store_gets_the_bytes_again(interposer, examples_dir,
                                                                 backend):
    """Keys the client remembers but the (new) server lacks: the bytes travel again."""
    opts = {'content_min_bytes': WEIGHTS_MIN}
    index = None
    for _ in range(2):
        with LocalStack(backend, 'pipelined', client_options=opts) as s:
            if index is not None:
                s.client.content = index           # the same client node memory
            r = s.run([str(examples_dir / 'cnn_infer'), '3'])
            assert r.returncode == 0 and 'PASS' in r.stdout, r.stdout + r.stderr
            st = s.last_session()
            assert st['content_bytes_sent'] > 0 and st['content_bytes_by_hash'] == 0
            index = s.client.content
    app_keys = [k for (_, app), keys in index._keys.items() for k in keys
                if app == 'cnn_infer']
    assert app_keys


def test_repeated_copies_into_one_address_are_not_hashed(interposer, examples_dir, backend):
    """cnn_infer copies its input into the same buffer every inference: only the first
    copy carries a key, so a second start sends the later inputs as before."""
    opts = {'content_min_bytes': WEIGHTS_MIN}
    with LocalStack(backend, 'pipelined', client_options=opts) as s:
        stats = []
        for n in (2, 6):
            r = s.run([str(examples_dir / 'cnn_infer'), str(n)])
            assert r.returncode == 0, r.stderr
            stats.append(s.last_session())
    # The second start: weights and the first input by key, the other five inputs as bytes.
    per_input = (stats[1]['payload_bytes'] - stats[0]['payload_bytes']) / 4
    assert per_input >= WEIGHTS_MIN
    assert stats[1]['content_bytes_sent'] == 0
    assert stats[1]['content_bytes_by_hash'] == stats[0]['content_bytes_sent']
    small = stats[0]['payload_wire_bytes'] - stats[0]['content_bytes_sent'] - per_input
    assert 0 <= small < 20 * WEIGHTS_MIN            # tensors below the size: sent each time
    assert stats[1]['payload_wire_bytes'] == 5 * per_input + small


def test_content_index_is_bounded_and_per_app():
    idx = ContentIndex(max_keys=3)
    for i in range(5):
        idx.add('tcp://s:1', 'a', f'{i:064x}')
    idx.add('tcp://s:1', 'b', 'f' * 64)
    assert idx.known('tcp://s:1', 'a') == [f'{i:064x}' for i in (2, 3, 4)]
    assert idx.known('tcp://s:1', 'b') == ['f' * 64]
    assert idx.known('tcp://other:1', 'a') == []


def test_content_store_disk_is_bounded(tmp_path):
    cache = ModuleCache(tmp_path, max_mem_bytes=0, max_disk_bytes=3000)
    blobs = [bytes([i]) * 1000 for i in range(5)]
    keys = [content_key(b) for b in blobs]
    for k, b in zip(keys[:3], blobs[:3]):
        cache.put(k, b)
    assert cache.get(keys[0]) == blobs[0]      # used: now the most recent
    cache.put(keys[3], blobs[3])               # over the bound: the oldest unused goes
    assert cache.get(keys[1]) is None
    assert cache.get(keys[0]) == blobs[0] and cache.get(keys[3]) == blobs[3]
    assert sum(f.stat().st_size for f in tmp_path.glob('*.fatbin')) <= 3000
    again = ModuleCache(tmp_path, max_mem_bytes=0, max_disk_bytes=3000)   # after a restart
    assert again.get(keys[2]) == blobs[2]
    with pytest.raises(ValueError, match='content key'):
        cache.put(keys[4], blobs[0])


def test_hello_holds_offered_content_up_to_the_memory_bound(tmp_path):
    import zmq

    from rrto_ros.client.uplink import Uplink
    from rrto_ros.protocol import ops
    from rrto_ros.protocol.ops import Op
    from rrto_ros.server.server import Server
    from rrto_ros.server.server import ServerConfig
    server = Server(ServerConfig('tcp://127.0.0.1:*', 'emu', module_cache_dir=str(tmp_path),
                                 module_cache_mem_bytes=3000)).start()
    try:
        blobs = [bytes([i]) * 1000 for i in range(5)]
        keys = [content_key(b) for b in blobs]
        for k, b in zip(keys, blobs):
            server.cache.put(k, b)
        offer = b''.join(bytes.fromhex(k) for k in keys + ['00' * 32])   # one unknown
        link = Uplink(zmq.Context.instance(), server.endpoint, server_timeout_s=5.0)
        rep = link.call(Op.HELLO, [1], [offer], pid=1, app='test')
        assert rep.err == 0
        link.sid = rep.extra['sid']
        assert list(rep.extra['held']) == [1, 1, 1, 0, 0, 0]
        ptr = link.call(Op.MALLOC, [1000]).res[0]
        assert link.call(Op.MEMCPY_HTOD, [ptr, 0, 0], h=keys[2]).err == 0
        assert bytes(link.call(Op.MEMCPY_DTOH, [ptr, 1000, 0, 0]).frames[0]) == blobs[2]
        rep = link.call(Op.MEMCPY_HTOD, [ptr, 0, 0], h=keys[4])      # stored, not held
        assert rep.err == ops.CUDA_ERROR_INVALID_VALUE and 'not offered' in rep.message
        small = link.call(Op.MALLOC, [10]).res[0]      # a held copy is checked at its size
        assert link.call(Op.MEMCPY_HTOD, [small, 0, 0], h=keys[0]).err == \
            ops.CUDA_ERROR_INVALID_VALUE
        link.close()
    finally:
        server.stop()
