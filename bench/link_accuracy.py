# Copyright 2026 rrto_ros authors. Apache-2.0.
"""Accuracy of the link emulator (rrto_ros/bench/link.py): achieved round trip time and
throughput against each profile's targets.

    python bench/link_accuracy.py --out bench/results/link_accuracy.json

The emulator runs as its own process, as LocalStack(link=...) runs it; the far end is a
loopback peer in this process. Per profile: the round trip time of small echoes (64 bytes
each way) through the emulator and, for reference, the same echo without it (what the
endpoints and the kernel cost by themselves), back to back and after as much idle time as
the profile's round trip (waking idle endpoints costs more, on a VM much more); the
emulator's own error is the round trip through it less the target less that idle echo;
the time to move a large transfer each way,
from which the achieved rate is 8 * bytes / (elapsed - target round trip time); and the
emulator's own statistic: how late after their due time it sent the data (in the
transfers, mostly waiting for the receiver to take more).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import platform
import shlex
import statistics
import sys
import time
from typing import Dict, List

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rrto_ros.bench import link_check  # noqa: E402
from rrto_ros.bench.link import LinkProcess  # noqa: E402
from rrto_ros.bench.link import PROFILES


def measure(profile: str, echoes: int, transfer_bytes: int, repeats: int) -> Dict:
    p = PROFILES[profile]
    with link_check.Peer() as peer:
        direct = link_check.round_trips(peer.port, echoes)
        # The same echoes without the emulator, but each after as much idle time as a
        # round trip through it: what waking both endpoints from idle costs by itself.
        idle = link_check.round_trips(peer.port, echoes, idle_s=p.rtt_s) if p.rtt_s else direct
        # One emulator process for the echoes, one for the transfers: each reports its own
        # lateness statistics.
        with LinkProcess(p, f'127.0.0.1:{peer.port}') as echo_link:
            rtts = link_check.round_trips(echo_link.port, echoes)
        transfers: Dict[str, List[float]] = {'up': [], 'down': []}
        with LinkProcess(p, f'127.0.0.1:{peer.port}') as bulk_link:
            for _ in range(repeats):
                for d in ('up', 'down'):
                    transfers[d].append(link_check.transfer(bulk_link.port, transfer_bytes, d))
    rtt = link_check.summary_ms(rtts)
    idle_ms = link_check.summary_ms(idle)
    row: Dict = {'profile': p.describe(),
                 'rtt': {'target_ms': p.rtt_s * 1e3, **rtt,
                         'error_p50_ms': round(rtt['p50_ms'] - p.rtt_s * 1e3, 4),
                         'without_emulator': link_check.summary_ms(direct),
                         'without_emulator_same_idle': idle_ms,
                         'emulator_error_p50_ms': round(
                             rtt['p50_ms'] - p.rtt_s * 1e3 - idle_ms['p50_ms'], 4)},
                 'throughput': {},
                 'emulator_lateness_us': {'echoes': echo_link.stats.get('lateness_us'),
                                          'transfers': bulk_link.stats.get('lateness_us')}}
    for d, times in transfers.items():
        t = statistics.median(times)
        serialise = t - p.rtt_s
        achieved = 8 * transfer_bytes / serialise / 1e6
        entry = {'bytes': transfer_bytes, 'repeats': repeats,
                 'elapsed_s_median': round(t, 5),
                 'elapsed_s_all': [round(x, 5) for x in times],
                 'achieved_mbit_s': round(achieved, 2)}
        if p.bandwidth_bps:
            target = p.bandwidth_bps / 1e6
            entry.update({'target_mbit_s': target,
                          'expected_elapsed_s': round(p.rtt_s + 8 * transfer_bytes /
                                                      p.bandwidth_bps, 5),
                          'achieved_over_target': round(achieved / target, 4)})
        row['throughput'][d] = entry
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--profiles', default=','.join(PROFILES),
                    help='comma-separated, from: ' + ', '.join(PROFILES))
    ap.add_argument('--echoes', type=int, default=300, help='small round trips per profile')
    ap.add_argument('--mbytes', type=float, default=16.0, help='MiB per large transfer')
    ap.add_argument('--repeats', type=int, default=3, help='large transfers per direction')
    ap.add_argument('--out', type=pathlib.Path, required=True)
    a = ap.parse_args()
    profiles = [x for x in a.profiles.split(',') if x]
    for x in profiles:
        if x not in PROFILES:
            ap.error(f'unknown profile {x!r}')
    rows = []
    for prof in profiles:
        print(f'link {prof}: measuring ...', flush=True)
        rows.append(measure(prof, a.echoes, int(a.mbytes * (1 << 20)), a.repeats))
        r = rows[-1]
        print(f'  rtt p50 {r["rtt"]["p50_ms"]:.3f} ms (target {r["rtt"]["target_ms"]:g}, '
              f'without emulator {r["rtt"]["without_emulator"]["p50_ms"]:.3f}, same idle '
              f'{r["rtt"]["without_emulator_same_idle"]["p50_ms"]:.3f}: the emulator adds '
              f'{r["rtt"]["emulator_error_p50_ms"]:.3f}); '
              + '; '.join(f'{d} {t["achieved_mbit_s"]:.1f} Mbit/s'
                          + (f' ({100 * t["achieved_over_target"]:.1f}% of target)'
                             if 'target_mbit_s' in t else '')
                          for d, t in r['throughput'].items()), flush=True)
    result = {'command': 'python ' + ' '.join(shlex.quote(x) for x in sys.argv),
              'date': time.strftime('%Y-%m-%d'),
              'machine': f'{platform.node()} {platform.machine()} '
                         f'{platform.processor() or ""}'.strip(),
              'python': platform.python_version(),
              'method': __doc__.split('\n\n', 2)[2].strip(),
              'profiles': rows}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=2) + '\n')
    print(f'wrote {a.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
