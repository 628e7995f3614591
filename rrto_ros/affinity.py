# Copyright 2026 rrto_ros authors. Apache-2.0.
"""Keeping a node's hot threads on one CPU (the ``pin_cpu`` setting of both nodes).

A request crosses two threads in each node: the node's own (the client's session thread,
the server's I/O thread) and ZeroMQ's I/O thread. When they run on different CPUs, every
hand-off wakes an idle CPU, which costs tens of microseconds (far more in a VM); on one
CPU a hand-off is a context switch. ``bench/replay_stages.py`` measures the difference.

ZeroMQ starts its I/O threads when a context makes its first socket, and a new thread
inherits the CPU mask of the thread that starts it: so the context is made, and its first
socket opened, while the calling thread is pinned.
"""

from __future__ import annotations

from contextlib import contextmanager
import os
import threading
from typing import Iterator, Set

import zmq

NO_PIN = -1
_PROCESS_CPUS: Set[int] = set(os.sched_getaffinity(0))


def check_cpu(cpu: int) -> int:
    """-1 (do not pin) or a CPU this process may run on."""
    if isinstance(cpu, bool) or not isinstance(cpu, int) or \
            (cpu != NO_PIN and cpu not in _PROCESS_CPUS):
        raise ValueError(f'pin_cpu must be -1 (no pinning) or one of the CPUs this process may '
                         f'use ({_cpu_list(_PROCESS_CPUS)}), not {cpu!r}')
    return cpu


def pin_thread(cpu: int) -> None:
    """Keep the calling thread (and the threads it starts from now on) on ``cpu``."""
    if cpu != NO_PIN:
        os.sched_setaffinity(0, {cpu})


def unpin_thread() -> None:
    """Let the calling thread run on every CPU the process had at start."""
    os.sched_setaffinity(0, _PROCESS_CPUS)


@contextmanager
def pinned(cpu: int) -> Iterator[None]:
    if cpu == NO_PIN:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def context_on(cpu: int) -> zmq.Context:
    """A new ZeroMQ context whose I/O threads run on ``cpu``; for -1 the process-wide one."""
    if cpu == NO_PIN:
        return zmq.Context.instance()
    with pinned(cpu):
        ctx = zmq.Context()
        ctx.socket(zmq.PAIR).close(0)   # starts the I/O threads now, with this mask
    return ctx


def release_context(ctx: zmq.Context, cpu: int) -> None:
    """End a context made by ``context_on`` once its sockets are closed, without making the
    caller wait for a socket that some thread has not closed yet."""
    if cpu != NO_PIN:
        threading.Thread(target=ctx.term, name='rrto-zmq-term', daemon=True).start()


def _cpu_list(cpus: Set[int]) -> str:
    return ','.join(str(c) for c in sorted(cpus))
