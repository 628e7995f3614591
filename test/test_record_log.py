# Copyright 2026 rrto_ros authors. Apache-2.0.
"""Calls, their keys and interning, and the bounded operator log."""

from __future__ import annotations

import numpy as np
import pytest

from rrto_ros.protocol.ops import Op
from rrto_ros.record.calls import Call
from rrto_ros.record.calls import KeyInterner
from rrto_ros.record.oplog import OpLog


def test_key_includes_identity_fields_and_results():
    a = Call('MALLOC', (256,), result=(0x1000,))
    assert a.key() == Call('MALLOC', (256,), result=(0x1000,)).key()
    assert a.key() != Call('MALLOC', (256,), result=(0x2000,)).key()     # other result
    assert a.key() != Call('MALLOC', (256,), result=(0x1000,), err=2).key()
    h1 = Call('MEMCPY_HTOD', (0x1000, 0, 0), var_len=64)
    assert h1.key() == Call('MEMCPY_HTOD', (0x1000, 0, 0), var_len=64).key()
    assert h1.key() != Call('MEMCPY_HTOD', (0x1000, 0, 0), var_len=65).key()
    l1 = Call('LAUNCH', (1, 1, 1, 1, 32, 1, 1, 0, 0), key_data=b'\x01' * 8)
    assert l1.key() != Call('LAUNCH', (1, 1, 1, 1, 32, 1, 1, 0, 0), key_data=b'\x02' * 8).key()


def test_call_normalises_args_and_op_enum():
    c = Call(Op.MEMSET, [1, 2, 3, 0, 0], bytearray(b'x'), result=[5])
    assert c.op == 'MEMSET' and c.args == (1, 2, 3, 0, 0) and c.result == (5,)
    assert c.key_data == b'x'
    hash(c.key())
    assert c.arg(4) == 0 and c.arg(9, -1) == -1


def test_interner_dense_ids_and_compact():
    it = KeyInterner()
    calls = [Call('FREE', (i,)) for i in range(5)]
    ids = [it.intern(c) for c in calls]
    assert ids == [0, 1, 2, 3, 4]
    assert it.intern(Call('FREE', (3,))) == 3
    assert it.lookup(Call('FREE', (9,))) == -1
    table = it.compact([1, 3])
    assert table == [-1, 0, -1, 1, -1]
    assert it.lookup(calls[3]) == 1 and it.lookup(calls[0]) == -1
    assert it.intern(Call('FREE', (7,))) == 2


def test_oplog_append_and_absolute_indices():
    log = OpLog(max_len=10)
    for i in range(7):
        assert log.append(Call('FREE', (i,)), i) == i
    assert len(log) == 7 and log.base == 0 and log.end == 7
    assert log.keys().tolist() == list(range(7))
    assert log.call(3).args == (3,)
    assert [c.args[0] for c in log.calls(2, 5)] == [2, 3, 4]
    with pytest.raises(IndexError):
        log.call(7)


def test_oplog_is_bounded_and_drops_oldest():
    log = OpLog(max_len=100)
    for i in range(5000):
        log.append(Call('FREE', (i,)), i % 50)
        assert len(log) <= 100
    assert len(log) == 100 and log.base == 4900 and log.end == 5000
    assert log.keys().tolist() == [i % 50 for i in range(4900, 5000)]
    assert log.call(4900).args == (4900,) and log.call(4999).args == (4999,)
    assert [c.args[0] for c in log.calls(4990, 5000)] == list(range(4990, 5000))
    with pytest.raises(IndexError):
        log.call(4899)
    # the storage stays bounded too
    assert log._keys.shape[0] <= log.max_len + log._slack
    assert len(log._calls) <= log.max_len + log._slack


def test_oplog_clear_continues_indices_and_remap():
    log = OpLog(max_len=10)
    for i in range(4):
        log.append(Call('FREE', (i,)), i)
    log.clear()
    assert len(log) == 0 and log.base == 4
    assert log.append(Call('FREE', (9,)), 2) == 4
    log.remap(np.array([5, 6, 7]))
    assert log.keys().tolist() == [7]
    with pytest.raises(ValueError):
        OpLog(0)


def test_from_request_roles_of_the_data():
    h = Call.from_request(Op.MEMCPY_HTOD, [0x10, 0, 0], b'\x01' * 100)
    assert h.op == 'MEMCPY_HTOD' and h.var_len == 100 and h.key_data == b''
    params = b'\x02' * 10000
    lc = Call.from_request('LAUNCH', (1, 1, 1, 1, 1, 1, 1, 0, 0), params)
    assert lc.key_data == params                      # kept whole: scanned for pointers
    m1 = Call.from_request('MODULE_LOAD', (1, 0, 9000), b'\x03' * 9000)
    m2 = Call.from_request('MODULE_LOAD', (1, 0, 9000), b'\x03' * 8999 + b'\x04')
    assert len(m1.key_data) < 64 and m1.key() != m2.key()
    f = Call.from_request('FUNC_GET', (7,), b'_Z3addPf', result=(0x99, 3))
    assert f.key_data == b'_Z3addPf' and f.result == (0x99, 3)
