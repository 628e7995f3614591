# Copyright 2026 rrto_ros authors. Apache-2.0.
"""Upload time of one model input through an emulated link, as the client node sends it.

    .venv/bin/pip install scikit-image   # the sample photographs (bench only)
    .venv/bin/python bench/upload_link.py --out bench/results/upload_link.json

An emu server behind the link emulator (``bench/link.py``: ``edge``, ``cloud``); per
photograph (``skimage.data``, letterboxed 640 and 1280 as float32 CHW / 255) and setting
(``off``, ``zstd``, ``lz4``, ``auto`` with the link's bandwidth configured), a blocking
``cudaMemcpy`` host-to-device through ``client/uploads.py`` (compressed copies in 1 MiB
chunks, so that compression, wire and decompression overlap), timed from the call to its
answer, median of --repeat; each copy is read back and compared. Client, server and
emulator share this machine's cores, so the compression runs slower than on an idle robot.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import statistics
import sys
import time

import zmq

from rrto_ros.bench.link import LinkProcess
from rrto_ros.bench.link import PROFILES
from rrto_ros.client.compression import CompressionPolicy
from rrto_ros.client.uplink import Uplink
from rrto_ros.client.uploads import ContentIndex
from rrto_ros.client.uploads import Uploader
from rrto_ros.protocol.ops import Op
from rrto_ros.server.server import Server
from rrto_ros.server.server import ServerConfig
from rrto_ros.tracking.letterbox import letterbox
from rrto_ros.tracking.letterbox import to_input

IMAGES = ('astronaut', 'coffee', 'rocket')
SETTINGS = ('off', 'zstd', 'lz4', 'auto')


def upload_ms(endpoint: str, setting: str, mbit: float, data: bytes, repeat: int) -> dict:
    link = Uplink(zmq.Context.instance(), endpoint, server_timeout_s=30.0)
    rep = link.call(Op.HELLO, [1], pid=1, app='bench')
    link.sid = rep.extra['sid']
    ptr = link.call(Op.MALLOC, [len(data)]).res[0]
    up = Uploader(link, CompressionPolicy(setting, mbit), ContentIndex(), 0, endpoint)
    times = []
    for _ in range(repeat):
        wire0 = up.stats.payload_wire_bytes
        t0 = time.perf_counter()
        r = up.htod([ptr, 0, 0], data, wait=True, split=True)
        times.append(time.perf_counter() - t0)
        assert r is not None and r.err == 0, r
        wire = up.stats.payload_wire_bytes - wire0
    back = link.call(Op.MEMCPY_DTOH, [ptr, len(data), 0, 0])
    identical = bytes(back.frames[0]) == data
    link.call(Op.BYE, [])
    link.close()
    return {'ms_p50': statistics.median(times) * 1e3, 'wire_bytes': wire,
            'identical': identical}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--out', type=pathlib.Path,
                    default=pathlib.Path('bench/results/upload_link.json'))
    ap.add_argument('--repeat', type=int, default=3)
    ap.add_argument('--links', nargs='+', default=['edge', 'cloud'])
    a = ap.parse_args(argv)
    from skimage import data as samples
    server = Server(ServerConfig('tcp://127.0.0.1:*', 'emu', module_cache_dir=None)).start()
    rows = []
    try:
        for link_name in a.links:
            profile = PROFILES[link_name]
            with LinkProcess(link_name, server.endpoint) as lp:
                for name in IMAGES:
                    img = getattr(samples, name)()
                    for size in (640, 1280):
                        buf = to_input(letterbox(img, size, auto=False).image).tobytes()
                        for setting in SETTINGS:
                            r = upload_ms(lp.endpoint, setting, profile.bandwidth_bps / 1e6,
                                          buf, a.repeat)
                            rows.append({'link': link_name, 'image': name, 'size': size,
                                         'bytes': len(buf), 'compression': setting, **r})
                            print(json.dumps(rows[-1]), flush=True)
    finally:
        server.stop()
    speedup = {}
    for link_name in a.links:
        for size in (640, 1280):
            raw = [r['ms_p50'] for r in rows if r['link'] == link_name and r['size'] == size
                   and r['compression'] == 'off']
            auto = [r['ms_p50'] for r in rows if r['link'] == link_name and r['size'] == size
                    and r['compression'] == 'auto']
            speedup[f'{link_name}_{size}'] = statistics.median(
                x / y for x, y in zip(raw, auto))
    out = {'command': ' '.join([pathlib.Path(sys.executable).name] + sys.argv),
           'device': f'{platform.node()} ({os.cpu_count()} cpus, shared by client, server '
                     'and link emulator), emu server',
           'speedup_auto_vs_off_median': speedup,
           'all_identical': all(r['identical'] for r in rows), 'results': rows}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(out, indent=1) + '\n')
    print(json.dumps({k: out[k] for k in ('speedup_auto_vs_off_median', 'all_identical')}))
    return 0


if __name__ == '__main__':
    sys.exit(main())
