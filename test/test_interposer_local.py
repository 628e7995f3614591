# Copyright 2026 rrto_ros authors. Apache-2.0.
"""The interposer's own behaviour, against a scripted fake client node."""

from __future__ import annotations

import os
import subprocess
import time
from typing import Dict

from fake_agent import FakeAgent

from rrto_ros.protocol import agent_wire as wire
from rrto_ros.protocol import ops
from rrto_ros.protocol.ops import Op


def run(prog, agent_path: str, what: str, interposer, *args: str
        ) -> subprocess.CompletedProcess:
    env = dict(os.environ, LD_PRELOAD=str(interposer), RRTO_AGENT_SOCKET=agent_path)
    env.pop('RRTO_TRACE', None)
    return subprocess.run([str(prog), what, *args], env=env, capture_output=True, text=True,
                          timeout=30)


def parse(stdout: str) -> Dict[str, str]:
    return dict(line.split(' ', 1) for line in stdout.splitlines() if ' ' in line)


def test_last_error_semantics(local_answers, interposer):
    agent = FakeAgent(answers={Op.DEVICE_SYNC: lambda r: (700, (), b'')})
    try:
        out = parse(run(local_answers, agent.path, 'errors', interposer).stdout)
    finally:
        agent.close()
    assert out['device'] == '0'
    assert out['set_device_5'] == '101'         # cudaErrorInvalidDevice: the session has one
    assert out['last'] == '101'                 # returned once ...
    assert out['last_again'] == '0'             # ... then cleared
    assert out['peek'] == '0'
    assert out['sync'] == '700'
    assert out['peek_sticky'] == '700'
    assert out['last_sticky'] == '700'          # sticky: never cleared
    assert out['last_sticky_again'] == '700'
    assert 'illegal' in out['string_700'].lower()
    assert out['name_700'] == 'cudaErrorIllegalAddress'
    assert Op.DEVICE_SYNC in agent.ops()


def test_properties_fetched_once(local_answers, interposer):
    agent = FakeAgent()
    try:
        out = parse(run(local_answers, agent.path, 'props', interposer).stdout)
    finally:
        agent.close()
    assert out['count_err'] == '0' and out['count'] == '1'
    assert out['props_err'] == '0' and out['props_again_err'] == '0'
    assert out['name'] == 'fake device'
    assert out['warp'] == '32 32'
    assert out['major'] == '9 9'
    assert out['total'] == str(80 << 30)
    assert out['sm'] == '132'
    assert out['bad_device'] == '101'
    assert agent.ops().count(Op.DEVICE_ATTRS) == 1   # later answers are local


def test_unsupported_call_is_named(local_answers, interposer):
    agent = FakeAgent()
    try:
        r = run(local_answers, agent.path, 'unsupported', interposer)
    finally:
        agent.close()
    out = parse(r.stdout)
    assert out['graph_create'] == '801'          # cudaErrorNotSupported
    assert out['last'] == '801'
    assert 'cudaGraphCreate is not supported' in r.stderr
    assert 'cudaGraphCreate(1 calls)' in r.stderr  # the exit report names it again


def test_pipelined_sends_async_calls_without_waiting(local_answers, interposer):
    agent = FakeAgent(mode='pipelined')
    try:
        out = parse(run(local_answers, agent.path, 'pipelined', interposer).stdout)
    finally:
        agent.close()
    assert out['malloc'] == '0' and out['memset'] == '0' and out['sync'] == '0'
    memset = [r for r in agent.received if r.op == Op.MEMSET][0]
    assert memset.flags & wire.F_NOREPLY
    malloc = [r for r in agent.received if r.op == Op.MALLOC][0]
    assert not malloc.flags & wire.F_NOREPLY
    assert out['pointer_is_device'] == '1'
    assert out['stack_is_device'] == '0'


def test_rpc_mode_waits_for_every_call(local_answers, interposer):
    agent = FakeAgent(mode='rpc')
    try:
        run(local_answers, agent.path, 'pipelined', interposer)
    finally:
        agent.close()
    assert all(r.wants_reply for r in agent.received)


def test_no_client_node_is_one_clear_line(local_answers, interposer, tmp_path):
    r = run(local_answers, str(tmp_path / 'nobody.sock'), 'props', interposer)
    out = parse(r.stdout)
    assert out['count_err'] == '100'             # cudaErrorNoDevice, not a hang or a crash
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith('[rrto]')]
    assert len(lines) == 1
    assert 'nobody.sock' in lines[0] and 'rrto-client' in lines[0]


def _late_copies(output: bytes = b''):
    """MEMCPY_DTOH answers for local_answers.c's deferred(): the pattern it checks, the first
    one late (so that the app's polling loop runs meanwhile), an error for an odd address;
    each with ``output`` as device printf text."""
    late = [0.3]

    def answer(req: wire.AgentRequest):
        src, count = req.args[:2]
        if src & 0xff:
            return ops.CUDA_ERROR_INVALID_VALUE, (), b'', None, output
        time.sleep(late.pop() if late else 0)
        return 0, (), (bytes(range(256)) * (count // 256 + 1))[:count], None, output
    return answer


def test_async_copy_to_host_does_not_block(local_answers, interposer):
    """cudaMemcpyAsync to the host returns at once; its data are there when a query says
    ready or a sync returns (not before: queries answer not-ready meanwhile, locally); an
    upload while the copy's answer arrives does not deadlock; a failed copy's error comes
    with the next call that waits."""
    agent = FakeAgent(mode='pipelined', answers={Op.MEMCPY_DTOH: _late_copies()})
    try:
        r = run(local_answers, agent.path, 'deferred', interposer, str(16 << 20))
    finally:
        agent.close()
    out = parse(r.stdout)
    assert r.returncode == 0, r.stderr
    assert [out[k] for k in ('malloc', 'copy', 'record', 'query')] == ['0'] * 4
    assert int(out['polls']) > 0                      # the app ran while the copy travelled
    assert out['data_after_query'] == '1'
    assert [out[k] for k in ('copy2', 'upload', 'sync')] == ['0'] * 3
    assert out['data_after_sync'] == '1'
    assert out['copy3'] == '0' and out['sync3'] == '1' and out['sync4'] == '0'
    copies = [q for q in agent.received if q.op == Op.MEMCPY_DTOH]
    assert len(copies) == 2 * 4 + 1                   # 16 MiB in 4 MiB pieces, twice, + 1
    assert all(q.flags & wire.F_DEFERRED and q.wants_reply for q in copies)
    assert agent.ops().count(Op.EVENT_QUERY) == 1     # forwarded once the data were in


def test_async_copy_to_host_blocks_in_rpc(local_answers, interposer):
    agent = FakeAgent(mode='rpc', answers={Op.MEMCPY_DTOH: _late_copies()})
    try:
        r = run(local_answers, agent.path, 'deferred', interposer, str(1 << 20))
    finally:
        agent.close()
    out = parse(r.stdout)
    assert out['polls'] == '0' and out['data_after_query'] == '1'
    assert out['copy3'] == '1' and out['sync3'] == '0'    # the error at once
    assert not any(q.flags & wire.F_DEFERRED for q in agent.received)


def test_device_printf_text_reaches_the_apps_stdout(local_answers, interposer):
    """Text that rides on replies (RRTO_R_OUTPUT) lands on the app's stdout, whether the
    app waited for the reply or read it later (a deferred copy's)."""
    agent = FakeAgent(mode='pipelined', answers={
        Op.MEMCPY_DTOH: _late_copies(b'from a copy\n'),
        Op.DEVICE_SYNC: lambda r: (0, (), b'', None, b'from a sync\n')})
    try:
        r = run(local_answers, agent.path, 'deferred', interposer, str(1 << 20))
    finally:
        agent.close()
    lines = r.stdout.splitlines()
    assert r.returncode == 0, r.stderr
    assert lines.count('from a copy') == 3 and lines.count('from a sync') == 2
    assert parse(r.stdout)['data_after_sync'] == '1'    # the data around the text are right
