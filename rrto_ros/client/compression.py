# Copyright 2026 rrto_ros authors. Apache-2.0.
"""When the client node compresses an upload, and with what (pure: no sockets).

The rule (``compression: auto``): compress when the wire time saved exceeds the time to
compress and decompress, per byte:

    (1 - 1 / ratio) * 8 / bandwidth  >  1 / compress_speed + 1 / decompress_speed

and pick the codec that saves the most. Ratio and speeds start from the medians measured on
real photographs as a vision pipeline uploads them (``bench/results/input_compression.json``:
float32 CHW / 255, letterboxed 640 and 1280) and then follow what this robot achieves on
this session's uploads, so data that do not compress (random weights, encrypted bytes) turn
it off by themselves; such a codec is tried again every ``PROBE_EVERY`` uploads. With those
medians zstd (level 1) pays below ~590 Mbit/s, lz4 from there to ~3.4 Gbit/s, nothing
above: on at ``edge`` and ``cloud``, off on loopback. The bandwidth is ``link_mbit`` when
configured, else what the uplink measures (``BandwidthEstimate``); until there is a
measurement nothing is compressed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional

from rrto_ros.protocol.payload_codec import CODECS

SETTINGS = ('auto', 'off') + CODECS
MIN_BYTES = 64 << 10        # smaller uploads go as they are (their wire time is tiny)
PROBE_EVERY = 32
EWMA = 0.25                 # weight of a new observation


def check_compression(setting: str) -> str:
    if setting not in SETTINGS:
        raise ValueError(f'compression must be one of {", ".join(SETTINGS)}, not {setting!r}')
    return setting


@dataclass
class CodecModel:
    ratio: float               # raw bytes / compressed bytes
    compress_Bps: float        # raw bytes per second, on this robot
    decompress_Bps: float      # raw bytes per second, on the server

    def gain_s_per_byte(self, bandwidth_bps: float) -> float:
        saved = (1.0 - 1.0 / self.ratio) * 8.0 / bandwidth_bps
        return saved - 1.0 / self.compress_Bps - 1.0 / self.decompress_Bps


def measured_priors() -> Dict[str, CodecModel]:
    """Float32 medians of bench/results/input_compression.json (2-core x86 machine)."""
    return {'zstd': CodecModel(4.49, 451e6, 1295e6), 'lz4': CodecModel(3.05, 779e6, 3494e6)}


class BandwidthEstimate:
    """The uplink's bandwidth from blocking round trips: a round trip that carried B bytes
    since the previous answer and took T seconds, against the fastest small round trip R,
    gives at most the link's bandwidth, 8 B / (T - R) (server time only lowers it); the
    estimate is the largest recent one."""

    MIN_BYTES = 1 << 20
    SMALL_BYTES = 4096

    def __init__(self) -> None:
        self.min_rtt_s: Optional[float] = None
        self.bps: Optional[float] = None

    def round_trip(self, nbytes: int, seconds: float) -> None:
        if nbytes <= self.SMALL_BYTES:
            self.min_rtt_s = seconds if self.min_rtt_s is None else \
                min(self.min_rtt_s, seconds)
        elif nbytes >= self.MIN_BYTES and self.min_rtt_s is not None:
            wire = seconds - self.min_rtt_s
            if wire > 0:
                self.bps = max(self.bps or 0.0, 8.0 * nbytes / wire)


class CompressionPolicy:
    def __init__(self, setting: str, link_mbit: float = 0.0,
                 bandwidth: Optional[BandwidthEstimate] = None) -> None:
        self.setting = check_compression(setting)
        self.link_bps = link_mbit * 1e6
        self.bandwidth = bandwidth or BandwidthEstimate()
        self.models = measured_priors()
        self._skipped = 0

    def bandwidth_bps(self) -> Optional[float]:
        return self.link_bps if self.link_bps > 0 else self.bandwidth.bps

    def choose(self, nbytes: int) -> Optional[str]:
        """The codec for an upload of ``nbytes``, or None to send it as it is."""
        if self.setting == 'off' or nbytes < MIN_BYTES:
            return None
        if self.setting != 'auto':
            return self.setting
        bw = self.bandwidth_bps()
        if not bw:
            return None
        gains = {c: m.gain_s_per_byte(bw) for c, m in self.models.items()}
        best = max(gains, key=gains.get)
        if gains[best] > 0:
            return best
        priors = measured_priors()   # off because this session's data compress badly?
        hopeful = [c for c in CODECS if priors[c].gain_s_per_byte(bw) > 0]
        if hopeful:
            self._skipped += 1
            if self._skipped >= PROBE_EVERY:
                self._skipped = 0
                return max(hopeful, key=lambda c: priors[c].gain_s_per_byte(bw))
        return None

    def observed(self, codec: str, raw: int, compressed: int, seconds: float) -> None:
        """What one compression achieved (the decompression speed keeps its prior: the
        server does not report it)."""
        m = self.models[codec]
        m.ratio += EWMA * (raw / max(1, compressed) - m.ratio)
        if seconds > 0:
            m.compress_Bps += EWMA * (raw / seconds - m.compress_Bps)
