# Copyright 2026 rrto_ros authors. Apache-2.0.
"""Speed of the recorder: Recorder.add per call and Recorder.search on a long log.

    python bench/search_speed.py --out bench/results/search_speed.json

Builds a synthetic log like a real app's (a prologue that allocates and uploads the weights,
then inferences of about 500 calls: an input upload, kernels whose parameter buffers hold
device pointers, two outputs and a sync) of --calls calls, and times:

- add: every call of the log added to a fresh Recorder (interning, log, dependency graph);
- first_success: the first search that finds the sequence, searching after every inference
  as the client node does;
- at_end_full: a search from scratch (no cached result; the prefix hashes, which the
  recorder keeps up to date between searches, already cover the log) on the whole log;
- at_end_cold: the first search ever of a recorder that was fed the whole log (prefix
  hashes built from nothing too);
- at_end_incremental: a search after one more inference, with the previous result cached;
- never_repeating_full: a search from scratch on a log of the same size that never repeats
  (what the client pays per inference when no sequence is ever found);
- inner_loop_full: a search from scratch on an adversarial log of the same size, whose
  201-call inference is an upload and 100 x (kernel, identical DTOH), so that the end hint's
  key occurs every other call and every even distance is a period candidate;
- every_inference_total: all the searches of a run that searches after every inference.

Pure CPU work: no GPU involved. Times are medians over --repeat runs.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import platform
import random
import statistics
import sys
import time
from typing import Callable, List, Tuple

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rrto_ros.record import Call  # noqa: E402
from rrto_ros.record import Recorder
from rrto_ros.record.synth import FakeApp  # noqa: E402
from rrto_ros.record.synth import FakeModel
from rrto_ros.record.synth import pack_params


def build_log(total: int, layers: int) -> Tuple[List[Call], List[Call]]:
    """Whole inferences until the log has ``total`` calls, and the next inference."""
    app = FakeApp()
    model = FakeModel(app, layers=layers, outputs=2, async_out=True, struct_params=True)
    model.prologue()
    while len(app) < total:
        model.infer()
    n = len(app)
    model.infer()
    return app.calls[:n], app.calls[n:]


def build_random_log(total: int, seed: int = 7) -> List[Call]:
    """Same op mix, but kernel arguments never repeat."""
    rnd = random.Random(seed)
    app = FakeApp()
    bufs = [app.malloc(1 << 16) for _ in range(64)]
    i = 0
    while len(app) < total:
        app.htod(rnd.choice(bufs), 4096)
        for _ in range(rnd.randrange(400, 500)):
            i += 1
            app.launch(rnd.randrange(64), pack_params(('Q', rnd.choice(bufs)),
                                                      ('Q', rnd.choice(bufs)), ('i', i)))
        app.dtoh(rnd.choice(bufs), 4000)
    return app.calls[:total]


def build_inner_loop_log(total: int, steps: int = 100) -> List[Call]:
    """Adversarial: an inference = an upload, then ``steps`` x (kernel, copy one token out),
    every copy identical, so the end hint's key occurs every other call."""
    app = FakeApp()
    w, x, o = app.malloc(1 << 20), app.malloc(4096), app.malloc(64)
    app.htod(w, 1 << 20)
    while len(app) < total:
        app.htod(x, 4096)
        for _ in range(steps):
            app.launch(0x10, pack_params(('Q', x), ('Q', o), ('Q', w)))
            app.dtoh(o, 64)
    return app.calls


def median_time(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in pathlib.Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith('model name'):
                cpu = line.split(':', 1)[1].strip()
                break
    except OSError:
        pass
    return f'{cpu}; Python {platform.python_version()}; {platform.system()} {platform.release()}'


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--calls', type=int, default=100_000)
    ap.add_argument('--layers', type=int, default=494, help='kernels per inference')
    ap.add_argument('--record-window', type=int, default=3)
    ap.add_argument('--repeat', type=int, default=5)
    ap.add_argument('--out', type=pathlib.Path)
    args = ap.parse_args()

    calls, extra = build_log(args.calls, args.layers)
    rw = args.record_window

    def fill() -> Recorder:
        rec = Recorder(rw)
        for c in calls:
            rec.add(c)
        return rec

    add_s = median_time(fill, args.repeat)
    rec = fill()
    seq_len = len(rec.search()[0])
    ends = [i for i, c in enumerate(calls) if c.op == 'STREAM_SYNC']   # inference ends

    # first success: search after every inference until found (fresh recorder each time)
    def first_success() -> float:
        r = Recorder(rw)
        k = 0
        for e in ends:
            while k <= e:
                r.add(calls[k])
                k += 1
            t0 = time.perf_counter()
            found = r.search()
            dt = time.perf_counter() - t0
            if found:
                return dt
        raise RuntimeError('never found')

    first_s = statistics.median(first_success() for _ in range(args.repeat))

    def full() -> None:
        rec._invalidate()
        assert rec.search()

    full_s = median_time(full, args.repeat)

    def cold() -> float:
        r = fill()
        t0 = time.perf_counter()
        assert r.search()
        return time.perf_counter() - t0

    cold_s = statistics.median(cold() for _ in range(args.repeat))

    def incremental() -> float:
        r = fill()
        assert r.search()
        for c in extra:
            r.add(c)
        t0 = time.perf_counter()
        assert r.search()
        return time.perf_counter() - t0

    incr_s = statistics.median(incremental() for _ in range(args.repeat))

    rnd = Recorder(rw)
    for c in build_random_log(args.calls):
        rnd.add(c)

    def never() -> None:
        rnd._invalidate()
        assert rnd.search() == []

    never_s = median_time(never, args.repeat)

    adv = Recorder(rw)
    for c in build_inner_loop_log(args.calls):
        adv.add(c)

    def adversarial() -> None:
        adv._invalidate()
        assert len(adv.search()[0]) == 201

    adv_s = median_time(adversarial, args.repeat)

    def every_inference() -> float:
        r = Recorder(rw)
        k, total = 0, 0.0
        for e in ends:
            while k <= e:
                r.add(calls[k])
                k += 1
            t0 = time.perf_counter()
            r.search()
            total += time.perf_counter() - t0
        return total

    every_s = every_inference()

    result = {
        'log_calls': len(calls),
        'inference_calls': seq_len,
        'record_window': rw,
        'add_us_per_call': round(add_s / len(calls) * 1e6, 3),
        'search_ms': {
            'first_success': round(first_s * 1e3, 3),
            'at_end_full': round(full_s * 1e3, 3),
            'at_end_cold': round(cold_s * 1e3, 3),
            'at_end_incremental': round(incr_s * 1e3, 3),
            'never_repeating_full': round(never_s * 1e3, 3),
            'inner_loop_full': round(adv_s * 1e3, 3),
            'every_inference_total': round(every_s * 1e3, 3),
            'searches_per_run': len(ends),
        },
        'command': ' '.join(['python'] + sys.argv),
        'machine': machine(),
        'date': time.strftime('%Y-%m-%d %H:%M:%S'),
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + '\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
