# Copyright 2026 rrto_ros authors. Apache-2.0.
"""Compressed uploads: the codec round trip, the auto rule per link, malformed frames on a
real server, chunked copies end to end (emu), and that outputs stay identical."""

from __future__ import annotations

import os

import pytest
import zmq

from rrto_ros.bench.link import PROFILES
from rrto_ros.client import compression
from rrto_ros.client.compression import BandwidthEstimate
from rrto_ros.client.compression import CompressionPolicy
from rrto_ros.client.config import ClientConfig
from rrto_ros.client.uplink import Uplink
from rrto_ros.client.uploads import CHUNK
from rrto_ros.client.uploads import ContentIndex
from rrto_ros.client.uploads import Uploader
from rrto_ros.protocol import ops
from rrto_ros.protocol import payload_codec
from rrto_ros.protocol.ops import Op
from rrto_ros.server.server import Server
from rrto_ros.server.server import ServerConfig
from rrto_ros.tracking.letterbox import letterbox
from rrto_ros.tracking.letterbox import to_input
from rrto_ros.tracking.scene import SyntheticScene


def model_input(size: int = 640) -> bytes:
    """What a pose node uploads: a letterboxed camera frame as float32 CHW / 255."""
    frame = SyntheticScene().frame(3)
    return to_input(letterbox(frame.rgb, size, auto=False).image).tobytes()


# ----------------------------------------------------------------- codec
@pytest.mark.parametrize('codec', payload_codec.CODECS)
def test_codec_round_trip_is_exact(codec):
    data = model_input()
    packed = payload_codec.compress(codec, data)
    assert len(packed) < len(data) / 2       # a letterboxed 8-bit frame compresses well
    assert payload_codec.decompress(codec, packed, len(data), len(data)) == data
    assert payload_codec.decompress(codec, payload_codec.compress(codec, b''), 0, 10) == b''


@pytest.mark.parametrize('codec', payload_codec.CODECS)
def test_malformed_frames_raise_payload_error(codec):
    data = model_input()
    packed = payload_codec.compress(codec, data)
    n = len(data)
    bad = [
        (codec, packed[: len(packed) // 2], n, n, ''),           # truncated
        (codec, b'\x00garbage' * 50, n, n, ''),                  # not a frame
        (codec, packed, n - 1, n, ''),                           # another size
        (codec, packed, n, n - 1, 'must be an integer from 0'),  # over the limit
        (codec, packed, -1, n, 'must be an integer from 0'),
        (codec, packed, '12', n, 'must be an integer from 0'),
        ('brotli', packed, n, n, 'unknown codec'),
    ]
    for c, frame, raw, limit, words in bad:
        with pytest.raises(payload_codec.PayloadError, match=words or None):
            payload_codec.decompress(c, frame, raw, limit)


def test_zstd_frame_claiming_more_than_its_header_is_refused_before_allocating():
    packed = payload_codec.compress('zstd', bytes(1 << 20))
    with pytest.raises(payload_codec.PayloadError, match='holds 1048576 bytes'):
        payload_codec.decompress('zstd', packed, 1000, 1 << 30)


# ----------------------------------------------------------------- the auto rule
def policy_at(link: str) -> CompressionPolicy:
    return CompressionPolicy('auto', PROFILES[link].bandwidth_bps / 1e6)


def test_auto_follows_the_measured_rule_per_link():
    n = len(model_input())
    assert policy_at('edge').choose(n) == 'zstd'
    assert policy_at('cloud').choose(n) == 'zstd'
    assert CompressionPolicy('auto', 1000.0).choose(n) == 'lz4'     # 1 Gbit/s
    assert CompressionPolicy('auto', 10000.0).choose(n) is None    # 10 Gbit/s: off
    assert policy_at('loopback').choose(n) is None   # no bandwidth configured or measured
    assert policy_at('edge').choose(compression.MIN_BYTES - 1) is None   # small copy
    assert CompressionPolicy('off', 450.0).choose(n) is None
    assert CompressionPolicy('lz4', 0.0).choose(n) == 'lz4'          # forced, any link
    with pytest.raises(ValueError, match='compression must be one of'):
        CompressionPolicy('gzip')
    with pytest.raises(ValueError, match='compression must be one of'):
        ClientConfig(compression='brotli').validate()


def test_auto_matches_the_rule_it_states():
    """gain = saved wire time - compress - decompress time, with the models it holds."""
    for mbit in (50, 160, 450, 590, 600, 1000, 3300, 3500, 20000):
        p = CompressionPolicy('auto', float(mbit))
        gains = {c: m.gain_s_per_byte(mbit * 1e6) for c, m in p.models.items()}
        best = max(gains, key=gains.get)
        assert p.choose(1 << 20) == (best if gains[best] > 0 else None), mbit


def test_auto_turns_off_for_data_that_do_not_compress_and_probes_again():
    p = policy_at('edge')
    noise = os.urandom(1 << 20)
    for _ in range(100):
        codec = p.choose(len(noise))
        if codec is None:
            break
        packed = payload_codec.compress(codec, noise)
        p.observed(codec, len(noise), len(packed), 1e-3)
    assert p.choose(len(noise)) is None
    choices = [p.choose(len(noise)) for _ in range(compression.PROBE_EVERY)]
    assert choices.count(None) == compression.PROBE_EVERY - 1   # one probe per period


def test_bandwidth_estimate_is_a_lower_bound_from_round_trips():
    b = BandwidthEstimate()
    b.round_trip(20 << 20, 0.5)          # no small round trip yet: nothing known
    assert b.bps is None
    b.round_trip(100, 0.003)
    b.round_trip(100, 0.002)
    b.round_trip(10 << 20, 0.202)        # 10 MiB in 0.2 s beyond the round trip
    assert b.bps == pytest.approx(8 * (10 << 20) / 0.2)
    b.round_trip(10 << 20, 1.0)          # a slower one (server time) does not lower it
    assert b.bps == pytest.approx(8 * (10 << 20) / 0.2)
    p = CompressionPolicy('auto', 0.0, b)   # measured ~420 Mbit/s: like edge
    assert p.choose(1 << 20) == 'zstd'


# ----------------------------------------------------------------- on a real server
@pytest.fixture
def server():
    s = Server(ServerConfig('tcp://127.0.0.1:*', 'emu', module_cache_dir=None,
                            max_message_bytes=32 << 20)).start()
    yield s
    s.stop()


def open_session(server) -> Uplink:
    link = Uplink(zmq.Context.instance(), server.endpoint, server_timeout_s=5.0)
    rep = link.call(Op.HELLO, [1], pid=1, app='test')
    assert rep.err == 0
    link.sid = rep.extra['sid']
    return link


def device_buffer(link: Uplink, n: int) -> int:
    rep = link.call(Op.MALLOC, [n])
    assert rep.err == 0
    return rep.res[0]


def read_back(link: Uplink, ptr: int, n: int) -> bytes:
    rep = link.call(Op.MEMCPY_DTOH, [ptr, n, 0, 0])
    assert rep.err == 0, rep.message
    return bytes(rep.frames[0])


@pytest.mark.parametrize('split', [True, False])
@pytest.mark.parametrize('wait', [True, False])
def test_chunked_compressed_copy_arrives_exactly(server, split, wait):
    data = model_input(1280)        # 19.7 MB: several chunks
    assert len(data) > 3 * CHUNK
    link = open_session(server)
    up = Uploader(link, CompressionPolicy('zstd'), ContentIndex(), 0, server.endpoint)
    ptr = device_buffer(link, len(data))
    sent_before = link.stats.requests
    reply = up.htod([ptr, 0, 0], data, wait=wait, split=split)
    assert (reply is not None and reply.err == 0) if wait else reply is None
    assert link.stats.requests - sent_before == (-(-len(data) // CHUNK) if split else 1)
    assert read_back(link, ptr, len(data)) == data
    assert link.take_deferred() is None
    assert up.stats.payload_wire_bytes < len(data) / 3
    link.close()


def test_incompressible_copy_goes_raw(server):
    link = open_session(server)
    up = Uploader(link, CompressionPolicy('lz4'), ContentIndex(), 0, server.endpoint)
    noise = os.urandom(1 << 20)
    ptr = device_buffer(link, len(noise))
    assert up.htod([ptr, 0, 0], noise, wait=True, split=True).err == 0
    assert up.stats.compressed == 0 and up.stats.payload_wire_bytes == len(noise)
    assert read_back(link, ptr, len(noise)) == noise
    link.close()


def test_malformed_compressed_requests_get_clear_errors(server):
    link = open_session(server)
    data = model_input()
    ptr = device_buffer(link, len(data))
    good = payload_codec.compress('zstd', data)
    cases = [
        ({'z': 'zstd', 'zn': len(data)}, [good[:100]], 'does not decompress'),
        ({'z': 'zstd', 'zn': len(data) + 4}, [good], 'the header says'),
        ({'z': 'xz', 'zn': len(data)}, [good], 'unknown codec'),
        ({'z': 'zstd', 'zn': 1 << 40}, [good], 'max_message_bytes'),
        ({'z': 'zstd', 'zn': len(data)}, [], 'carries one frame'),
        ({'z': 'lz4', 'zn': len(data)}, [b'\xff' * 64], 'does not decompress'),
        ({'h': 'ab' * 32}, [], 'was not offered'),                  # by key, never offered
        ({'h': 'ab' * 32}, [data], 'does not match its content key'),
        ({'h': 7}, [data], 'content key goes with MEMCPY_HTOD only'),
    ]
    for extra, frames, words in cases:
        rep = link.call(Op.MEMCPY_HTOD, [ptr, 0, 0], frames, **extra)
        assert rep.err == ops.CUDA_ERROR_INVALID_VALUE, extra
        assert words in rep.message, (extra, rep.message)
    # Quiet ones fail at the next call, as asynchronous CUDA errors do.
    link.send(Op.MEMCPY_HTOD, [ptr, 0, 1], [b'junk' * 30], quiet=True, z='lz4', zn=len(data))
    rep = link.call(Op.DEVICE_SYNC, [])
    assert (link.take_deferred() or rep).err == ops.CUDA_ERROR_INVALID_VALUE
    # The session and the server go on.
    assert link.call(Op.MEMCPY_HTOD, [ptr, 0, 0], [good], z='zstd', zn=len(data)).err == 0
    assert read_back(link, ptr, len(data)) == data
    link.close()


def test_compressed_copy_cannot_write_past_its_allocation(server):
    """The address check sees the decompressed size, not the frame's."""
    link = open_session(server)
    ptr = device_buffer(link, 1 << 20)
    big = bytes(2 << 20)
    rep = link.call(Op.MEMCPY_HTOD, [ptr, 0, 0], [payload_codec.compress('zstd', big)],
                    z='zstd', zn=len(big))
    assert rep.err == ops.CUDA_ERROR_INVALID_VALUE
    link.close()


def test_offer_of_a_bad_length_is_refused(server):
    link = Uplink(zmq.Context.instance(), server.endpoint, server_timeout_s=5.0)
    rep = link.call(Op.HELLO, [1], [b'x' * 33], pid=1, app='test')
    assert rep.err and 'multiple of 32' in rep.message
    link.close()


# ----------------------------------------------------------------- apps, end to end
def test_programs_pass_with_forced_compression_and_identical_output(interposer, examples_dir,
                                                                    backend):
    """Large copies compressed (zstd, and lz4), outputs identical to an uncompressed run."""
    from rrto_ros.stack import LocalStack
    outputs = {}
    for setting in ('off', 'zstd', 'lz4'):
        opts = {'compression': setting, 'content_min_bytes': 0}
        with LocalStack(backend, 'pipelined', client_options=opts) as s:
            for program in ('vector_add', 'struct_param'):
                r = s.run([str(examples_dir / program)])
                assert r.returncode == 0 and 'PASS' in r.stdout, r.stderr
                st = s.last_session()
                assert st['errors'] == 0
                outputs.setdefault(program, set()).add(r.stdout)
                if setting == 'off':
                    assert st['compressed_payloads'] == 0
                    assert st['payload_wire_bytes'] == st['payload_bytes']
                elif setting == 'zstd':   # uniform random floats: ~10% smaller
                    assert st['compressed_payloads'] >= 1
                    assert st['payload_wire_bytes'] < st['payload_bytes']
                else:                     # lz4 finds nothing there: they go raw
                    assert st['payload_wire_bytes'] <= st['payload_bytes']
    assert all(len(v) == 1 for v in outputs.values()), outputs


def test_replay_inputs_through_the_client_node_are_compressed(interposer, examples_dir,
                                                              backend, monkeypatch):
    """No lane (a robot without libsodium: the lane is encrypted or off): replayed
    inferences (their inputs) go through the client node, compressed; the results are those
    of an uncompressed run."""
    from rrto_ros.client import session as client_session
    from rrto_ros.stack import LocalStack
    monkeypatch.setattr(compression, 'MIN_BYTES', 1024)   # cnn_infer's input is 12 KiB
    monkeypatch.setattr(client_session, 'default_sodium_library', lambda: '')
    outputs, stats = [], []
    for setting in ('off', 'zstd'):
        with LocalStack(backend, 'replay', security='curve',
                        client_options={'compression': setting, 'content_min_bytes': 0}) as s:
            r = s.run([str(examples_dir / 'cnn_infer'), '12'])
            assert r.returncode == 0 and 'PASS' in r.stdout, r.stdout + r.stderr
            outputs.append(r.stdout)
            stats.append(s.last_session())
    off, on = stats
    assert outputs[0] == outputs[1]
    assert on['last_inference_phase'] == off['last_inference_phase'] == 'replaying'
    assert on['lane_requests'] == 0 and on['errors'] == 0
    assert off['compressed_payloads'] == 0
    assert on['compressed_payloads'] >= 12           # every input, forwarded or replayed
    assert on['payload_wire_bytes'] < off['payload_wire_bytes']


def test_auto_compresses_at_edge_once_the_link_is_measured(interposer, examples_dir,
                                                           backend):
    """vector_add's first 4 MB copy measures the emulated edge link (at most 450 Mbit/s,
    where the rule picks zstd); the second is compressed. Outputs as without."""
    from rrto_ros.stack import LocalStack
    with LocalStack(backend, 'pipelined', link='edge',
                    client_options={'content_min_bytes': 0}) as s:
        r = s.run([str(examples_dir / 'vector_add')], timeout=300)
        assert r.returncode == 0 and 'PASS' in r.stdout, r.stdout + r.stderr
        st = s.last_session()
        assert s.client.bandwidth.bps is not None and s.client.bandwidth.bps <= 460e6
    assert st['compressed_payloads'] >= 1 and st['errors'] == 0
    assert st['payload_wire_bytes'] < st['payload_bytes']


def test_codecs_are_safe_from_several_threads():
    """The client node compresses on every session's thread, the server decompresses on
    its sessions' and its I/O thread."""
    import threading
    inputs = [model_input(640)[i * 100000:] for i in range(4)]
    bad = []

    def work(data):
        for _ in range(5):
            for codec in payload_codec.CODECS:
                packed = payload_codec.compress(codec, data)
                if payload_codec.decompress(codec, packed, len(data), len(data)) != data:
                    bad.append(codec)

    threads = [threading.Thread(target=work, args=(d,)) for d in inputs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not bad
