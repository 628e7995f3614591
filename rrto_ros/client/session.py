# Copyright 2026 rrto_ros authors. Apache-2.0.
"""One app process's session in the client node: reads its interposer's calls from the
local socket and forwards them to the server, waiting only where the app needs an answer."""

from __future__ import annotations

from collections import deque
from dataclasses import asdict
from dataclasses import dataclass
import logging
import socket
import statistics
import time
from typing import Callable, Dict, Optional

import zmq

from rrto_ros.client.compression import BandwidthEstimate
from rrto_ros.client.compression import CompressionPolicy
from rrto_ros.client.config import ClientConfig
from rrto_ros.client.lane import default_sodium_library
from rrto_ros.client.lane import lane_descriptor
from rrto_ros.client.lane import SODIUM_PACKAGE
from rrto_ros.client.replayer import ClientReplay
from rrto_ros.client.replayer import make_call
from rrto_ros.client.replayer import NOT_RECORDED
from rrto_ros.client.uplink import HandshakeFailed
from rrto_ros.client.uplink import LinkStats
from rrto_ros.client.uplink import ServerLost
from rrto_ros.client.uplink import Uplink
from rrto_ros.client.uploads import ContentIndex
from rrto_ros.client.uploads import Uploader
from rrto_ros.protocol import agent_wire as wire
from rrto_ros.protocol import lane_seal
from rrto_ros.protocol import ops
from rrto_ros.protocol.messages import frame_bytes
from rrto_ros.protocol.messages import OUTPUT
from rrto_ros.protocol.messages import Reply
from rrto_ros.protocol.ops import Op
from rrto_ros.record import oplog_file
from rrto_ros.server.module_cache import content_key
from rrto_ros.server.replay import encode_template

log = logging.getLogger(__name__)
# Blocking calls after which the log may end with a whole inference: search then.
SEARCH_AFTER = frozenset({Op.MEMCPY_DTOH, Op.STREAM_SYNC, Op.DEVICE_SYNC, Op.EVENT_SYNC})
NOTE_BLOCKING, NOTE_LOST = 1, 2    # REPLAY_NOTE flags (interposer/rrto_wire.h)
# Deferred copies to the host (the app reads them when it synchronises) in flight to the
# server at once: the server copies one while the previous travels.
DEFERRED_WINDOW = 8


@dataclass
class SessionStats:
    app: str = ''
    pid: int = 0
    mode: str = ''
    agent_calls: int = 0             # calls the interposer sent to this node
    forwarded_calls: int = 0         # requests sent to the server (lane included)
    blocking_round_trips: int = 0    # of those, the ones waited for
    lane_requests: int = 0           # of those, the ones the interposer sent on the lane
    bytes_up: int = 0
    bytes_down: int = 0
    modules_uploaded: int = 0
    modules_cached: int = 0
    module_bytes_uploaded: int = 0      # fatbin bytes sent (0 when the server had them)
    payload_bytes: int = 0              # bytes of copies to the device and replay inputs
    payload_wire_bytes: int = 0         # what of them travelled (after compression)
    compressed_payloads: int = 0
    content_bytes_by_hash: int = 0      # copies the server had: their key travelled
    content_bytes_sent: int = 0         # content-addressed copies whose bytes travelled
    errors: int = 0
    server_rtt_us_median: float = 0.0
    state: str = 'running'
    phase: str = 'forwarding'
    inferences: int = 0
    divergences: int = 0                # inferences that changed in the middle
    departures: int = 0                 # non-matching calls between inferences
    latency_ms_p50: float = 0.0
    replay_started_at: int = -1         # inferences done before the first replay
    last_inference_phase: str = ''      # the phase the latest inference ran in
    round_trips_per_inference: tuple = ()   # recent inferences, blocking round trips each


class ClientSession:
    def __init__(self, conn: socket.socket, ctx: zmq.Context, config: ClientConfig,
                 on_end: Callable[['ClientSession'], None],
                 curve: Optional[Dict[str, bytes]] = None,
                 content: Optional[ContentIndex] = None,
                 bandwidth: Optional[BandwidthEstimate] = None) -> None:
        self.conn = conn
        # Copies to the host leave in fewer, larger writes (the kernel caps it at wmem_max).
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, wire.SOCKET_BUFFER)
        self.config = config
        self.uplink = Uplink(ctx, config.server_endpoint, config.server_timeout_s,
                             config.heartbeat_s, curve, bandwidth)
        self.uploads = Uploader(self.uplink, CompressionPolicy(
            config.compression, config.link_mbit, self.uplink.bandwidth),
            content or ContentIndex(), config.content_min_bytes, config.server_endpoint)
        self.stats = SessionStats(mode=config.mode)
        self.lost: Optional[str] = None
        self._on_end = on_end
        self._modules: Dict[int, bytearray] = {}
        self._open = False
        self.lane = LinkStats()   # the replay lane's, as the interposer reports them
        self.replay = ClientReplay(config.record_window, lambda: (
            self.uplink.stats.blocking_round_trips + self.lane.blocking_round_trips))
        self._restart_requested = False
        self._search_due = False   # a search waits for a reply the app is waiting for
        self._lost_told = False
        self._poller = zmq.Poller()   # the app's socket and the connection to the server
        self._poller.register(conn.fileno(), zmq.POLLIN)
        self._poller.register(self.uplink.sock, zmq.POLLIN)
        # RRTO_OPLOG_DUMP=FILE: every forwarded call, written at the end (record/oplog_file)
        self._dump: Optional[list] = [] if oplog_file.target(0) else None

    @property
    def mode(self) -> str:
        return self.config.mode

    # ----------------------------------------------------------- main loop
    def run(self) -> None:
        poller, app = self._poller, self.conn.fileno()
        try:
            while True:
                events = dict(poller.poll(int(self.config.heartbeat_s * 1000)))
                if not self.lost and set(events) - {app}:   # something from the server
                    try:
                        self.uplink.drain()
                    except ServerLost as e:
                        self._lose(e)   # the server's side stays silent from now on
                        poller.unregister(self.uplink.sock)
                if self.conn.fileno() in events:
                    try:
                        req = wire.read_request(self.conn)
                    except wire.BadRequest as e:
                        self._refuse(e)
                        continue
                    self._serve(req)
                elif self._open and not self.lost and \
                        time.monotonic() - self.uplink.last_sent > self.config.heartbeat_s:
                    self.uplink.ping()   # keeps the server session alive while the app idles
        except ConnectionResetError:
            log.info('session %s: the app closed its connection in the middle of its work (it '
                     'ended or was killed)', self.label)
        except (wire.WireError, ConnectionError, OSError) as e:
            if not isinstance(e, wire.WireError) or str(e) != 'connection closed':
                log.warning('session %s: connection to the app broke: %s', self.label, e)
        finally:
            self._close()

    @property
    def label(self) -> str:
        return f'{self.stats.app or "?"}[{self.stats.pid}]'

    def _close(self) -> None:
        if self._open and not self.lost:
            try:
                self.uplink.send(Op.BYE, [], quiet=True)
            except (zmq.ZMQError, ServerLost):
                pass   # the server forgets the session by itself after session_timeout_s
        self.uplink.close()
        self.conn.close()
        self._write_dump()
        self._refresh_stats()
        self.stats.state = 'lost' if self.lost else 'ended'
        self._on_end(self)

    def _write_dump(self) -> None:
        if self._dump is None:
            return
        path = oplog_file.target(self.stats.pid)
        try:
            n = oplog_file.dump(path, self._dump, self.stats.app, self.mode)
            log.info('session %s: %d calls written to %s (RRTO_OPLOG_DUMP)', self.label, n, path)
        except OSError as e:
            log.warning('session %s: cannot write the operator log to %s: %s', self.label,
                        path, e)

    def _refresh_stats(self) -> None:
        s, lane = self.uplink.stats, self.lane
        self.stats.forwarded_calls = s.requests + lane.requests
        self.stats.blocking_round_trips = s.blocking_round_trips + lane.blocking_round_trips
        self.stats.lane_requests = lane.requests
        self.stats.bytes_up = s.bytes_up + lane.bytes_up
        self.stats.bytes_down = s.bytes_down + lane.bytes_down
        u = self.uploads.stats
        self.stats.payload_bytes, self.stats.payload_wire_bytes = u.payload_bytes, \
            u.payload_wire_bytes
        self.stats.compressed_payloads = u.compressed
        self.stats.content_bytes_by_hash = u.by_hash_bytes
        self.stats.content_bytes_sent = u.content_sent_bytes
        rtt = s.rtt_s + lane.rtt_s
        if rtt:
            self.stats.server_rtt_us_median = statistics.median(rtt) * 1e6
        self.stats.mode = self.mode
        r = self.replay
        self.stats.phase = r.phase(self.mode)
        self.stats.last_inference_phase = r.last_inference_phase(self.mode)
        self.stats.inferences = r.inferences
        self.stats.divergences = r.divergences
        self.stats.departures = r.departures
        self.stats.replay_started_at = -1 if r.replay_started_at is None else \
            r.replay_started_at
        self.stats.round_trips_per_inference = tuple(r.round_trips_per_inference)
        if r.latencies_s:
            self.stats.latency_ms_p50 = statistics.median(r.latencies_s) * 1e3

    def snapshot(self) -> dict:
        self._refresh_stats()
        return asdict(self.stats)

    # ----------------------------------------------------------- one call
    def _reply(self, err: int, res=(), data=b'', message: str = '',
               table: Optional[bytes] = None, output: bytes = b'') -> None:
        if err:
            self.stats.errors += 1
        mode = wire.MODE_IDS[self.mode]
        if self.mode != 'replay' and self.replay.active:
            self.replay.active = False      # the interposer drops its table on this reply
        if message:
            wire.send_reply(self.conn, err, res, message.encode(), mode, message=True,
                            output=output)
        else:
            wire.send_reply(self.conn, err, res, data, mode, table=table, idle=self._idle,
                            output=output)

    def _idle(self) -> None:
        """The app has not read a reply for a while (a deferred copy's data wait for it to
        synchronise): the server session must not time out meanwhile."""
        if self._open and not self.lost and \
                time.monotonic() - self.uplink.last_sent > self.config.heartbeat_s:
            self.uplink.ping()

    def request_restart(self) -> None:
        """Ask (from any thread) to drop the recorded sequence and record again."""
        self._restart_requested = True

    def _serve(self, req: wire.AgentRequest) -> None:
        self.stats.agent_calls += 1
        if self._restart_requested:
            self._restart_requested = False
            self.replay.restart()
        op = Op(req.op)
        if self.lost:
            if req.wants_reply:   # the reason goes to the app once (it logs it)
                self._reply(ops.CUDA_ERROR_DEVICES_UNAVAILABLE, message=self._untold())
            return
        try:
            if op == Op.HELLO:
                self._hello(req)
            elif op == Op.MODULE_LOAD:
                self._module_load(req)
            elif op == Op.REPLAY_DIVERGE:
                self._diverged(req)
            elif op == Op.REPLAY_NOTE:
                self._noted(req)
            else:
                self._forward(op, req)
        except ServerLost as e:
            self._lose(e)
            if req.wants_reply:
                self._reply(ops.CUDA_ERROR_DEVICES_UNAVAILABLE, message=self._untold())
        except (wire.WireError, OSError):
            raise   # the app's connection broke: the session ends
        except Exception as e:  # a bug here must fail the call, not the app's session
            log.exception('session %s: %s raised', self.label, op.name)
            if req.wants_reply:
                self._reply(ops.CUDA_ERROR_UNKNOWN, message=f'{op.name} failed in the rrto '
                            f'client node: {type(e).__name__}: {e}')

    def _refuse(self, e: 'wire.BadRequest') -> None:
        """A request the decoder refused: answer it with the reason, keep the session."""
        self.stats.agent_calls += 1
        log.warning('session %s: refused a request from the interposer: %s', self.label, e)
        if e.request.wants_reply:
            self._reply(e.code, message=f'the rrto client node refused a request: {e}')

    def _lose(self, e: ServerLost) -> None:
        self.lost = (f'{e}; CUDA calls of this process now fail with '
                     f'cudaErrorDevicesUnavailable ({ops.CUDA_ERROR_DEVICES_UNAVAILABLE}). '
                     'Check that the server runs and the network is up, then restart the app.')
        self.stats.state = 'lost'
        log.error('session %s: %s', self.label, self.lost)

    def _untold(self) -> str:
        """Why the session is lost, the first time the app is answered after the loss."""
        msg, self._lost_told = ('' if self._lost_told else self.lost or ''), True
        return msg

    def _hello(self, req: wire.AgentRequest) -> None:
        pid, version = req.args
        self.stats.pid = pid
        self.stats.app = req.data.decode(errors='replace').rsplit('/', 1)[-1]
        if version != wire.PROTO_VERSION:
            return self._reply(ops.CUDA_ERROR_NO_DEVICE, message=(
                f'interposer protocol {version} does not match the client node protocol '
                f'{wire.PROTO_VERSION}: use librrto_cuda.so from the same rrto_ros install'))
        msg = ''
        try:
            reply = self.uplink.call(Op.HELLO, [pid], self.uploads.offer(self.stats.app),
                                     timeout_s=self.config.connect_timeout_s, pid=pid,
                                     app=self.stats.app)
        except HandshakeFailed as e:   # refused: a key or the security setting
            msg = f'{e}. CUDA calls fail with cudaErrorNoDevice.'
        except ServerLost as e:
            msg = (f'cannot reach the rrto server at {self.config.server_endpoint} ({e}). '
                   'Start it on the edge GPU with '
                   '`ros2 launch rrto_ros edge.launch.py` or `rrto-server --bind '
                   'tcp://*:5555`, and check the server_endpoint setting of the client. '
                   'CUDA calls fail with cudaErrorNoDevice.')
        if msg:
            log.error('session %s: %s', self.label, msg)
            self.lost = msg
            self.stats.state = 'lost'
            return self._reply(ops.CUDA_ERROR_NO_DEVICE, message=msg)
        if reply.err:
            log.error('session %s: the server refused the session: %s', self.label,
                      reply.message)
            self.lost = reply.message
            return self._reply(reply.err, message=f'the rrto server refused the session: '
                               f'{reply.message}')
        sid, lane_port = reply.extra.get('sid'), reply.extra.get('lane_port')
        if not isinstance(sid, bytes) or len(sid) != 16 or not (
                lane_port is None or type(lane_port) is int and 0 < lane_port < 65536):
            self.lost = (f'the rrto server at {self.config.server_endpoint} answered the hello '
                         'without a valid session id or lane port: not an rrto server of this '
                         'version? CUDA calls fail with cudaErrorNoDevice.')
            log.error('session %s: %s', self.label, self.lost)
            self.stats.state = 'lost'
            return self._reply(ops.CUDA_ERROR_NO_DEVICE, message=self.lost)
        self.uplink.sid = sid
        self.uploads.accept(reply)
        limit = reply.extra.get('max_message_bytes')
        self.uplink.max_payload = limit if type(limit) is int and limit > 0 else None
        self._open = True
        log.info('session %s opened on %s (%s backend, mode %s)', self.label,
                 self.config.server_endpoint, reply.extra.get('backend', '?'), self.mode)
        self._reply(0, [1], self._lane_for_app(lane_port, reply.extra.get('lane_key')))

    def _lane_for_app(self, port: Optional[int], key: object) -> bytes:
        """What the app's interposer needs to reach the replay lane the server announced and
        seal it (b'': no lane; replays then go through this node)."""
        cfg = self.config
        if not cfg.replay_lane or not port or not cfg.server_endpoint.startswith('tcp://'):
            return b''
        slower = 'replays go through this node, about 1 ms slower per inference on an edge link'
        if not isinstance(key, bytes) or len(key) != lane_seal.KEY_BYTES:
            log.warning('session %s: no replay lane: the server announced one without a '
                        'valid lane key (an rrto server of another version?); %s', self.label,
                        slower)
            return b''
        sodium = default_sodium_library()
        if not sodium:
            log.warning('session %s: no replay lane: it is encrypted with libsodium, which '
                        'is not installed here; %s. Install %s.', self.label, slower,
                        SODIUM_PACKAGE)
            return b''
        try:
            return lane_descriptor(cfg.server_endpoint, port, cfg.lane_endpoint,
                                   cfg.server_timeout_s, self.uplink.sid, key, sodium)
        except OSError as e:
            log.warning('session %s: no replay lane (%s); %s. Check lane_endpoint.',
                        self.label, e, slower)
            return b''

    def _noted(self, req: wire.AgentRequest) -> None:
        """The interposer ran a range on the replay lane (or lost the lane)."""
        seq_id, start, end, flags, payload, up, down, rtt_ns = req.args
        self.lane.bytes_up, self.lane.bytes_down = up, down
        if flags & NOTE_LOST:
            self._lost_told = True   # the interposer has told the app
            raise ServerLost(req.data.decode(errors='replace'))
        self.lane.requests += 1
        self.lane.blocking_round_trips += bool(flags & NOTE_BLOCKING)
        if rtt_ns:
            self.lane.add_rtt(rtt_ns * 1e-9)
        self.replay.ran(seq_id, start, end, payload)
        if req.wants_reply:   # answered while the server works: mode, a withdrawn table
            self._reply(0, table=b'' if self.replay.withdraw_pending() else None)

    def _diverged(self, req: wire.AgentRequest) -> None:
        seq_id, pos, err = req.args
        err = err - (1 << 32) if err >= 1 << 31 else err   # the interposer's int32, as uint32
        self.replay.diverged(seq_id, pos)
        if err and self.uplink.deferred is None:   # a quiet replayed range failed
            self.uplink.deferred = Reply(0, err, message=req.data.decode(errors='replace'))

    def _module_load(self, req: wire.AgentRequest) -> None:
        module_id, offset, total = req.args   # the decoder checked that the chunk fits
        if module_id not in self._modules:   # the interposer sends one module at a time
            self._modules.clear()
        buf = self._modules.setdefault(module_id, bytearray())
        if offset != len(buf):
            self._modules.pop(module_id, None)
            return self._reply(ops.CUDA_ERROR_INVALID_VALUE, message=(
                f'module {module_id} chunk at {offset} does not follow the previous one'))
        buf += req.data
        if len(buf) < total:
            return self._reply(0)
        image = bytes(self._modules.pop(module_id))
        key = content_key(image)
        reply = self.uplink.call(Op.MODULE_LOAD, [module_id], hash=key)
        if reply.extra.get('need_data'):
            reply = self._upload_module(module_id, image, key)
            self.stats.modules_uploaded += 1
            self.stats.module_bytes_uploaded += len(image)
        else:
            self.stats.modules_cached += 1
        self._answer(reply)

    def _upload_module(self, module_id: int, image: bytes, key: str) -> Reply:
        """Send a module's bytes in chunks the server takes (all but the last not waited
        for: an error among them comes back with the last one's answer)."""
        step = min(self.uplink.max_payload or wire.CHUNK, wire.CHUNK)
        view, total = memoryview(image), len(image)
        offsets = range(0, total, step) if total else [0]
        for off in offsets[:-1]:
            self.uplink.send(Op.MODULE_LOAD, [module_id, off, total], [view[off:off + step]],
                             quiet=True, hash=key)
        last = offsets[-1]
        return self.uplink.call(Op.MODULE_LOAD, [module_id, last, total], [view[last:]],
                                hash=key)

    def _forward(self, op: Op, req: wire.AgentRequest) -> None:
        frames, extra = [req.data] if req.data else [], {}
        recording = self.mode == 'replay'
        if op == Op.REPLAY_RUN:
            self.replay.ran(req.args[0], req.args[1], req.args[2], len(req.data))
            frames, extra = self.uploads.payload(req.data)
        if op == Op.MEMCPY_DTOH and req.deferred and req.wants_reply:
            return self._deferred_copies(req)
        if op == Op.MEMCPY_HTOD:
            reply = self.uploads.htod(req.args, req.data, req.wants_reply,
                                      split=self.mode != 'rpc')
        elif not req.wants_reply:
            self.uplink.send(op, req.args, frames, quiet=True, **extra)
        else:
            reply = self.uplink.call(op, req.args, frames, **extra)
        if not req.wants_reply:
            if recording and op != Op.REPLAY_RUN:
                self.replay.observe(op, req.args, req.data)
            self._log_call(op, req)
            return
        self._finish(op, req, reply)

    def _finish(self, op: Op, req: wire.AgentRequest, reply: Reply) -> None:
        """Record a forwarded call's outcome and answer the interposer. A search for the
        replay sequence is attached only to a reply the app waits for: a deferred reply is
        read after the app's later calls, where a table would no longer fit."""
        self._log_call(op, req, reply.res, reply.err)
        table = None
        if self.mode == 'replay' and op != Op.REPLAY_RUN:
            self.replay.observe(op, req.args, req.data, reply.res, reply.err)
            if op in SEARCH_AFTER and not reply.err and not self.replay.active:
                self._search_due = True
            if self._search_due and not req.deferred:
                self._search_due = False
                table = self._find_table()
        if not req.deferred and self.replay.withdraw_pending():
            table = b''
        self._answer(reply, table)

    def _deferred_copies(self, first: wire.AgentRequest) -> None:
        """Deferred copies to the host that the interposer sent back to back (a large copy's
        pieces): up to DEFERRED_WINDOW travel at once, answered in order."""
        flight = deque([(first, self.uplink.send(Op.MEMCPY_DTOH, first.args))])
        try:
            while flight:
                while len(flight) < DEFERRED_WINDOW:
                    nxt = self._next_deferred_copy()
                    if nxt is None:
                        break
                    flight.append((nxt, self.uplink.send(Op.MEMCPY_DTOH, nxt.args)))
                req, seq = flight[0]
                reply = self.uplink.wait(seq)
                self.uplink.stats.blocking_round_trips += 1   # this node waited for it
                self._finish(Op.MEMCPY_DTOH, req, reply)
                flight.popleft()
        except ServerLost as e:   # every copy read from the app gets its answer, in order
            self._lose(e)
            for _ in flight:
                self._reply(ops.CUDA_ERROR_DEVICES_UNAVAILABLE, message=self._untold())
        except (wire.WireError, OSError):
            raise   # the app's connection broke: the session ends
        except Exception as e:  # a bug here must fail the copies, not leave the app waiting
            log.exception('session %s: a deferred MEMCPY_DTOH raised', self.label)
            for _ in flight:
                self._reply(ops.CUDA_ERROR_UNKNOWN, message=f'MEMCPY_DTOH failed in the rrto '
                            f'client node: {type(e).__name__}: {e}')

    def _next_deferred_copy(self) -> Optional[wire.AgentRequest]:
        """The app's next request if it is already here and is a deferred copy to the host
        (a well-formed one: anything else is left for the main loop, in order)."""
        try:
            head = self.conn.recv(wire.REQ.size, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return None
        if len(head) < wire.REQ.size:
            return None
        magic, op, flags, nargs, length = wire.REQ.unpack(head)
        if magic != wire.MAGIC or op != Op.MEMCPY_DTOH or not flags & wire.F_DEFERRED or \
                nargs != ops.AGENT_ARGS[Op.MEMCPY_DTOH] or length or flags & wire.F_NOREPLY:
            return None
        self.stats.agent_calls += 1
        return wire.read_request(self.conn)

    def _log_call(self, op: Op, req: wire.AgentRequest, res=(), err: int = 0) -> None:
        if self._dump is not None and op not in NOT_RECORDED and \
                len(self._dump) < oplog_file.MAX_CALLS:
            self._dump.append(make_call(op, req.args, req.data, res, err))

    def _find_table(self) -> Optional[bytes]:
        """Search the log; load found sequences on the server; return the table."""
        found = self.replay.find()
        if found is None:
            return None
        seqs, start_seq, start_pos = found
        for i, (seq_id, calls) in enumerate(seqs):
            start = start_pos if i == start_seq else len(calls)
            rep = self.uplink.call(Op.REPLAY_LOAD, [seq_id, start], [encode_template(calls)])
            if rep.err:
                log.warning('session %s: the server refused a replay sequence: %s; staying in '
                            'forwarding', self.label, rep.message)
                return None
        return self.replay.install(seqs, start_seq, start_pos)

    def _answer(self, reply, table: Optional[bytes] = None) -> None:
        """Reply to the interposer; an earlier asynchronous error takes precedence. Device
        printf text (the last frame, when the server says so) goes to the app's stdout."""
        deferred = self.uplink.take_deferred()
        output = _output_of(deferred) + _output_of(reply)
        if deferred is not None:
            log.info('session %s: asynchronous error %d reported now: %s', self.label,
                     deferred.err, deferred.message)
            return self._reply(deferred.err, output=output)
        if reply.err and reply.message:
            log.info('session %s: %s', self.label, reply.message)
        data = frame_bytes(reply.frames[0]) if reply.frames else b''
        self._reply(reply.err, reply.res, data, table=table, output=output)


def _output_of(reply: Optional[Reply]) -> bytes:
    """Takes the device printf frame off a server reply (b'' when it has none)."""
    if reply is None or not reply.extra.get(OUTPUT) or not reply.frames:
        return b''
    return bytes(frame_bytes(reply.frames.pop()))
