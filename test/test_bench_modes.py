# Copyright 2026 rrto_ros authors. Apache-2.0.
"""The modes benchmark (bench/modes.py, rrto_ros/bench/harness.py): its pieces, and one
short run of the command (emu: rpc and pipelined over loopback; local and offload are
skipped there; with --backend cuda they run and are compared with the native output)."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import pytest

from rrto_ros.bench import harness

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_parse_timings_ignores_other_lines():
    err = ('[rrto] something\ncnn_infer: timing infer 0 1500.000 us\n'
           'cnn_infer: infer 1 score 3 = 1 expected 2\ncnn_infer: timing infer 1 250.5 us\n')
    assert harness.parse_timings(err) == pytest.approx([1.5e-3, 250.5e-6])


def test_latency_summary_excludes_the_warmup():
    lat = [1.0, 1.0] + [i * 1e-3 for i in range(1, 101)]    # 2 slow warm-up inferences
    s = harness.latency_summary(lat, 2)
    assert s['latency_samples'] == 100
    assert s['latency_ms_p50'] == pytest.approx(50.5)
    assert s['latency_ms_p95'] == pytest.approx(95.0)
    assert s['latency_ms_mean'] == pytest.approx(50.5)
    assert harness.latency_summary(lat[:2], 2)['latency_ms_p50'] is None


def test_per_inference_is_the_difference_of_two_runs():
    # set-up 40 round trips, then 9 per inference: runs of 10 and 100 inferences
    assert harness.per_inference(40 + 9 * 100, 40 + 9 * 10, 100, 10) == 9


def test_session_summary_takes_the_steady_part():
    s = {'mode': 'replay', 'inferences': 6, 'round_trips_per_inference': (9, 9, 9, 1, 1, 2)}
    out = harness.session_summary(s, 3)
    assert out['round_trips_per_inference_median'] == 1
    assert out['round_trips_per_inference_max'] == 2


def test_config_is_checked(tmp_path):
    with pytest.raises(ValueError):
        harness.Config('emu', tmp_path / 'x', ROOT, inferences=5, warmup=5).validate()
    with pytest.raises(ValueError):
        harness.Config('gpu', tmp_path / 'x', ROOT).validate()


def test_a_failing_mode_is_recorded_and_the_others_go_on(tmp_path, monkeypatch):
    cfg = harness.Config('emu', tmp_path / 'cnn_infer', ROOT, inferences=3, warmup=1)
    bench = harness.Bench(cfg, progress=lambda m: None)

    def fake(self, row, mode, link):
        if mode == 'replay':
            raise RuntimeError('not ready yet')
        row.update(latency_ms_p50=1.0, latency_ms_p95=2.0, latency_ms_mean=1.5,
                   blocking_round_trips_per_inference=2)

    monkeypatch.setattr(harness.Bench, '_interposed', fake)
    try:
        rows = bench.run_all(['offload', 'replay', 'rpc', 'local'], ['loopback', 'edge'])
    finally:
        bench.close()
    got = {(r['mode'], r['link']): r for r in rows}
    assert [r['mode'] for r in rows[:4]] == ['local', 'rpc', 'replay', 'offload']
    assert got['replay', 'edge']['status'] == 'error'
    assert 'not ready yet' in got['replay', 'edge']['error']
    assert got['rpc', 'edge']['status'] == 'ok'
    assert got['rpc', 'edge']['energy_j_per_inference'] == pytest.approx(4.25 * 1.5e-3)
    for key in (('local', 'loopback'), ('offload', 'edge')):
        assert got[key]['status'] == 'skipped' and 'native CUDA' in got[key]['note']
    assert bench.run('warp', 'loopback')['status'] == 'error'


def test_modes_command_writes_valid_json(tmp_path, examples_dir, backend):
    out = tmp_path / 'modes.json'
    cmd = [sys.executable, str(ROOT / 'bench' / 'modes.py'), '--backend', backend,
           '--inferences', '5', '--warmup', '2', '--links', 'loopback',
           '--modes', 'local,rpc,pipelined,offload', '--examples', str(examples_dir),
           '--out', str(out)]
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        cmd.append('--no-plot')
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert 'rpc over loopback: running' in r.stdout          # progress is printed
    res = json.loads(out.read_text())
    for key in ('device', 'command', 'steady_state', 'energy_model', 'links', 'results',
                'call_histogram'):
        assert key in res
    assert '--inferences 5' in res['command']
    rows = {r['mode']: r for r in res['results']}
    assert set(rows) == {'local', 'rpc', 'pipelined', 'offload'}
    for mode in ('rpc', 'pipelined'):
        row = rows[mode]
        assert row['status'] == 'ok' and row['link'] == 'loopback' and row['passed']
        assert row['latency_samples'] == 3
        assert 0 < row['latency_ms_p50'] <= row['latency_ms_p95']
        assert row['bytes_per_inference'] > 12288                  # the image goes up
        assert row['energy_j_per_inference'] > 0
    # cnn_infer per inference: 1 copy in, 19 launches, 1 copy out (cudaGetLastError is
    # answered by the interposer); pipelined waits only for the two copies.
    assert rows['rpc']['blocking_round_trips_per_inference'] == 21
    assert rows['pipelined']['blocking_round_trips_per_inference'] == 2
    assert res['call_histogram']['per_inference']['cudaMemcpy'] == 2
    if backend == 'cuda':
        assert all(r['status'] == 'ok' and r['identical_to_native'] for r in rows.values())
    else:
        assert rows['local']['status'] == rows['offload']['status'] == 'skipped'
        assert rows['rpc']['identical_to_native'] is None
    png = out.with_suffix('.png')
    assert png.exists() == ('--no-plot' not in cmd)


def test_targets_against_the_physical_floor():
    def row(mode, link, p50, nbytes=12387):
        return {'mode': mode, 'link': link, 'latency_ms_p50': p50, 'bytes_per_inference': nbytes}
    rows = [row('local', 'loopback', 0.147), row('rpc', 'edge', 75.0), row('replay', 'edge', 3.3),
            row('replay', 'cloud', 30.0), row('replay', 'loopback', 0.6)]
    t = harness.targets(rows)
    assert set(t) == {'edge', 'cloud'}
    floor = 2.6 + 12387 * 8 / 450e6 * 1e3 + 0.147
    assert t['edge']['floor_ms'] == pytest.approx(floor, abs=1e-3)
    assert t['edge']['replay_over_floor'] == pytest.approx(3.3 / floor, abs=1e-3)
    assert t['edge']['floor_target_met'] and t['edge']['rpc_target_met']
    assert t['edge']['rpc_over_replay'] == pytest.approx(75.0 / 3.3, abs=0.01)
    assert not t['cloud']['floor_target_met'] and 'rpc_over_replay' not in t['cloud']
