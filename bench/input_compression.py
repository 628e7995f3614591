# Copyright 2026 rrto_ros authors. Apache-2.0.
"""How well a model's input upload compresses, and on which link it pays.

    .venv/bin/pip install scikit-image   # the sample photographs (bench only)
    .venv/bin/python bench/input_compression.py --out bench/results/input_compression.json

Inputs: the sample photographs that scikit-image ships (``skimage.data``), letterboxed to
640 and 1280 as the pose node does (``tracking/letterbox.py``: grey 114 padding), as the
network's input (float32 CHW / 255, what the app uploads) and as the raw uint8 HWC frame.
Never random tensors: they do not compress, and no camera sends them.

Per input and codec (the project's own ``protocol/payload_codec.py``: zstd level 1 and 3,
lz4; each also after a byte-plane split, the float32's 4 byte planes compressed one by
one; and zstd on 4 MiB chunks, as the client node sends large uploads): ratio, compress
and decompress MB/s (best of --repeat, one thread). Then, per link profile
(``bench/link.py``), the rule the client node's ``compression: auto`` applies: compress
when the wire time saved exceeds compress + decompress time. Also the content hash's
speed (sha256, blake2b) for the content-addressed uploads.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pathlib
import platform
import statistics
import sys
import time
from typing import Callable, Dict, List

import numpy as np
import zstandard

from rrto_ros.bench.link import PROFILES
from rrto_ros.protocol import payload_codec
from rrto_ros.tracking.letterbox import letterbox
from rrto_ros.tracking.letterbox import to_input

IMAGES = ('astronaut', 'coffee', 'chelsea', 'rocket', 'hubble_deep_field', 'immunohistochemistry')
CHUNK = 4 << 20


def photographs() -> Dict[str, np.ndarray]:
    from skimage import data
    out = {}
    for name in IMAGES:
        img = getattr(data, name)()
        if img.ndim == 3 and img.shape[2] == 3 and img.dtype == np.uint8:
            out[name] = img
    return out


def best(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def planes(buf: bytes, itemsize: int) -> List[bytes]:
    a = np.frombuffer(buf, np.uint8).reshape(-1, itemsize)
    return [a[:, i].tobytes() for i in range(itemsize)]


def measure(buf: bytes, itemsize: int, repeat: int) -> Dict[str, Dict]:
    z3c, z3d = zstandard.ZstdCompressor(level=3), zstandard.ZstdDecompressor()
    variants = {
        'zstd1': (lambda b: payload_codec.compress('zstd', b),
                  lambda c, n: payload_codec.decompress('zstd', c, n, n)),
        'zstd3': (lambda b: z3c.compress(b), lambda c, n: z3d.decompress(c)),
        'lz4': (lambda b: payload_codec.compress('lz4', b),
                lambda c, n: payload_codec.decompress('lz4', c, n, n)),
    }
    out = {}
    n = len(buf)
    for name, (comp, dec) in variants.items():
        c = comp(buf)
        assert dec(c, n) == buf, name
        tc, td = best(lambda: comp(buf), repeat), best(lambda: dec(c, n), repeat)
        out[name] = {'ratio': n / len(c), 'compress_MBps': n / tc / 1e6,
                     'decompress_MBps': n / td / 1e6}
        if itemsize > 1:
            ps = planes(buf, itemsize)
            cs = [comp(p) for p in ps]
            tc = best(lambda: [comp(p) for p in planes(buf, itemsize)], repeat)
            td = best(lambda: [dec(x, len(p)) for x, p in zip(cs, ps)], repeat)
            out[name + '_planes'] = {'ratio': n / sum(map(len, cs)),
                                     'compress_MBps': n / tc / 1e6,
                                     'decompress_MBps': n / td / 1e6}
    view = memoryview(buf)
    chunks = [view[o:o + CHUNK] for o in range(0, n, CHUNK)]
    cs = [payload_codec.compress('zstd', ch) for ch in chunks]
    tc = best(lambda: [payload_codec.compress('zstd', ch) for ch in chunks], repeat)
    td = best(lambda: [payload_codec.decompress('zstd', x, len(ch), len(ch))
                       for x, ch in zip(cs, chunks)], repeat)
    out['zstd1_4MiB_chunks'] = {'ratio': n / sum(map(len, cs)), 'compress_MBps': n / tc / 1e6,
                                'decompress_MBps': n / td / 1e6}
    return out


def decide(row: Dict, nbytes: int) -> Dict[str, Dict]:
    """Per link: the upload time raw and with each codec, and whether it pays."""
    out = {}
    for link, p in PROFILES.items():
        bw = p.bandwidth_bps
        raw_s = 8 * nbytes / bw if bw else 0.0
        per = {'raw_ms': raw_s * 1e3}
        for codec in ('zstd1', 'lz4'):
            r = row[codec]
            cost = nbytes / (r['compress_MBps'] * 1e6) + nbytes / (r['decompress_MBps'] * 1e6)
            saved = raw_s * (1 - 1 / r['ratio'])
            per[codec] = {'serial_ms': (raw_s - saved + cost) * 1e3, 'pays': saved > cost}
        out[link] = per
    return out


def hash_speed(repeat: int) -> Dict[str, float]:
    buf = os.urandom(64 << 20)
    return {name: len(buf) / best(lambda: hashlib.new(name, buf).digest(), repeat) / 1e6
            for name in ('sha256', 'blake2b')}


def plot(result: Dict, path: pathlib.Path) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    rows = [r for r in result['results'] if r['kind'] == 'float32_chw']
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, link in zip(axes, ('edge', 'cloud')):
        labels, raw, z, lz = [], [], [], []
        for r in rows:
            labels.append(f"{r['image']}\n{r['size']}")
            raw.append(r['links'][link]['raw_ms'])
            z.append(r['links'][link]['zstd1']['serial_ms'])
            lz.append(r['links'][link]['lz4']['serial_ms'])
        x = np.arange(len(labels))
        ax.bar(x - 0.27, raw, 0.27, label='raw', color='#888888')
        ax.bar(x, z, 0.27, label='zstd-1 (compress + wire + decompress)', color='#2ca02c')
        ax.bar(x + 0.27, lz, 0.27, label='lz4', color='#1f77b4')
        ax.set_xticks(x)
        ax.set_xticklabels(labels, fontsize=7, rotation=60)
        ax.set_ylabel('upload time of one input (ms)')
        ax.set_title(f'{link} ({PROFILES[link].bandwidth_bps / 1e6:g} Mbit/s), float32 CHW')
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--out', type=pathlib.Path,
                    default=pathlib.Path('bench/results/input_compression.json'))
    ap.add_argument('--repeat', type=int, default=3)
    ap.add_argument('--sizes', type=int, nargs='+', default=[640, 1280])
    a = ap.parse_args(argv)
    results = []
    for name, img in photographs().items():
        for size in a.sizes:
            lb = letterbox(img, size, auto=False).image
            for kind, buf, item in (('float32_chw', to_input(lb).tobytes(), 4),
                                    ('uint8_hwc', lb.tobytes(), 1)):
                row = measure(buf, item, a.repeat)
                results.append({'image': name, 'original_hw': list(img.shape[:2]),
                                'size': size, 'kind': kind, 'bytes': len(buf), **row,
                                'links': decide(row, len(buf))})
                print(name, size, kind, {k: round(v['ratio'], 2) for k, v in row.items()},
                      flush=True)
    f32 = [r for r in results if r['kind'] == 'float32_chw']
    summary = {}
    for codec in ('zstd1', 'zstd3', 'lz4', 'zstd1_planes', 'lz4_planes', 'zstd1_4MiB_chunks'):
        summary[codec] = {k: statistics.median(r[codec][k] for r in f32)
                          for k in ('ratio', 'compress_MBps', 'decompress_MBps')}
    pays = {link: {codec: sum(r['links'][link][codec]['pays'] for r in f32) / len(f32)
                   for codec in ('zstd1', 'lz4')} for link in PROFILES}
    out = {'command': ' '.join([pathlib.Path(sys.executable).name] + sys.argv),
           'device': f'{platform.node()} ({platform.processor() or platform.machine()}, '
                     f'{os.cpu_count()} cpus, shared), one thread',
           'libraries': {'zstandard': zstandard.__version__,
                         'lz4': __import__('lz4').__version__},
           'float32_median': summary, 'share_of_inputs_where_it_pays': pays,
           'hash_MBps': hash_speed(a.repeat), 'results': results}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(out, indent=1) + '\n')
    plot(out, a.out.with_suffix('.png'))
    print(json.dumps({k: out[k] for k in ('float32_median', 'share_of_inputs_where_it_pays',
                                          'hash_MBps')}, indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main())
