# Copyright 2026 rrto_ros authors. Apache-2.0.
"""A kernel parameter word that points into the app's heap travels as RRTO_HOST_WORD
(interposer/registry.c), so that PyTorch's launches (nvcc's host-device lambda wrapper
holds a heap pointer that changes every launch) repeat exactly for record/replay."""

from __future__ import annotations

import pathlib
import struct
import subprocess

from rrto_ros.record import oplog_file
from rrto_ros.stack import LocalStack

ROOT = pathlib.Path(__file__).resolve().parent.parent
HOST_WORD = 0xffff800000000000


def test_heap_words_are_sent_as_the_marker(tmp_path, cuda_include, interposer, monkeypatch):
    from conftest import _cudart_dir
    from test_emu_unknown import elf, fatbin, kparam   # the synthetic cubin's makers
    exe = tmp_path / 'heap_params'
    libdir = _cudart_dir(cuda_include)
    subprocess.run(['gcc', '-O1', '-o', str(exe), str(ROOT / 'test' / 'c' / 'heap_params.c'),
                    '-I', str(cuda_include), '-L', str(libdir), '-lcudart',
                    f'-Wl,-rpath,{libdir}'], check=True)
    image = tmp_path / 'kern.fatbin'
    image.write_bytes(fatbin(elf({'.nv.info._Z4kernv': kparam(0, 0, 24)})))
    dump = tmp_path / 'calls.oplog'
    monkeypatch.setenv('RRTO_EMU_UNKNOWN_KERNELS', 'skip')   # the kernel runs as a no-op
    monkeypatch.setenv(oplog_file.ENV, str(dump))
    with LocalStack('emu', 'pipelined') as stack:
        r = stack.run([str(exe), str(image)], timeout=60)
    assert r.returncode == 0 and r.stdout.split() == ['launch', '0', 'launch', '0',
                                                      'sync', '0'], r.stdout + r.stderr
    _, calls = oplog_file.load(str(dump))
    launches = [c for c in calls if c.op == 'LAUNCH']
    assert len(launches) == 2
    for c in launches:
        assert struct.unpack('<QQQ', c.key_data) == (HOST_WORD, 42, 0x1000)
    assert launches[0].key() == launches[1].key()      # the same call both times
