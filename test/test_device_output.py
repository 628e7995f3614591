# Copyright 2026 rrto_ros authors. Apache-2.0.
"""Device printf text goes back to the app that printed it, not to the server's stdout."""

from __future__ import annotations

import os

from rrto_ros.server.device_output import module_prints
from rrto_ros.server.device_output import StdoutCapture
from rrto_ros.stack import LocalStack

EXPECTED = ''.join(f'device printf: thread {t} says {40 + t}\n' for t in range(4)) + 'PASS\n'


def test_capture_takes_what_fd1_gets_inside_only(capfd):
    sink = bytearray()
    os.write(1, b'before\n')
    with StdoutCapture.capture(sink):
        os.write(1, b'inside\n')
    with StdoutCapture.capture(sink):
        os.write(1, b'again\n')
    os.write(1, b'after\n')
    assert bytes(sink) == b'inside\nagain\n'
    assert capfd.readouterr().out == 'before\nafter\n'


def test_modules_that_print_are_recognised():
    assert module_prints(b'\x7fELF...call.uni vprintf, ...')
    assert not module_prints(b'\x7fELF... no such call ...')


def test_device_printf_reaches_the_apps_stdout(interposer, examples_dir, backend, capfd):
    for mode in ('rpc', 'pipelined'):
        with LocalStack(backend, mode) as s:   # the server runs in this process
            r = s.run([str(examples_dir / 'device_printf')], timeout=300)
        assert r.returncode == 0, r.stderr
        assert r.stdout == EXPECTED, (mode, r.stdout)
    assert 'device printf' not in capfd.readouterr().out   # not in the server's stdout
