# Copyright 2026 rrto_ros authors. Apache-2.0.
"""The modes benchmark: the CNN demo program in every mode, under every link profile.

Modes (DESIGN.md, Modes): ``local`` (native, no interposer), ``rpc``, ``pipelined`` and
``replay`` (the unmodified program under the interposer, through LocalStack with the
server in its own process), ``offload`` (the input-only baseline, rrto_ros.bench.offload).
A mode that fails is recorded with its error and the others go on; ``local`` and
``offload`` need native CUDA and are skipped, with a note, on the emu backend.

Steady state. Each program run makes ``inferences`` inferences; the first ``warmup`` are
excluded from the latency statistics (CUDA context and module loading, replay's
recording). Counts per inference (blocking round trips, bytes, calls) are the difference
between a run of ``inferences`` and a run of ``warmup`` inferences, divided by the
difference in inferences: exact for the steady state whatever the set-up cost. Both runs
come after a 1-inference run on the same stack, so neither pays for shipping the module.
"""

from __future__ import annotations

from dataclasses import dataclass
import os
import pathlib
import platform
import re
import statistics
import subprocess
import tempfile
import time
import traceback
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from rrto_ros.bench import energy
from rrto_ros.bench import offload
from rrto_ros.bench.link import LinkProcess
from rrto_ros.bench.link import PROFILES
from rrto_ros.cli.trace_main import read_counts

MODES = ('local', 'rpc', 'pipelined', 'replay', 'offload')
INTERPOSED = ('rpc', 'pipelined', 'replay')
LINKS = ('loopback', 'edge', 'cloud')
NATIVE_ONLY_NOTE = ('needs native CUDA (a local GPU); the {backend} backend has none, so '
                    'this mode is skipped')
TIMING_RE = re.compile(r'^cnn_infer: timing infer (\d+) ([0-9.]+) us$', re.M)
INFER_RE = re.compile(r'^infer \d+: .*$', re.M)


@dataclass
class Config:
    backend: str                      # 'emu' or 'cuda'
    exe: pathlib.Path                 # build/examples/cnn_infer
    root: pathlib.Path                # the repository (for building the offload server)
    inferences: int = 100
    warmup: int = 10
    seed: int = 1
    offload_server: Optional[pathlib.Path] = None   # a built cnn_serve; built when None
    security: str = 'open'            # of the link (LocalStack): open or curve

    def validate(self) -> None:
        if self.backend not in ('emu', 'cuda'):
            raise ValueError(f'backend must be emu or cuda, not {self.backend!r}')
        if not 1 <= self.warmup < self.inferences:
            raise ValueError(f'need 1 <= warmup ({self.warmup}) < inferences '
                             f'({self.inferences})')

    @property
    def app_timeout_s(self) -> float:
        return 120.0 + 5.0 * self.inferences

    def app_cmd(self, n: int) -> List[str]:
        return [str(self.exe), str(n), str(self.seed)]


def device_name(backend: str) -> str:
    if backend != 'cuda':
        return f'emu backend (no GPU) on {platform.processor() or platform.machine()}, ' \
               f'{os.cpu_count()} CPUs'
    try:
        out = subprocess.run(['nvidia-smi', '--query-gpu=name,driver_version',
                              '--format=csv,noheader'], capture_output=True, text=True)
    except OSError:
        return 'unknown GPU (no nvidia-smi)'
    return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() \
        else 'unknown GPU'


def parse_timings(stderr: str) -> List[float]:
    """Per-inference latencies (seconds, in inference order) from CNN_INFER_TIMING lines."""
    return [float(m.group(2)) * 1e-6 for m in TIMING_RE.finditer(stderr)]


def latency_summary(latencies_s: Sequence[float], warmup: int) -> Dict[str, Optional[float]]:
    steady = sorted(latencies_s[warmup:])
    if not steady:
        return {'latency_ms_p50': None, 'latency_ms_p95': None, 'latency_ms_mean': None,
                'latency_samples': 0}
    p95 = steady[min(len(steady) - 1, int(round(0.95 * (len(steady) - 1))))]
    return {'latency_ms_p50': round(statistics.median(steady) * 1e3, 4),
            'latency_ms_p95': round(p95 * 1e3, 4),
            'latency_ms_mean': round(statistics.fmean(steady) * 1e3, 4),
            'latency_samples': len(steady)}


def per_inference(long_run: float, short_run: float, n_long: int, n_short: int) -> float:
    return (long_run - short_run) / (n_long - n_short)


def empty_row(mode: str, link: str) -> Dict:
    return {'mode': mode, 'link': link, 'status': 'ok', 'latency_ms_p50': None,
            'latency_ms_p95': None, 'latency_ms_mean': None, 'latency_samples': 0,
            'blocking_round_trips_per_inference': None, 'bytes_per_inference': None,
            'bytes_up_per_inference': None, 'bytes_down_per_inference': None,
            'energy_j_per_inference': None, 'identical_to_native': None}


def add_energy(row: Dict, compute_s: Optional[float]) -> None:
    mean_ms = row.get('latency_ms_mean')
    if mean_ms is None:
        return
    row['energy_j_per_inference'] = round(
        energy.energy_j(row['mode'], mean_ms * 1e-3, compute_s or 0.0), 6)


class Bench:
    def __init__(self, cfg: Config, progress: Callable[[str], None] = print) -> None:
        cfg.validate()
        self.cfg = cfg
        self.progress = progress
        self.native_stdout: Optional[str] = None
        self.compute_s: Optional[float] = None     # server GPU time per inference
        self.histogram: Optional[Dict] = None
        self._tmp = tempfile.TemporaryDirectory(prefix='rrto-modes-')

    def close(self) -> None:
        self._tmp.cleanup()

    # ----------------------------------------------------------- one mode
    def run(self, mode: str, link: str) -> Dict:
        row = empty_row(mode, link)
        t0 = time.perf_counter()
        try:
            if mode in ('local', 'offload') and self.cfg.backend != 'cuda':
                row.update(status='skipped',
                           note=NATIVE_ONLY_NOTE.format(backend=self.cfg.backend))
            elif mode == 'local':
                self._local(row)
            elif mode == 'offload':
                self._offload(row, link)
            elif mode in INTERPOSED:
                self._interposed(row, mode, link)
            else:
                raise ValueError(f'unknown mode {mode!r}')
        except Exception as e:    # a failing mode is a result, not the end of the benchmark
            row.update(status='error', error=f'{type(e).__name__}: {e}',
                       traceback=traceback.format_exc(limit=6)[-3000:])
        row['wall_s'] = round(time.perf_counter() - t0, 3)
        if row['status'] == 'ok':
            add_energy(row, self.compute_s)
        return row

    def _local(self, row: Dict) -> None:
        env = dict(os.environ, CNN_INFER_TIMING='1')
        r = subprocess.run(self.cfg.app_cmd(self.cfg.inferences), capture_output=True,
                           text=True, timeout=self.cfg.app_timeout_s, env=env)
        self._check_app(r, row)
        lat = parse_timings(r.stderr)
        row.update(latency_summary(lat, self.cfg.warmup))
        row.update(blocking_round_trips_per_inference=0, bytes_per_inference=0,
                   bytes_up_per_inference=0, bytes_down_per_inference=0,
                   identical_to_native=True, note='the native run other modes compare with')
        if r.returncode == 0:
            self.native_stdout = r.stdout
            self.compute_s = row['latency_ms_mean'] * 1e-3

    def _check_app(self, r: subprocess.CompletedProcess, row: Dict) -> None:
        row['passed'] = r.returncode == 0 and r.stdout.rstrip().endswith('PASS')
        if r.returncode != 0:
            row['status'] = 'error'
            row['error'] = f'program exited with {r.returncode}: ' + r.stderr[-1500:]

    def _interposed(self, row: Dict, mode: str, link: str) -> None:
        from rrto_ros.stack import LocalStack  # imports the client and server cores
        n, w = self.cfg.inferences, self.cfg.warmup
        trace_w = os.path.join(self._tmp.name, f'{mode}-{link}-w.tsv')
        trace_n = os.path.join(self._tmp.name, f'{mode}-{link}-n.tsv')
        for p in (trace_w, trace_n):
            if os.path.exists(p):
                os.unlink(p)
        emulated = None if link == 'loopback' else link
        with LocalStack(self.cfg.backend, mode, server_process=True, link=emulated,
                        security=self.cfg.security) as stack:
            prime = stack.run(self.cfg.app_cmd(1), timeout=self.cfg.app_timeout_s)
            if prime.returncode != 0:
                raise RuntimeError(f'first run (1 inference) exited with {prime.returncode}: '
                                   + prime.stderr[-1500:])
            short = stack.run(self.cfg.app_cmd(w), timeout=self.cfg.app_timeout_s,
                              extra_env={'RRTO_TRACE_FILE': trace_w})
            s_w = stack.last_session()
            r = stack.run(self.cfg.app_cmd(n), timeout=self.cfg.app_timeout_s,
                          extra_env={'RRTO_TRACE_FILE': trace_n, 'CNN_INFER_TIMING': '1'})
            s_n = stack.last_session()
        self._check_app(r, row)
        if short.returncode != 0:
            row.update(status='error', error=f'warm-up run ({w} inferences) exited with '
                       f'{short.returncode}: ' + short.stderr[-1500:])
        row.update(latency_summary(parse_timings(r.stderr), w))

        def d(key: str) -> Optional[float]:
            if key not in s_n or key not in s_w:
                return None
            return round(per_inference(s_n[key], s_w[key], n, w), 3)

        up, down = d('bytes_up'), d('bytes_down')
        row.update(blocking_round_trips_per_inference=d('blocking_round_trips'),
                   bytes_up_per_inference=up, bytes_down_per_inference=down,
                   bytes_per_inference=None if up is None or down is None else
                   round(up + down, 3),
                   forwarded_calls_per_inference=d('forwarded_calls'),
                   agent_calls_per_inference=d('agent_calls'))
        if self.native_stdout is not None:
            row['identical_to_native'] = r.stdout == self.native_stdout
        row['session'] = session_summary(s_n, w)
        if mode == 'replay':
            started = s_n.get('replay_started_at', -1)
            if started is None or started < 0:
                row['warning'] = 'the session never replayed: these are forwarding numbers'
            elif started > w:
                row['warning'] = (f'replay began after inference {started}, later than the '
                                  f'{w} excluded: the statistics include recording')
        if self.histogram is None and r.returncode == 0:
            cn, cw = read_counts(trace_n), read_counts(trace_w)
            if cn:
                self.histogram = {
                    'source': f'mode {mode}, link {link}: the interposer counts every CUDA '
                              'runtime call at entry (the counts rrto-trace reports)',
                    'program': f'cnn_infer {n} {self.cfg.seed}',
                    'whole_run': dict(sorted(cn.items(), key=lambda kv: (-kv[1], kv[0]))),
                    'per_inference': {k: round(per_inference(cn.get(k, 0), cw.get(k, 0), n, w),
                                               3)
                                      for k in sorted(cn, key=lambda k: (-cn[k], k))
                                      if cn.get(k, 0) != cw.get(k, 0)}}

    def _offload(self, row: Dict, link: str) -> None:
        n, w = self.cfg.inferences, self.cfg.warmup
        exe = self.cfg.offload_server or offload.build_server(
            self.cfg.root, pathlib.Path(self._tmp.name))
        self.cfg.offload_server = exe
        with offload.ServerProcess(exe, lifetime_s=int(self.cfg.app_timeout_s) + 60) as srv:
            if link == 'loopback':
                lines, lat = offload.run_client(srv.port, n, self.cfg.seed)
            else:
                with LinkProcess(link, f'127.0.0.1:{srv.port}') as lp:
                    lines, lat = offload.run_client(lp.port, n, self.cfg.seed)
        row.update(latency_summary(lat, w))
        row.update(blocking_round_trips_per_inference=1,
                   bytes_up_per_inference=offload.IMAGE_BYTES,
                   bytes_down_per_inference=offload.SCORES_BYTES,
                   bytes_per_inference=offload.IMAGE_BYTES + offload.SCORES_BYTES,
                   note='bytes: application payload (image in, scores out), no framing')
        if self.native_stdout is not None:
            row['identical_to_native'] = lines == INFER_RE.findall(self.native_stdout)
            row['note'] += '; identical_to_native compares the "infer i:" lines'
        row['passed'] = len(lines) == n

    # ----------------------------------------------------------- all of them
    def run_all(self, modes: Sequence[str], links: Sequence[str]) -> List[Dict]:
        rows: List[Dict] = []
        # local first: the other modes compare with its output and use its GPU time.
        order = sorted(modes, key=lambda m: MODES.index(m) if m in MODES else len(MODES))
        local_row: Optional[Dict] = None
        for link in links:
            for mode in order:
                if mode == 'local':
                    # No link is involved: run once, report it under every link.
                    if local_row is None:
                        self.progress('local: running natively ...')
                        local_row = self.run('local', 'none')
                    row = dict(local_row, link=link)
                else:
                    self.progress(f'{mode} over {link}: running ...')
                    row = self.run(mode, link)
                rows.append(row)
                self.progress('  ' + describe(row))
        return rows


def session_summary(s: Dict, warmup: int) -> Dict:
    keep = ('mode', 'phase', 'inferences', 'divergences', 'replay_started_at', 'errors',
            'modules_uploaded', 'modules_cached', 'module_bytes_uploaded', 'payload_bytes',
            'payload_wire_bytes', 'compressed_payloads', 'content_bytes_by_hash',
            'content_bytes_sent', 'server_rtt_us_median', 'state')
    out = {k: s[k] for k in keep if k in s}
    rts = list(s.get('round_trips_per_inference') or ())
    if rts:
        steady = rts[warmup:] if len(rts) == s.get('inferences') else rts
        if steady:
            out['round_trips_per_inference_median'] = statistics.median(steady)
            out['round_trips_per_inference_max'] = max(steady)
    return out


def describe(row: Dict) -> str:
    if row['status'] == 'skipped':
        return f'{row["mode"]}/{row["link"]}: skipped ({row.get("note")})'
    if row['status'] == 'error':
        return f'{row["mode"]}/{row["link"]}: ERROR {row.get("error", "")[:300]}'

    def f(x: Optional[float], spec: str) -> str:
        return 'n/a' if x is None else format(x, spec)
    return (f'{row["mode"]}/{row["link"]}: p50 {f(row["latency_ms_p50"], ".3f")} ms, '
            f'p95 {f(row["latency_ms_p95"], ".3f")} ms, '
            f'{f(row["blocking_round_trips_per_inference"], "g")} blocking round trips, '
            f'{f(row["bytes_per_inference"], ".0f")} B, '
            f'{f(row["energy_j_per_inference"], ".5f")} J per inference, '
            f'identical_to_native={row["identical_to_native"]}')


def links_description(links: Sequence[str]) -> Dict[str, Dict]:
    out = {}
    for link in links:
        d = PROFILES[link].describe()
        d['emulated'] = link != 'loopback'
        if link == 'loopback':
            d['note'] = 'direct loopback connection, no emulator in the path'
        else:
            d['note'] = ('loopback through the link emulator (rrto_ros/bench/link.py, its own '
                         'process); its accuracy: bench/link_accuracy.py')
        out[link] = d
    return out


FLOOR_TARGET = 1.15      # issue #3: replay within 1.15x of the physical floor at edge ...
RPC_TARGET = 10.0        # ... and at least 10x faster than rpc


def targets(rows: Sequence[Dict]) -> Dict[str, Dict]:
    """Per emulated link: the physical floor of one inference (round trip time + replay's
    bytes / bandwidth + the native GPU time) and how replay compares with it and with rpc."""
    by = {(r['mode'], r['link']): r for r in rows}
    local = by.get(('local', 'loopback')) or next(
        (r for r in rows if r['mode'] == 'local'), None)
    out = {}
    for link in LINKS:
        replay, rpc = by.get(('replay', link)), by.get(('rpc', link))
        p = PROFILES[link]
        if link == 'loopback' or not replay or replay.get('latency_ms_p50') is None or \
                not local or local.get('latency_ms_p50') is None:
            continue
        floor = (p.rtt_s + p.serialisation_s(replay['bytes_per_inference'])) * 1e3 + \
            local['latency_ms_p50']
        t = {'floor_ms': round(floor, 4), 'replay_ms_p50': replay['latency_ms_p50'],
             'replay_over_floor': round(replay['latency_ms_p50'] / floor, 3),
             'floor_target': FLOOR_TARGET}
        t['floor_target_met'] = t['replay_over_floor'] <= FLOOR_TARGET
        if rpc and rpc.get('latency_ms_p50') is not None:
            t['rpc_ms_p50'] = rpc['latency_ms_p50']
            t['rpc_over_replay'] = round(rpc['latency_ms_p50'] / replay['latency_ms_p50'], 2)
            t['rpc_target'] = RPC_TARGET
            t['rpc_target_met'] = t['rpc_over_replay'] >= RPC_TARGET
        out[link] = t
    return out


def steady_state_note(cfg: Config) -> str:
    return (f'each run makes {cfg.inferences} inferences; latency statistics exclude the '
            f'first {cfg.warmup} (warm-up, module loading, replay recording). Per-inference '
            f'counts (round trips, bytes, calls) = (run of {cfg.inferences} - run of '
            f'{cfg.warmup}) / {cfg.inferences - cfg.warmup}, both runs after a 1-inference '
            'run on the same stack (module already shipped).')


def summary_table(rows: Sequence[Dict]) -> Tuple[List[str], List[List[str]]]:
    head = ['mode', 'link', 'p50 ms', 'p95 ms', 'RT/inf', 'bytes/inf', 'J/inf', 'identical']
    body = []
    for r in rows:
        def f(k: str, spec: str) -> str:
            return '-' if r.get(k) is None else format(r[k], spec)
        body.append([r['mode'], r['link'], f('latency_ms_p50', '.3f'),
                     f('latency_ms_p95', '.3f'), f('blocking_round_trips_per_inference', 'g'),
                     f('bytes_per_inference', '.0f'), f('energy_j_per_inference', '.5f'),
                     str(r.get('identical_to_native')) if r['status'] == 'ok'
                     else r['status']])
    return head, body
