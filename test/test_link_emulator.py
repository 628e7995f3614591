# Copyright 2026 rrto_ros authors. Apache-2.0.
"""The link emulator (rrto_ros/bench/link.py): added delay, bandwidth, bounds, and the
ZeroMQ path through it. Tolerances are loose enough for a loaded CI machine; the accurate
numbers come from bench/link_accuracy.py."""

from __future__ import annotations

import socket
import statistics
import time

import pytest

from rrto_ros.bench import link_check
from rrto_ros.bench.link import LinkEmulator
from rrto_ros.bench.link import LinkProcess
from rrto_ros.bench.link import LinkProfile
from rrto_ros.bench.link import MAX_LEAD_S
from rrto_ros.bench.link import parse_target
from rrto_ros.bench.link import PROFILES


@pytest.fixture
def peer():
    with link_check.Peer() as p:
        yield p


def test_profiles_are_the_papers_links():
    assert PROFILES['edge'].rtt_s == pytest.approx(2.6e-3)
    assert PROFILES['edge'].bandwidth_bps == pytest.approx(450e6)
    assert PROFILES['cloud'].rtt_s == pytest.approx(20e-3)
    assert PROFILES['cloud'].bandwidth_bps == pytest.approx(160e6)
    assert PROFILES['loopback'].rtt_s == 0 and PROFILES['loopback'].bandwidth_bps == 0
    assert PROFILES['cloud'].serialisation_s(20_000_000) == pytest.approx(1.0)


@pytest.mark.parametrize('target', ['10.0.0.1:80', 'tcp://example.com:5555', '127.0.0.1',
                                    '127.0.0.1:0', '127.0.0.1:http'])
def test_only_loopback_targets(target):
    with pytest.raises(ValueError):
        parse_target(target)


def test_unknown_profile_is_an_error():
    with pytest.raises(ValueError, match='unknown link profile'):
        LinkEmulator('wifi7', '127.0.0.1:5555')


def test_listens_on_loopback_only(peer):
    with LinkEmulator('loopback', f'127.0.0.1:{peer.port}') as emu:
        assert emu._lsock.getsockname()[0] == '127.0.0.1'


def test_adds_the_round_trip_time(peer):
    rtt = 0.02
    direct = statistics.median(link_check.round_trips(peer.port, 10))
    with LinkEmulator(LinkProfile('t', rtt), f'127.0.0.1:{peer.port}') as emu:
        samples = link_check.round_trips(emu.port, 15)
    assert min(samples) >= rtt - 2 * MAX_LEAD_S      # never early (but the send-call head start)
    assert statistics.median(samples) - direct == pytest.approx(rtt, abs=0.004)


def test_limits_the_bandwidth_each_way(peer):
    p = LinkProfile('slow', 0.0, 40e6)               # 40 Mbit/s: 1 MiB takes 0.21 s
    n = 1 << 20
    with LinkEmulator(p, f'127.0.0.1:{peer.port}') as emu:
        up = link_check.transfer(emu.port, n, 'up')
        down = link_check.transfer(emu.port, n, 'down')
        # The emulator counts a chunk just after sending it: the peer may be first.
        deadline = time.monotonic() + 2.0
        while (emu.stats.bytes_up < n or emu.stats.bytes_down < n) and \
                time.monotonic() < deadline:
            time.sleep(0.01)
        assert emu.stats.bytes_up >= n and emu.stats.bytes_down >= n
    want = p.serialisation_s(n)
    for t in (up, down):
        assert want * 0.97 <= t <= want * 1.25 + 0.03


def test_bytes_queue_behind_each_other(peer):
    """Small echoes sent right behind a large upload wait for it: one link, one queue."""
    p = LinkProfile('q', 0.002, 80e6)
    with LinkEmulator(p, f'127.0.0.1:{peer.port}') as emu:
        with link_check.connect(emu.port) as s:
            t0 = time.perf_counter()
            s.sendall(link_check.HEADER.pack(b'U', 500_000) + bytes(500_000))
            s.sendall(link_check.HEADER.pack(b'E', 8) + bytes(8))
            got = b''
            while len(got) < 9:
                got += s.recv(9 - len(got))
            elapsed = time.perf_counter() - t0
    assert got == b'k' + bytes(8)
    assert elapsed >= p.serialisation_s(500_000) + p.rtt_s - 2 * MAX_LEAD_S


def test_stops_by_itself(peer):
    emu = LinkEmulator('loopback', f'127.0.0.1:{peer.port}', max_lifetime_s=0.3).start()
    port = emu.port
    assert emu.wait(5.0)
    time.sleep(0.1)
    assert not emu.running
    with pytest.raises(OSError):
        socket.create_connection(('127.0.0.1', port), timeout=1.0).close()


def test_connection_limit(peer):
    with LinkEmulator('loopback', f'127.0.0.1:{peer.port}', max_connections=1) as emu:
        with link_check.connect(emu.port) as a:
            a.sendall(link_check.HEADER.pack(b'E', 1) + b'x')
            assert a.recv(1) == b'x'
            with link_check.connect(emu.port) as b:
                b.settimeout(2.0)
                assert b.recv(1) == b''               # closed at once
        assert emu.stats.refused == 1


def test_process_form_stops_with_its_stdin_and_reports(peer):
    lp = LinkProcess('edge', f'tcp://127.0.0.1:{peer.port}').start()
    proc = lp.proc
    try:
        samples = link_check.round_trips(lp.port, 5)
    finally:
        lp.stop()
    assert proc.returncode == 0
    # Never early by more than a send call each way (deliveries start that much ahead).
    assert min(samples) >= PROFILES['edge'].rtt_s - 2 * MAX_LEAD_S
    assert lp.stats['connections'] == 1 and lp.stats['lateness_us']['samples'] >= 10


def test_zeromq_stack_through_the_link(examples_dir):
    """The real client/server protocol through the emulator: same output, slower."""
    from rrto_ros.stack import LocalStack
    exe = [str(examples_dir / 'cnn_infer'), '3']
    with LocalStack('emu', 'pipelined') as stack:
        direct = stack.run(exe)
    with LocalStack('emu', 'pipelined', link='cloud') as stack:
        t0 = time.perf_counter()
        linked = stack.run(exe)
        elapsed = time.perf_counter() - t0
        s = stack.last_session()
    assert linked.returncode == 0, linked.stderr
    assert linked.stdout == direct.stdout
    assert elapsed >= s['blocking_round_trips'] * PROFILES['cloud'].rtt_s
