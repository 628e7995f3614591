# Copyright 2026 rrto_ros authors. Apache-2.0.
"""pin_cpu: validation, and ZeroMQ's I/O threads started on the chosen CPU."""

import glob
import os
import threading

import pytest

from rrto_ros import affinity
from rrto_ros.client.config import ClientConfig
from rrto_ros.server.server import ServerConfig

CPUS = sorted(os.sched_getaffinity(0))


def thread_cpus() -> dict:
    """tid -> allowed CPUs, for every thread of this process."""
    out = {}
    for task in glob.glob('/proc/self/task/*'):
        out[int(os.path.basename(task))] = os.sched_getaffinity(int(os.path.basename(task)))
    return out


@pytest.mark.parametrize('bad', [-2, 100000, '1', True, 1.0])
def test_bad_cpu_is_refused_with_the_usable_ones(bad):
    with pytest.raises(ValueError, match='pin_cpu must be -1'):
        affinity.check_cpu(bad)
    with pytest.raises(ValueError, match='pin_cpu'):
        ClientConfig(pin_cpu=bad).validate()
    with pytest.raises(ValueError, match='pin_cpu'):
        ServerConfig(pin_cpu=bad).validate()


def test_no_pinning_uses_the_shared_context():
    import zmq
    assert affinity.context_on(affinity.NO_PIN) is zmq.Context.instance()


def test_context_threads_start_on_the_cpu_and_the_caller_is_restored():
    cpu = CPUS[-1]
    before_threads = set(thread_cpus())
    before_mask = os.sched_getaffinity(0)
    ctx = affinity.context_on(cpu)
    try:
        new = {tid: mask for tid, mask in thread_cpus().items() if tid not in before_threads}
        assert new, 'ZeroMQ started no threads'
        assert all(mask == {cpu} for mask in new.values()), new
        assert os.sched_getaffinity(0) == before_mask
    finally:
        ctx.term()


def test_pin_and_unpin_a_thread():
    cpu = CPUS[0]
    seen = {}

    def body():
        affinity.pin_thread(cpu)
        seen['pinned'] = os.sched_getaffinity(0)
        affinity.unpin_thread()
        seen['unpinned'] = os.sched_getaffinity(0)
    t = threading.Thread(target=body)
    t.start()
    t.join()
    assert seen['pinned'] == {cpu}
    assert seen['unpinned'] == set(CPUS)


def test_pinned_nodes_replay_the_demo(examples_dir, backend):
    """Both cores pinned (server in its own process): same outputs, replay reached."""
    from rrto_ros.stack import LocalStack
    exe = str(examples_dir / 'cnn_infer')
    with LocalStack(backend, 'pipelined') as stack:
        want = stack.run([exe, '12'], timeout=300)
    with LocalStack(backend, 'replay', server_process=True, pin_cpus=(CPUS[0], CPUS[-1])) \
            as stack:
        got = stack.run([exe, '12'], timeout=300)
        s = stack.last_session()
    assert got.returncode == 0, got.stderr
    assert got.stdout == want.stdout
    assert 0 <= s['replay_started_at'] <= 4
