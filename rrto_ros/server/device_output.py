# Copyright 2026 rrto_ros authors. Apache-2.0.
"""Device-side ``printf`` text back to the app that printed it.

The CUDA driver writes a context's printf buffer to the server process's fd 1 when the
context reaches a flush point (a launch, a synchronisation, a blocking copy, a module load,
a reset). One server process holds many sessions, so fd 1 is shared: while a session whose
modules print runs a request, fd 1 points at a file of the capture (``dup2``), and what
lands there is that session's text; it rides back with the session's next reply and the
interposer writes it to the app's own stdout.

Only sessions whose modules call ``vprintf`` (what ``printf`` in a kernel compiles to) are
captured, one at a time (a process-wide lock): the others never write to fd 1 at their
flush points, so they neither wait nor leak into a capture. Anything else written to fd 1
while a capture is open would reach that session's app: the server logs to stderr, and
nothing of it writes to stdout.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import tempfile
import threading
from typing import Iterator, Optional

log = logging.getLogger(__name__)
PRINTF_SYMBOL = b'vprintf'
MAX_OUTPUT_BYTES = 1 << 20   # kept per session until its next reply; the rest is dropped


def module_prints(image: bytes) -> bool:
    """Does a module image (fatbin, cubin or PTX) call device printf? A false positive
    only costs a capture."""
    return PRINTF_SYMBOL in image


class StdoutCapture:
    """Process-wide: the one place that moves fd 1."""

    _lock = threading.Lock()
    _file: Optional[int] = None

    @classmethod
    @contextlib.contextmanager
    def capture(cls, sink: bytearray) -> Iterator[None]:
        """Run the body with fd 1 captured; what was written there is appended to sink."""
        with cls._lock:
            if cls._file is None:
                fd, path = tempfile.mkstemp(prefix='rrto-printf-')
                os.unlink(path)
                cls._file = fd
            _flush_stdio()
            stdout = os.dup(1)   # whatever fd 1 is now: it is put back as it was
            os.dup2(cls._file, 1)
            try:
                yield
            finally:
                _flush_stdio()   # a driver that writes through stdio's buffer
                os.dup2(stdout, 1)
                os.close(stdout)
                size = os.lseek(cls._file, 0, os.SEEK_END)
                if size:
                    room = max(0, MAX_OUTPUT_BYTES - len(sink))
                    sink += os.pread(cls._file, min(size, room), 0)
                    os.ftruncate(cls._file, 0)
                    if size > room:
                        log.warning('dropped %d bytes of device printf output: more than %d '
                                    'bytes waited for the next reply to the app', size - room,
                                    MAX_OUTPUT_BYTES)
                os.lseek(cls._file, 0, os.SEEK_SET)


_libc = ctypes.CDLL(None)


def _flush_stdio() -> None:
    _libc.fflush(None)
