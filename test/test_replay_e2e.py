# Copyright 2026 rrto_ros authors. Apache-2.0.
"""Record/replay end to end: the CNN demo program, unmodified, under the interposer in mode
``replay`` (emu here; ``--backend cuda`` on a GPU machine)."""

from __future__ import annotations

import statistics
import subprocess
import time

import pytest

from rrto_ros.stack import free_tcp_port
from rrto_ros.stack import LocalStack

N = 200
WINDOW = 3


@pytest.fixture(scope='module')
def reference(examples_dir, backend) -> str:
    """The program's output when every call is forwarded (pipelined), or native on a GPU."""
    exe = str(examples_dir / 'cnn_infer')
    if backend == 'cuda':
        r = subprocess.run([exe, str(N)], capture_output=True, text=True, timeout=300)
    else:
        with LocalStack('emu', 'pipelined') as stack:
            r = stack.run([exe, str(N)], timeout=600)
    assert r.returncode == 0, r.stderr
    return r.stdout


def run_replay(examples_dir, backend, *args: str, window: int = WINDOW):
    with LocalStack(backend, 'replay') as stack:
        stack.client.set_record_window(window)
        r = stack.run([str(examples_dir / 'cnn_infer'), *args], timeout=600)
        return r, stack.last_session()


def test_replay_enters_quickly_and_costs_one_round_trip(examples_dir, backend, reference):
    r, s = run_replay(examples_dir, backend, str(N))
    assert r.returncode == 0, r.stderr
    assert r.stdout == reference                      # every output identical
    assert s['divergences'] == 0
    assert 0 <= s['replay_started_at'] <= WINDOW + 1  # replaying within window+1 inferences
    steady = s['round_trips_per_inference'][WINDOW + 3:]
    assert len(steady) > 100
    assert max(steady) == 1 and statistics.median(steady) == 1   # the output copy, only
    assert s['departures'] == 1      # the program's clean-up after its last inference
    # Every replayed inference's one request (REPLAY_RUN) went over the replay lane.
    assert s['lane_requests'] >= N - s['replay_started_at'] - 1


@pytest.mark.parametrize('host_us, messages', [(0, 1), (300, 2)])
def test_frontier_messages_per_inference(examples_dir, backend, reference, host_us, messages):
    """An inference issued in a quick burst sends its frontier once (with the result
    request); one whose calls are spread out (host work between layers) sends the first
    validated entries ahead, so the server starts early. Outputs identical either way."""
    n = 40
    with LocalStack(backend, 'replay') as stack:
        r = stack.run([str(examples_dir / 'cnn_infer'), str(n)], timeout=600,
                      extra_env={'CNN_INFER_HOST_US': str(host_us)})
        s = stack.last_session()
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[:n] == reference.splitlines()[:n]
    replayed = n - s['replay_started_at']
    if host_us:
        assert s['lane_requests'] == messages * replayed
    else:   # a burst preempted on a busy machine may outlast the 50 us wait now and then
        assert replayed <= s['lane_requests'] <= replayed + replayed // 10


@pytest.mark.parametrize('options, says', [
    ({'replay_lane': False}, ''),
    # A lane the interposer cannot reach (a firewall, a wrong lane_endpoint): said once.
    ({'lane_endpoint': f'tcp://127.0.0.1:{free_tcp_port()}'}, 'no replay lane'),
])
def test_replay_without_lane_is_the_same(examples_dir, backend, reference, options, says):
    """Without the lane, REPLAY_RUN goes through the client node and ZeroMQ; same results,
    same round trips."""
    with LocalStack(backend, 'replay', client_options=options) as stack:
        r = stack.run([str(examples_dir / 'cnn_infer'), str(N)], timeout=600)
        s = stack.last_session()
    assert r.returncode == 0, r.stderr
    assert r.stdout == reference
    assert s['lane_requests'] == 0
    assert max(s['round_trips_per_inference'][WINDOW + 3:]) == 1
    assert r.stderr.count('[rrto]') == (1 if says else 0) and says in r.stderr


def test_mode_change_and_restart_reach_an_app_replaying_on_the_lane(
        examples_dir, backend, reference):
    """While the app replays on its lane, the client node still decides: a mode change or
    "record again" takes effect at the next inference (through the answer to the
    interposer's note), and outputs stay identical throughout."""
    with LocalStack(backend, 'replay') as stack:
        stack.client.set_record_window(WINDOW)
        # Host work between layers (1 ms each) keeps the app running for seconds.
        env = stack.env({'CNN_INFER_HOST_US': '1000'})
        proc = subprocess.Popen([str(examples_dir / 'cnn_infer'), str(N)], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

        def until(cond, what):
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                sessions = stack.client.snapshot()
                if sessions and cond(sessions[0]):
                    return sessions[0]
                assert proc.poll() is None, f'the app ended before {what}'
                time.sleep(0.005)
            raise AssertionError(f'no {what} within 60 s')

        until(lambda s: s['lane_requests'] > 5, 'replay on the lane')
        stack.client.set_mode('pipelined')
        time.sleep(0.05)                  # the interposer hears of it at its next note
        settled = until(lambda s: True, 'a snapshot')['lane_requests']
        time.sleep(0.1)                   # several inferences, none of them on the lane
        assert until(lambda s: True, 'a snapshot')['lane_requests'] == settled
        stack.client.set_mode('replay')
        until(lambda s: s['lane_requests'] > settled + 5, 'replay again')
        stack.client.restart_recording()
        until(lambda s: s['phase'] == 'recording', 'recording again')
        until(lambda s: s['phase'] == 'replaying', 'replaying again')
        out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    assert out == reference


def test_forced_divergence_midway_recovers(examples_dir, backend, reference):
    r, s = run_replay(examples_dir, backend, str(N), '1', '100')
    assert r.returncode == 0, r.stderr
    assert r.stdout == reference                      # no wrong result around the change
    assert s['divergences'] == 1
    after = s['round_trips_per_inference'][100 + WINDOW + 3:]
    assert after and max(after) == 1                  # back in replay after the change


def test_record_window_is_respected(examples_dir, backend):
    r, s = run_replay(examples_dir, backend, '30', window=10)
    assert r.returncode == 0, r.stderr
    assert s['replay_started_at'] >= 10


def test_replay_mode_without_repetition_stays_forwarding(examples_dir, backend):
    """A program that never repeats an inference is never replayed, and still runs."""
    r, s = run_replay(examples_dir, backend, '2')
    assert r.returncode == 0, r.stderr
    assert s['replay_started_at'] == -1 and s['phase'] == 'recording'
    assert s['divergences'] == 0 and s['departures'] == 0


def test_without_libsodium_the_lane_is_off_and_says_what_to_install(
        examples_dir, backend, reference, monkeypatch, caplog):
    """A robot where the client node finds no libsodium (simulated): no lane, never a plain
    one; one line names the package; replays go through the client node, same results."""
    import logging
    from rrto_ros.client import session as client_session
    monkeypatch.setattr(client_session, 'default_sodium_library', lambda: '')
    caplog.set_level(logging.WARNING, 'rrto_ros')
    with LocalStack(backend, 'replay') as stack:
        r = stack.run([str(examples_dir / 'cnn_infer'), str(N)], timeout=600)
        s = stack.last_session()
    assert r.returncode == 0, r.stderr
    assert r.stdout == reference and s['lane_requests'] == 0
    said = [m.getMessage() for m in caplog.records if 'no replay lane' in m.getMessage()]
    assert len(said) == 1 and 'Install libsodium23 (sudo apt-get install libsodium23)' in \
        said[0], said


@pytest.fixture(scope='module')
def async_infer(tmp_path_factory, cuda_include):
    from conftest import build_c_app
    return build_c_app(tmp_path_factory, cuda_include, 'async_infer')


def test_replay_of_an_async_copy_to_the_host_costs_one_round_trip(async_infer, backend,
                                                                  interposer):
    """PyTorch's shape of an output (cudaMemcpyAsync to the host, then a stream sync): while
    recording, the copy's answer is deferred to the sync; the sequence is still found and a
    replayed inference still costs one blocking round trip."""
    with LocalStack(backend, 'replay') as stack:
        stack.client.set_record_window(WINDOW)
        r = stack.run([str(async_infer), '60'], timeout=600)
        s = stack.last_session()
    assert r.returncode == 0 and r.stdout == 'PASS\n', r.stdout + r.stderr
    assert s['divergences'] == 0 and 0 <= s['replay_started_at'] <= WINDOW + 1
    steady = s['round_trips_per_inference'][WINDOW + 3:]
    assert len(steady) > 40 and max(steady) == 1


def test_session_outlives_an_unread_async_copy(async_infer, backend, interposer):
    """The app's host work between an async copy to the host and its sync may outlast the
    server's session timeout: the client node, stuck handing over the data, keeps the
    session alive."""
    with LocalStack(backend, 'pipelined', server_options={'session_timeout_s': 1.0},
                    client_options={'heartbeat_s': 0.2}) as stack:
        r = stack.run([str(async_infer), 'late', '3'], timeout=600)
    assert r.returncode == 0 and r.stdout == 'PASS\n', r.stdout + r.stderr


def test_changed_parameter_padding_is_patched_not_diverged(examples_dir, backend):
    """struct_param's loop changes the padding bytes of its by-value struct halfway (bytes no
    kernel reads, as PyTorch's structs carry stack garbage): replay sends the new bytes as
    a patch, the outputs stay those of forwarding, and replay does not end."""
    outputs = {}
    for mode in ('pipelined', 'replay'):
        with LocalStack(backend, mode) as stack:
            r = stack.run([str(examples_dir / 'struct_param'), '16'], timeout=300)
            s = stack.last_session()
            deadline = time.monotonic() + 10
            while not stack.server.stats.per_session and time.monotonic() < deadline:
                time.sleep(0.05)        # the server ends the session after the app's BYE
            server = list(stack.server.stats.per_session.values())
        assert r.returncode == 0, r.stderr
        outputs[mode] = r.stdout
    assert outputs['replay'] == outputs['pipelined']
    assert s['divergences'] == 0 and 0 < s['replay_started_at'] < 3 + 8   # before the change
    assert s['round_trips_per_inference'][-6:] == (1,) * 6
    assert server[-1]['replay_patches'] == 1
