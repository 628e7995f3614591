# Copyright 2026 rrto_ros authors. Apache-2.0.
"""One session's link to the server: a ZeroMQ DEALER, request numbering, liveness.

Replies come back in request order. Requests sent ``quiet`` (not waited on) are answered
only when they fail; such an error is kept and returned by the next call that waits, as
CUDA reports errors of asynchronous work at the next synchronising call.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from dataclasses import field
import logging
import secrets
import time
from typing import Any, Deque, Dict, List, Optional, Sequence, Tuple

import zmq

from rrto_ros.client.compression import BandwidthEstimate
from rrto_ros.client.handshake import HandshakeWatch
from rrto_ros.protocol import ops
from rrto_ros.protocol.messages import decode_reply
from rrto_ros.protocol.messages import encode_request
from rrto_ros.protocol.messages import PING
from rrto_ros.protocol.messages import ProtocolError
from rrto_ros.protocol.messages import Reply
from rrto_ros.protocol.messages import Request
from rrto_ros.protocol.messages import total_size


class ServerLost(Exception):
    """The server did not answer within the timeout, or answered garbage."""


class HandshakeFailed(ServerLost):
    """The server refused this client (a key, the security setting): the message says which
    and what to change."""


log = logging.getLogger(__name__)
# Bytes of requests kept until a reply shows they arrived (what a lost connection may have
# swallowed); beyond, the link cannot resume and a loss ends the session as before.
WINDOW_BYTES = 512 << 20
HANDSHAKE_POLL_S = 0.05   # until the first handshake, how often a wait looks for a refusal


@dataclass
class LinkStats:
    requests: int = 0                 # requests sent (CUDA ops, not liveness probes)
    blocking_round_trips: int = 0     # requests the client waited for
    bytes_up: int = 0
    bytes_down: int = 0
    rtt_s: List[float] = field(default_factory=list)   # recent blocking round trips
    max_rtt_samples: int = 10000

    def add_rtt(self, dt: float) -> None:
        if len(self.rtt_s) >= self.max_rtt_samples:
            del self.rtt_s[: self.max_rtt_samples // 2]
        self.rtt_s.append(dt)


class Uplink:
    def __init__(self, ctx: zmq.Context, endpoint: str, server_timeout_s: float = 5.0,
                 heartbeat_s: float = 1.0, curve: Optional[Dict[str, Any]] = None,
                 bandwidth: Optional[BandwidthEstimate] = None) -> None:
        self.endpoint = endpoint
        # Fed with each blocking round trip and the bytes sent since the previous one.
        self.bandwidth = bandwidth or BandwidthEstimate()
        self._burst_bytes = 0
        self._burst_t0: Optional[float] = None
        self.server_timeout_s = server_timeout_s
        self.heartbeat_s = heartbeat_s
        self.sock = ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        # No send high-water mark: pipelined calls may queue behind a slow server (what the
        # app issues is what it would have issued to a local GPU); a send only waits when
        # there is no connection at all.
        self.sock.setsockopt(zmq.SNDHWM, 0)
        if curve:
            self.sock.curve_secretkey = curve['secret']
            self.sock.curve_publickey = curve['public']
            self.sock.curve_serverkey = curve['server']
        # The same routing id on every connection: after a lost one (a Wi-Fi drop) the
        # server hands this client its route, and its session, back.
        self.sock.setsockopt(zmq.ROUTING_ID, b'r' + secrets.token_bytes(15))
        self.handshake = HandshakeWatch(self.sock, endpoint, curve)
        self.sock.connect(endpoint)
        self.sid = b''
        self.seq = 0
        # The server's largest payload per request (its hello announces it): a larger
        # request is refused here, with the reason, instead of being dropped by the server.
        self.max_payload: Optional[int] = None
        self._refused: Dict[int, Reply] = {}
        self.deferred: Optional[Reply] = None
        self.stats = LinkStats()
        self.last_heard = time.monotonic()
        self.last_sent = time.monotonic()
        self._pings: set = set()
        # Requests sent and not yet known to have arrived (a later reply tells), numbered
        # one after the other: what is sent again after a lost connection.
        self._n = 0
        self._window: Deque[Tuple[int, List[Any], int]] = deque()
        self._window_bytes = 0
        self._connects_seen = 0
        self.resent = 0        # requests sent again after a lost connection

    def close(self) -> None:
        self.handshake.close()
        self.sock.close(0)

    def send(self, op: Any, args: Sequence[int], frames: Sequence[Any] = (), quiet: bool = False,
             **extra: Any) -> int:
        self.seq += 1
        payload = total_size(frames)
        if self.max_payload is not None and payload > self.max_payload:
            refused = Reply(self.seq, ops.CUDA_ERROR_INVALID_VALUE, message=(
                f'{_name(op)} with {payload} bytes of payload exceeds the max_message_bytes '
                f'({self.max_payload}) of the rrto server at {self.endpoint}; raise it there'))
            if quiet:
                self.deferred = self.deferred or refused
            else:
                self._refused[self.seq] = refused
            return self.seq
        if op != PING:
            self._n += 1
            extra['n'] = self._n
        parts = encode_request(Request(self.sid, self.seq, op, list(args), list(frames), quiet,
                                       extra))
        copy = len(frames) == 0 or payload < 65536
        try:   # never block here: a DEALER with no live connection would wait forever
            self.sock.send_multipart(parts, zmq.NOBLOCK, copy=copy)
        except zmq.Again:
            if op == PING:
                return self.seq   # nothing to probe yet; wait() keeps counting the silence
            if not self._writable(self.server_timeout_s):
                self._raise_if_refused(silent=True)
                raise ServerLost(f'cannot send to the rrto server at {self.endpoint}: no '
                                 f'connection for {self.server_timeout_s:.1f} s (wrong '
                                 'address, server down, or CURVE keys that do not match)'
                                 ) from None
            self.sock.send_multipart(parts, zmq.NOBLOCK, copy=copy)
        self.stats.requests += op not in (PING, ops.Op.BYE)   # as the server counts them
        sent = total_size(parts[1:], parts[0])
        if op != PING:
            self._keep(self.seq, parts, sent)
        self.stats.bytes_up += sent
        self.last_sent = time.monotonic()
        if op != PING:
            if self._burst_t0 is None:
                self._burst_t0 = time.perf_counter()
            self._burst_bytes += sent
        if op == PING:
            self._pings.add(self.seq)
        return self.seq

    def call(self, op: Any, args: Sequence[int], frames: Sequence[Any] = (),
             timeout_s: Optional[float] = None, **extra: Any) -> Reply:
        """Send and wait for this request's reply (a blocking round trip)."""
        t0 = time.perf_counter()
        seq = self.send(op, args, frames, **extra)
        reply = self.wait(seq, timeout_s)
        now = time.perf_counter()
        self.stats.blocking_round_trips += 1
        self.stats.add_rtt(now - t0)
        if self._burst_t0 is not None:
            self.bandwidth.round_trip(self._burst_bytes, now - self._burst_t0)
        self._burst_t0, self._burst_bytes = None, 0
        return reply

    def wait(self, seq: int, timeout_s: Optional[float] = None) -> Reply:
        """Wait for reply ``seq``; quiet errors received first are kept in ``deferred``.

        Liveness: while waiting, a probe is sent every heartbeat; the server's I/O thread
        answers it even while a long kernel runs. Silence for ``timeout_s`` (default
        server_timeout_s) raises ServerLost.
        """
        if seq in self._refused:
            return self._refused.pop(seq)
        limit = self.server_timeout_s if timeout_s is None else timeout_s
        start = time.monotonic()
        heard = start
        probe_at = start + self.heartbeat_s
        while True:
            wake = min(probe_at, heard + limit)
            if not self.handshake.done:
                wake = min(wake, time.monotonic() + HANDSHAKE_POLL_S)
            if self.sock.poll(max(1, int((wake - time.monotonic()) * 1000))):
                reply = self._recv()
                heard = time.monotonic()
                if reply.seq == seq:
                    return reply
                self._absorb(reply)
                self._watch_connection()
                continue
            self._watch_connection()
            now = time.monotonic()
            self._raise_if_refused(silent=now - heard > limit)
            if now - heard > limit:
                raise ServerLost(f'no answer from the rrto server at {self.endpoint} for '
                                 f'{limit:.1f} s')
            if now >= probe_at:
                self.send(PING, [])
                probe_at = now + self.heartbeat_s

    def _keep(self, seq: int, parts: List[Any], size: int) -> None:
        if self._window_bytes + size > WINDOW_BYTES:   # too much to keep: no resume
            self._window.clear()
            self._window_bytes = 0
            return
        self._window.append((seq, parts, size))
        self._window_bytes += size

    def _acked(self, seq: int) -> None:
        """A session's reply to ``seq``: everything up to it arrived (the server executes a
        session's requests in their numbered order, refusing gaps)."""
        w = self._window
        while w and w[0][0] <= seq:
            self._window_bytes -= w.popleft()[2]

    def _resume(self, why: str) -> None:
        """Send again what may have been lost with a connection, in order; the server
        drops what it has and answers again what it answered."""
        if not self._window:
            return
        log.info('link to %s %s: sending %d requests again', self.endpoint, why,
                 len(self._window))
        for _seq, parts, _size in list(self._window):
            try:
                self.sock.send_multipart(parts, zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return   # no connection again: the next reconnect sends them
            self.resent += 1

    def _watch_connection(self) -> None:
        self.handshake.check()
        connects = self.handshake.connects
        if connects > self._connects_seen:
            if self._connects_seen:
                self._resume('reconnected')
            self._connects_seen = connects

    def _writable(self, limit: float) -> bool:
        """Wait until a message can be queued, giving up early if the server refused us."""
        deadline = time.monotonic() + limit
        while True:
            left = deadline - time.monotonic()
            if self.sock.poll(max(1, int(min(left, HANDSHAKE_POLL_S) * 1000)), zmq.POLLOUT):
                return True
            self._raise_if_refused(silent=False)
            if left <= 0:
                return False

    def _raise_if_refused(self, silent: bool) -> None:
        """HandshakeFailed if the server refused this client; ``silent``: the wait has timed
        out, so a handshake the server keeps cutting short counts as a refusal too."""
        why = self.handshake.explain_silence() if silent else self.handshake.check()
        if why:
            raise HandshakeFailed(why)

    def drain(self) -> None:
        """Take in replies that arrived without being waited for (non-blocking)."""
        while self.sock.poll(0):
            self._absorb(self._recv())

    def ping(self) -> None:
        self.send(PING, [])

    def take_deferred(self) -> Optional[Reply]:
        d, self.deferred = self.deferred, None
        return d

    def _recv(self) -> Reply:
        parts = self.sock.recv_multipart(copy=False)
        self.handshake.done = True
        self.stats.bytes_down += total_size(parts)
        self.last_heard = time.monotonic()
        try:
            reply = decode_reply(parts)
        except ProtocolError as e:
            raise ServerLost(f'malformed reply from {self.endpoint}: {e}') from None
        if reply.seq not in self._pings:   # a ping's answer may come on a new connection,
            self._acked(reply.seq)          # past requests the old one lost: no proof
        return reply

    def _absorb(self, reply: Reply) -> None:
        if 'resend_from' in reply.extra:   # the server missed requests: send them again
            self._resume('lost requests')
            return
        if reply.seq in self._pings:
            self._pings.discard(reply.seq)
            if self.sid and reply.res and not reply.res[0]:
                raise ServerLost(f'the rrto server at {self.endpoint} no longer has this '
                                 'session (it timed out or failed on the server)')
            return
        if reply.err and reply.err != ops.CUDA_ERROR_NOT_READY and self.deferred is None \
                and reply.seq > 0:
            self.deferred = reply


def _name(op: Any) -> str:
    try:
        return ops.Op(op).name
    except ValueError:
        return str(op)
