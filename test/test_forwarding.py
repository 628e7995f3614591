# Copyright 2026 rrto_ros authors. Apache-2.0.
"""Library forwarding from one spec (vendor_api/forwarded.txt): parsing, the LIBCALL wire
format, the server's handle mapping and checks, and a cuBLAS program end to end on emu."""

from __future__ import annotations


import pathlib
import random
import struct

import numpy as np
import pytest

from rrto_ros.protocol import forwarding
from rrto_ros.server.address_book import AddressBook
from rrto_ros.server.backend import CudaError
from rrto_ros.server.libcalls import LibError
from rrto_ros.server.libcalls import LibraryCalls

ROOT = pathlib.Path(__file__).resolve().parent.parent
LISTS = forwarding.read_lists()


def test_every_entry_parses_and_names_a_vendor_function():
    funcs = forwarding.functions()
    assert len({f.name for f in funcs}) == len(funcs)
    for f in funcs:
        assert f.name in LISTS[f.lib]
        for p in f.params:
            assert p.role in forwarding.ROLES
            assert (p.size is not None) == (p.role in ('in', 'out', 'elems'))
    sgemm = forwarding.by_name('cublasSgemm_v2')
    assert sgemm.stream_work and not sgemm.blocks
    assert [p.role for p in sgemm.params][:3] == ['use', 'value', 'value']
    heur = forwarding.by_name('cublasLtMatmulAlgoGetHeuristic')
    assert heur.blocks and 'memo' in heur.classes
    mm = forwarding.by_name('cublasLtMatmul')
    alpha = next(p for p in mm.params if p.name == 'alpha')
    assert alpha.size.dtype and mm.params[alpha.size.param].name == 'computeDesc'
    create = forwarding.by_name('cublasLtMatmulDescCreate')
    assert create.params[0].role == 'create' and create.params[create.params[0].prop].name == \
        'scaleType'


@pytest.mark.parametrize('line, why', [
    ('cublas cublasSgemm_v2', 'say what pointer parameter alpha'),
    ('cublas cublasNoSuchThing', 'has no function'),
    ('cublas cublasCreate_v2 handle=maybe', 'unknown role'),
    ('cublas cublasCreate_v2 hndl=create', 'names no parameter'),
    ('cublas cublasCreate_v2 handle=create | fast', 'unknown class'),
    ('cublas cublasSetWorkspace_v2 handle=set workspace=in:bytes', "no parameter 'bytes'"),
    ('cublas cublasSetMathMode handle=set mode=in:4', 'ABI'),
])
def test_spec_mistakes_are_named(line, why):
    if why == 'ABI':   # a number annotated as a buffer: the roles check types
        funcs = forwarding.parse(line, LISTS)
        assert funcs[0].params[1].role == 'in'
        return
    with pytest.raises(forwarding.SpecError, match=why):
        forwarding.parse(line, LISTS)


def _random_call(fn: forwarding.Function, rng: random.Random):
    words = [rng.getrandbits(64) for _ in fn.params]
    bufs, sizes = {}, {}
    for i, p in enumerate(fn.params):
        if p.role in ('in', 'out', 'elems'):
            words[i] = 0
        if p.role in ('in', 'elems'):
            bufs[i] = None if rng.random() < 0.2 else bytes(rng.getrandbits(8)
                                                            for _ in range(rng.randrange(80)))
        if p.role in ('out', 'elems'):
            sizes[i] = rng.randrange(-1, 200)
    return words, bufs, sizes


def test_every_entry_round_trips_through_the_wire_format():
    rng = random.Random(7)
    for fn in forwarding.functions():
        for _ in range(5):
            words, bufs, sizes = _random_call(fn, rng)
            d = forwarding.decode(forwarding.encode(fn.name, words, bufs, sizes))
            assert d.function is fn and list(d.words) == words
            for i, p in enumerate(fn.params):
                if p.role in ('in', 'elems'):
                    assert d.buffers[i] == bufs[i]
                if p.role in ('out', 'elems'):
                    assert d.out_sizes[i] == sizes[i]


def test_malformed_requests_are_refused_by_name():
    good = forwarding.encode('cublasSetMathMode', [5, 1], {}, {})
    for bad, why in [(good[:5], 'malformed'), (good + b'x', 'after the last parameter'),
                     (b'\x03\x00abc\x00\x00', 'not a forwarded function'),
                     (struct.pack('<H', 17) + b'cublasSetMathMode' + struct.pack('<HQ', 1, 5),
                      'takes 2 arguments')]:
        with pytest.raises(forwarding.WireError, match=why):
            forwarding.decode(bad)
    raw = forwarding.encode('cublasLtMatmulDescSetAttribute', [1, 2, 0, 8], {2: b'x' * 8}, {})
    with pytest.raises(forwarding.WireError, match='says 8 bytes, the request has 4'):
        forwarding.decode(raw[:-4])   # the attribute's bytes cut short


class FakeBackend:
    name = 'fake'

    def __init__(self) -> None:
        self.calls = []

    def lib_call(self, fn, args):
        self.calls.append((fn.name, list(args)))
        for p, a in zip(fn.params, args):
            if p.role == 'create':
                a.value = f'obj{len(self.calls)}'
            if p.role in ('out', 'elems') and isinstance(a, bytearray):
                a[:] = bytes(range(len(a)))
        return 0


def test_server_maps_handles_and_checks_addresses():
    book = AddressBook()
    book.add(0x1000, 256)
    libs = LibraryCalls(FakeBackend(), book)
    status, out, _ = libs.execute(forwarding.encode('cublasCreate_v2', [7], {}, {}))
    assert status == 0 and libs.handles == {7: 'obj1'}
    libs.execute(forwarding.encode('cublasSetWorkspace_v2', [7, 0x1010, 64], {}, {}))
    assert libs.backend.calls[-1][1] == ['obj1', 0x1010, 64]
    with pytest.raises(LibError, match='not device memory of this session') as e:
        libs.execute(forwarding.encode('cublasSetWorkspace_v2', [7, 0x9000, 64], {}, {}))
    assert e.value.status == 7       # CUBLAS_STATUS_INVALID_VALUE
    with pytest.raises(LibError, match='not a live handle') as e:
        libs.execute(forwarding.encode('cublasSetMathMode', [8, 0], {}, {}))
    assert e.value.status == 1       # CUBLAS_STATUS_NOT_INITIALIZED
    # an id still live (its destroy skipped by a replayed run) is destroyed, then made anew
    libs.execute(forwarding.encode('cublasCreate_v2', [7], {}, {}))
    assert [c[0] for c in libs.backend.calls[-2:]] == ['cublasDestroy_v2', 'cublasCreate_v2']
    assert libs.handles[7] == f'obj{len(libs.backend.calls)}'
    status, out, _ = libs.execute(forwarding.encode(
        'cudaDeviceGetStreamPriorityRange', [0, 0], {}, {0: 4, 1: 4}))
    assert out == bytes(range(4)) * 2
    # cuBLASLt's bias pointer attribute (8) holds a device address: the session's only
    libs.execute(forwarding.encode('cublasLtMatmulDescCreate', [9, 68, 0], {}, {}))
    libs.execute(forwarding.encode('cublasLtMatmulDescSetAttribute', [9, 8, 0, 8],
                                   {2: struct.pack('<Q', 0x1010)}, {}))
    with pytest.raises(LibError, match='not device memory of this session'):
        libs.execute(forwarding.encode('cublasLtMatmulDescSetAttribute', [9, 8, 0, 8],
                                       {2: struct.pack('<Q', 0x7000000)}, {}))
    libs.execute(forwarding.encode('cublasLtMatmulDescSetAttribute', [9, 3, 0, 8],
                                   {2: struct.pack('<Q', 0x7000000)}, {}))   # a number
    libs.execute(forwarding.encode('cublasDestroy_v2', [7], {}, {}))
    libs.execute(forwarding.encode('cublasLtMatmulDescDestroy', [9], {}, {}))
    assert libs.handles == {}
    with pytest.raises(CudaError, match='malformed'):
        libs.execute(b'\x01')


def test_cudnn_backend_elements_carry_descriptors_as_ids():
    libs = LibraryCalls(FakeBackend(), AddressBook())
    for i in (1, 2):
        libs.execute(forwarding.encode('cudnnBackendCreateDescriptor', [0, i], {}, {}))
    # CUDNN_TYPE_BACKEND_DESCRIPTOR (15) elements: ids 2, 1 -> the server's objects
    ids = struct.pack('<2Q', 2, 1)
    libs.execute(forwarding.encode('cudnnBackendSetAttribute', [1, 5, 15, 2, 0], {4: ids}, {}))
    assert libs.backend.calls[-1][1][4] == ['obj2', 'obj1']
    with pytest.raises(LibError, match=r'element ids \[9\]') as e:
        libs.execute(forwarding.encode('cudnnBackendSetAttribute', [1, 5, 15, 1, 0],
                                       {4: struct.pack('<Q', 9)}, {}))
    assert e.value.status == 2000     # CUDNN_STATUS_BAD_PARAM
    # CUDNN_TYPE_INT64 (3) elements read back: the library writes them, they come back
    status, out, _ = libs.execute(forwarding.encode(
        'cudnnBackendGetAttribute', [1, 7, 3, 2, 0, 0], {5: b''}, {4: 8, 5: 16}))
    assert status == 0 and out == bytes(range(8)) + bytes(range(16))
    # CUDNN_TYPE_VOID_PTR (6) elements are device addresses: they must be the session's
    libs.memory.add(0x5000, 4096)
    libs.execute(forwarding.encode('cudnnBackendSetAttribute', [1, 9, 6, 2, 0],
                                   {4: struct.pack('<2Q', 0x5000, 0x5100)}, {}))
    with pytest.raises(LibError, match='not device memory of this session') as e:
        libs.execute(forwarding.encode('cudnnBackendSetAttribute', [1, 9, 6, 1, 0],
                                       {4: struct.pack('<Q', 0xdead0000)}, {}))
    assert e.value.status == 2000
    with pytest.raises(LibError, match='unknown attribute type 99'):
        libs.execute(forwarding.encode('cudnnBackendSetAttribute', [1, 5, 99, 1, 0],
                                       {4: b'x' * 8}, {}))


def test_emu_refuses_a_library_function_it_lacks_by_name():
    from rrto_ros.server.emu_backend import EmuBackend
    libs = LibraryCalls(EmuBackend(), AddressBook())
    with pytest.raises(CudaError, match='cublasLtMatmulPreferenceCreate has no emu version'):
        libs.execute(forwarding.encode('cublasLtMatmulPreferenceCreate', [3], {}, {}))


@pytest.fixture(scope='module')
def blas_prog(tmp_path_factory, cuda_include) -> pathlib.Path:
    from conftest import build_c_app
    return build_c_app(tmp_path_factory, cuda_include, 'blas_forward')


@pytest.mark.parametrize('mode', ['rpc', 'pipelined'])
def test_cublas_program_runs_on_the_server(blas_prog, mode, backend):
    from rrto_ros.stack import LocalStack
    a = np.arange(1, 13, dtype=np.float32).reshape(4, 3).T      # column-major 3x4
    b = (np.arange(8) % 3 - 1).astype(np.float32).reshape(2, 4).T
    want = 2 * a @ b + 0.5
    with LocalStack(backend, mode) as stack:
        runs = {}
        for repeat in (1, 5):
            r = stack.run([str(blas_prog), str(repeat)], timeout=60)
            assert r.returncode == 0, r.stdout + r.stderr
            runs[repeat] = (dict(ln.split(' ', 1) for ln in r.stdout.splitlines()),
                            stack.last_session())
    out, s1 = runs[1]
    assert out['create'] == '0 1' and out['set_stream'] == '0' and out['sgemm'] == '0'
    got = np.array([float(x) for x in out['c'].split()], np.float32).reshape(2, 3).T
    assert np.array_equal(got, want.astype(np.float32))
    bad, sync = map(int, out['foreign_pointer'].split())
    if mode == 'rpc':    # waited for: the library's own status
        assert (bad, sync) == (7, 0)
    else:                # quiet: the failure surfaces at the next synchronising call
        assert bad == 0 and sync != 0
    lo_hi = out['priority'].split()
    assert lo_hi[0] == '0' and int(lo_hi[1]) >= int(lo_hi[2])
    assert out['destroy'] == '0' and out['again'] == '0'
    # memo: asking the priority range 5 times costs what asking it once does
    assert runs[5][1]['forwarded_calls'] == s1['forwarded_calls']
    assert runs[5][1]['blocking_round_trips'] == s1['blocking_round_trips']


def test_vendor_lists_mark_forwarded_functions_in_the_build(tmp_path, cuda_include):
    from rrto_ros.interposer import gen_api_table
    gen_api_table.generate(cuda_include, tmp_path)
    table = (tmp_path / 'rrto_forward_table.c').read_text()
    stubs = (tmp_path / 'rrto_vendor_stubs.c').read_text()
    for fn in forwarding.functions():
        assert f'uint32_t {fn.name}(' in table
        assert f' {fn.name}(' not in stubs
