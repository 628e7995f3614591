# Copyright 2026 rrto_ros authors. Apache-2.0.
"""The offload baseline (mode ``offload``, MCOP-style, not transparent): the robot sends
only the input image to a server that runs the CNN natively (bench/c/cnn_serve.cu) and
gets back only the 10 scores. One blocking round trip of 12288 + 40 bytes per inference.

The robot side here sends the images cnn_infer would make (same generator, same seeds)
and prints its results in cnn_infer's format, so they can be compared line by line with
a native cnn_infer run.
"""

from __future__ import annotations

import os
import pathlib
import select
import shutil
import socket
import subprocess
import time
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

IMAGE_FLOATS = 3 * 32 * 32
IMAGE_BYTES = IMAGE_FLOATS * 4
NCLASSES = 10
SCORES_BYTES = NCLASSES * 4
# The same code generation as examples/Makefile.
NVCC_ARCH_FLAGS = ('--generate-code', 'arch=compute_75,code=[compute_75,sm_75]',
                   '--generate-code', 'arch=compute_90,code=sm_90')


def cnn_image(seed: int, it: int) -> np.ndarray:
    """cnn_infer's input for iteration ``it`` (cnn_model.cuh, cnn_image), bit for bit.

    The C code computes 0.5f * ((state >> 8) * 2^-23 - 1) + 0.5f in float32; every step is
    exact, so the value is (state >> 8) / 2^24.
    """
    state = (seed * 2654435761 + it * 40503 + 12345) & 0xFFFFFFFF
    out = np.empty(IMAGE_FLOATS, np.uint32)
    for k in range(IMAGE_FLOATS):
        state = (state * 1664525 + 1013904223) & 0xFFFFFFFF
        out[k] = state >> 8
    return (out.astype(np.float64) / float(1 << 24)).astype(np.float32)


def format_result(it: int, scores: Sequence[float]) -> str:
    """cnn_infer's line for one inference (without its own reference check)."""
    best = 0
    for k in range(len(scores)):
        if scores[k] > scores[best]:
            best = k
    return f'infer {it}: class={best} scores=' + ' '.join(f'{float(v):.5f}' for v in scores)


def _recv_exact(s: socket.socket, n: int) -> bytes:
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = s.recv_into(view[got:])
        if not k:
            raise ConnectionError('offload server closed the connection')
        got += k
    return bytes(buf)


def run_client(port: int, iterations: int, seed: int = 1,
               timeout_s: float = 30.0) -> Tuple[List[str], List[float]]:
    """Send ``iterations`` images to the server at 127.0.0.1:port; returns the result
    lines and each inference's latency (send of the image to arrival of the scores)."""
    lines: List[str] = []
    latencies: List[float] = []
    with socket.create_connection(('127.0.0.1', port), timeout=timeout_s) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for it in range(iterations):
            image = cnn_image(seed, it).astype('<f4').tobytes()
            t0 = time.perf_counter()
            s.sendall(image)
            reply = _recv_exact(s, SCORES_BYTES)
            latencies.append(time.perf_counter() - t0)
            lines.append(format_result(it, np.frombuffer(reply, '<f4').tolist()))
    return lines, latencies


def build_server(root: pathlib.Path, out_dir: pathlib.Path,
                 nvcc: Optional[str] = None) -> pathlib.Path:
    """Compile bench/c/cnn_serve.cu (needs nvcc)."""
    nvcc = nvcc or shutil.which('nvcc') or '/usr/local/cuda/bin/nvcc'
    if not os.path.exists(nvcc):
        raise FileNotFoundError('nvcc not found: cannot build the offload server')
    exe = out_dir / 'cnn_serve'
    subprocess.run([nvcc, '-cudart', 'shared', '-O2', '-std=c++17', *NVCC_ARCH_FLAGS,
                    '-I', str(root / 'examples'), '-o', str(exe),
                    str(root / 'bench' / 'c' / 'cnn_serve.cu')],
                   check=True, capture_output=True, text=True)
    return exe


class ServerProcess:
    """cnn_serve on 127.0.0.1 (natively, or under the interposer when ``env`` says so)."""

    def __init__(self, exe: pathlib.Path, lifetime_s: int = 600,
                 env: Optional[Dict[str, str]] = None) -> None:
        self.cmd = [str(exe), '0', str(lifetime_s)]
        self.env = env
        self.proc: Optional[subprocess.Popen] = None
        self.port = 0
        self.stderr = ''

    def __enter__(self) -> 'ServerProcess':
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=self.env)
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], 60.0)
        line = self.proc.stdout.readline() if ready else ''
        if not line.startswith('cnn_serve: listening on '):
            self.__exit__()
            raise RuntimeError(f'cnn_serve did not start: {line!r} {self.stderr[-2000:]}')
        self.port = int(line.rsplit(':', 1)[1])
        return self

    def __exit__(self, *exc) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            _, self.stderr = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, self.stderr = self.proc.communicate()
        self.proc = None
