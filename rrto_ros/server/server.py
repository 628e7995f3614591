# Copyright 2026 rrto_ros authors. Apache-2.0.
"""The rrto server core (ROS-free): a ZeroMQ ROUTER that owns the sessions.

One I/O thread receives every request, answers liveness probes itself, rejects what is
malformed, oversized or not the sender's session with an error reply, and hands the rest
to the session's worker thread. Workers send their replies back through an inproc socket.
Requests come over ZeroMQ (from the client node) or over a session's replay lane (from the
app's interposer, REPLAY_RUN only: ``lanes.py``); a reply goes back the way its request
came, in that connection's framing.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
import errno
import logging
import os
import secrets
import socket
import threading
import time
from typing import Dict, List, Optional

import zmq

from rrto_ros.protocol import lane_seal
from rrto_ros.protocol import lane_wire
from rrto_ros.protocol import ops
from rrto_ros.protocol.curve import check_security
from rrto_ros.protocol.curve import open_warning
from rrto_ros.protocol.curve import server_keys
from rrto_ros.protocol.keys import exposed
from rrto_ros.protocol.messages import decode_request
from rrto_ros.protocol.messages import encode_reply
from rrto_ros.protocol.messages import frame_bytes
from rrto_ros.protocol.messages import MAX_HEADER_BYTES
from rrto_ros.protocol.messages import PING
from rrto_ros.protocol.messages import ProtocolError
from rrto_ros.protocol.messages import Reply
from rrto_ros.protocol.messages import Request
from rrto_ros.protocol.messages import total_size
from rrto_ros.protocol.ops import Op
from rrto_ros.server import lanes
from rrto_ros.server.auth import AllowList
from rrto_ros.server.auth import start_authenticator
from rrto_ros.server.backend import make_backend
from rrto_ros.server.lanes import ServerLane
from rrto_ros.server.module_cache import ModuleCache
from rrto_ros.server.session import ServerSession

log = logging.getLogger(__name__)
MIN_MESSAGE_BYTES = 64 << 10


class ServerStartError(ValueError):
    """The server cannot start with this configuration; the message says what to change."""


def _client_key(body: List) -> str:
    """The CURVE public key (Z85) ZAP authenticated the request's connection with; ''
    with security open."""
    try:
        return body[0].get('User-Id') or ''
    except (AttributeError, zmq.ZMQError, IndexError):
        return ''


def bind_error(endpoint: str, e: zmq.ZMQError) -> str:
    """One line for a ZeroMQ endpoint the server cannot listen on, naming the fix."""
    if e.errno == errno.EADDRINUSE:
        return (f'cannot listen on {endpoint}: the port is in use (another rrto server or '
                'program listens there). Stop it, or choose another port in the bind '
                'endpoint (--bind / bind_endpoint).')
    if e.errno in (errno.EINVAL, errno.EPROTONOSUPPORT, errno.ENODEV):
        return (f'cannot listen on {endpoint!r}: not a usable ZeroMQ endpoint ({e}). Write '
                'it as tcp://*:PORT (every interface) or tcp://ADDRESS:PORT, e.g. '
                "'tcp://*:5555'.")
    return f'cannot listen on {endpoint}: {e}'


@dataclass
class ServerConfig:
    bind_endpoint: str = 'tcp://*:5555'
    backend: str = 'emu'
    device: int = 0
    module_cache_dir: Optional[str] = '~/.cache/rrto_ros/modules'
    module_cache_mem_bytes: int = 256 << 20    # content kept in memory (the disk keeps more)
    module_cache_disk_bytes: int = 8 << 30     # content kept on disk (fatbins, weights)
    max_sessions: int = 16
    # Sessions one robot (one CURVE client key) may hold at once: a robot's runaway or
    # compromised apps cannot take every place. Open servers know no keys: no per-robot cap.
    max_sessions_per_client: int = 8
    # Largest payload of one request. The interposer cuts copies at 64 MiB, replay inputs
    # too, and the client node uploads modules in chunks of at most this size: the default
    # fits every legitimate message. ZeroMQ drops a peer that sends a larger frame before
    # reading it (ZMQ_MAXMSGSIZE).
    max_message_bytes: int = 64 << 20
    max_module_bytes: int = 1 << 30     # largest module (fatbin) a session may load
    session_memory_bytes: int = 0       # device memory one session may allocate; 0: no cap
    session_timeout_s: float = 30.0
    # A session that has sent nothing but its hello (and heartbeats) is *unused*: it gives
    # its place to a new app when the server is full, and ends after this long.
    unused_session_timeout_s: float = 60.0
    replay_graphs: bool = True      # replay runs of launches as CUDA graphs (cuda backend)
    # 'curve': CURVE with an allow-list of robot keys (the nodes' and rrto-server's default);
    # 'open': no authentication, no encryption, logged as a warning at start.
    security: str = 'open'
    curve_secret_key_file: str = ''  # ZeroMQ certificate with the server's secret key
    curve_allowed_clients_dir: str = ''   # the allowed robots' public keys (*.key)
    lane_port: int = 0              # replay lane TCP port; 0: any free one; -1: no lane

    def validate(self) -> None:
        check_security(self.security)
        if self.backend not in ('cuda', 'emu'):
            raise ValueError(f"backend must be 'cuda' or 'emu', not {self.backend!r}")
        port = self.bind_endpoint.rpartition(':')[2]
        if port.isdigit() and not 0 < int(port) <= 65535:
            raise ServerStartError(f'cannot listen on {self.bind_endpoint}: port {port} is not '
                                   'a TCP port (1..65535)')
        if self.max_sessions < 1:
            raise ValueError(f'max_sessions must be >= 1, not {self.max_sessions}')
        if self.max_sessions_per_client < 1:
            raise ValueError('max_sessions_per_client must be >= 1, not '
                             f'{self.max_sessions_per_client}')
        if self.max_message_bytes < MIN_MESSAGE_BYTES:
            raise ValueError(f'max_message_bytes must be >= {MIN_MESSAGE_BYTES}, not '
                             f'{self.max_message_bytes}')
        if self.module_cache_mem_bytes < 0:
            raise ValueError('module_cache_mem_bytes must be >= 0')
        if self.module_cache_disk_bytes < 0:
            raise ValueError('module_cache_disk_bytes must be >= 0')
        if self.session_memory_bytes < 0:
            raise ValueError('session_memory_bytes must be >= 0 (0: no cap), not '
                             f'{self.session_memory_bytes}')
        if self.max_module_bytes < 1:
            raise ValueError(f'max_module_bytes must be >= 1, not {self.max_module_bytes}')
        for name in ('session_timeout_s', 'unused_session_timeout_s'):
            if getattr(self, name) <= 0:
                raise ValueError(f'{name} must be > 0, not {getattr(self, name)}')
        if isinstance(self.lane_port, bool) or not isinstance(self.lane_port, int) or \
                not -1 <= self.lane_port <= 65535:
            raise ValueError(f'lane_port must be -1 (no lane), 0 (any free port) or a TCP '
                             f'port, not {self.lane_port!r}')


@dataclass
class ServerStats:
    sessions_opened: int = 0
    sessions_closed: int = 0
    rejected: int = 0
    requests: int = 0
    bytes_in: int = 0
    per_session: Dict[str, dict] = field(default_factory=dict)


class Server:
    """Run with ``start()`` (background thread) or ``serve_forever()``; stop with ``stop()``."""

    def __init__(self, config: ServerConfig, context: Optional[zmq.Context] = None) -> None:
        config.validate()
        self.config = config
        keys, allow = self._security_setup(config)
        # ZAP answers for every CURVE socket of a context: a server with an allow-list has a
        # context of its own (unless given one), so servers in one process don't mix.
        self._own_ctx = context is None and allow is not None
        self.ctx = context or (zmq.Context() if allow is not None else zmq.Context.instance())
        self._auth = None
        self._allow = allow
        self.cache = ModuleCache(config.module_cache_dir, config.module_cache_mem_bytes,
                                 config.module_cache_disk_bytes)
        self.sessions: Dict[bytes, ServerSession] = {}
        self.stats = ServerStats()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._replies = f'inproc://rrto-replies-{id(self):x}'
        self._local = threading.local()
        self._router = self.ctx.socket(zmq.ROUTER)
        self._router.setsockopt(zmq.LINGER, 0)
        self._router.setsockopt(zmq.ROUTER_MANDATORY, 0)
        # A client that reconnects (a Wi-Fi drop) under its own routing id takes its route
        # back: its session goes on (the request numbers below resume it).
        self._router.setsockopt(zmq.ROUTER_HANDOVER, 1)
        # Checked by libzmq against each frame's length prefix, before the frame is read.
        self._router.setsockopt(zmq.MAXMSGSIZE, config.max_message_bytes + MAX_HEADER_BYTES)
        try:
            if keys is not None:
                self._auth = start_authenticator(self.ctx, allow)
                self._router.curve_server = True
                self._router.curve_publickey, self._router.curve_secretkey = keys
            self._router.bind(config.bind_endpoint)
        except zmq.ZMQError as e:
            self._router.close()
            no_auth = keys is not None and self._auth is None
            self._stop_security()
            if no_auth:
                raise ServerStartError(f'cannot start the CURVE authenticator: {e} (one server '
                                       'per ZeroMQ context)') from None
            raise ServerStartError(bind_error(config.bind_endpoint, e)) from None
        self.endpoint = self._router.getsockopt_string(zmq.LAST_ENDPOINT)
        self._pull = self.ctx.socket(zmq.PULL)
        self._pull.bind(self._replies)
        self._lane_listener = self._open_lane_listener()
        self.lane_port: Optional[int] = \
            self._lane_listener.getsockname()[1] if self._lane_listener else None
        self._lanes: Dict[bytes, ServerLane] = {}        # route -> lane
        self._lane_fds: Dict[int, ServerLane] = {}
        self._poller = zmq.Poller()
        self.ready = threading.Event()

    # ----------------------------------------------------------- lifecycle
    def start(self) -> 'Server':
        self._thread = threading.Thread(target=self.serve_forever, name='rrto-server',
                                        daemon=True)
        self._thread.start()
        self.ready.wait(5)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout)

    @staticmethod
    def _security_setup(config: ServerConfig):
        """(keys, allow-list) for security curve, (None, None) for open; logs the choice."""
        if config.security == 'open':
            log.warning(open_warning('server', config.bind_endpoint))
            return None, None
        keys = server_keys(config.curve_secret_key_file)
        warning = exposed(config.curve_secret_key_file)
        if warning:
            log.warning(warning)
        allow = AllowList(config.curve_allowed_clients_dir)
        if not allow.keys:
            log.warning('the allow-list %s is empty: no robot can connect yet. On the edge, '
                        'run `rrto-keys allow NAME.key` with the public key of each robot '
                        '(made there by `rrto-keys init-robot NAME`)', allow.dir)
        return keys, allow

    def _stop_security(self) -> None:
        if self._auth is not None:
            self._auth.stop()
            self._auth = None
        if self._own_ctx:   # in the background: a socket a stuck thread holds blocks term()
            self._own_ctx = False
            threading.Thread(target=self.ctx.term, name='rrto-ctx-term', daemon=True).start()

    def _open_lane_listener(self) -> Optional[socket.socket]:
        if self.config.lane_port < 0:
            return None
        if lane_seal.UNAVAILABLE:
            log.warning('replay lane off: the lane is encrypted with libsodium and %s; '
                        'replays go over ZeroMQ (about 1 ms slower per inference on an edge '
                        'link)', lane_seal.UNAVAILABLE)
            return None
        try:
            return lanes.listen(self.config.bind_endpoint, self.config.lane_port)
        except OSError as e:
            log.warning('replay lane off: cannot listen on port %d next to %s (%s); replays '
                        'go over ZeroMQ (slower). Set lane_port to a free port.',
                        self.config.lane_port, self.config.bind_endpoint, e)
            return None

    def serve_forever(self) -> None:
        poller = self._poller
        poller.register(self._router, zmq.POLLIN)
        poller.register(self._pull, zmq.POLLIN)
        listener = self._lane_listener.fileno() if self._lane_listener else -1
        if self._lane_listener is not None:
            poller.register(listener, zmq.POLLIN)
        log.info('rrto server listening on %s (backend %s, module cache %s, security %s, '
                 'replay lane %s)', self.endpoint, self.config.backend,
                 self.cache.dir or 'memory only', self.config.security,
                 f'on port {self.lane_port}' if self.lane_port else 'none')
        self.ready.set()
        last_reap = time.monotonic()
        try:
            while not self._stop.is_set():
                events = dict(poller.poll(200))
                for fd, ev in events.items():
                    if fd in self._lane_fds:
                        self._serve_lane(self._lane_fds[fd], ev)
                if listener in events:
                    self._accept_lane()
                if self._pull in events:
                    self._drain_replies()
                if self._router in events:
                    self._drain_requests()
                if time.monotonic() - last_reap > 1.0:
                    self._reap()
                    last_reap = time.monotonic()
        finally:
            for s in list(self.sessions.values()):
                s.close()
            for s in list(self.sessions.values()):
                s.closed.wait(5)
            self.sessions.clear()
            for lane in list(self._lanes.values()) + list(self._lane_fds.values()):
                lane.close()
            if self._lane_listener is not None:
                self._lane_listener.close()
            self._router.close(0)
            self._pull.close(0)
            self._stop_security()

    # ----------------------------------------------------------- replies from workers
    def _worker_send(self, ident: bytes, reply: Reply) -> None:
        """Called on a session's thread: pass the reply to the I/O thread."""
        sock = getattr(self._local, 'push', None)
        if sock is None:
            sock = self.ctx.socket(zmq.PUSH)
            sock.setsockopt(zmq.LINGER, 1000)
            sock.connect(self._replies)
            self._local.push = sock
        sock.send_multipart([ident] + self._encode(ident, reply), copy=False)

    def _session_ended(self, session: ServerSession) -> None:
        """Called on the session's thread as it ends."""
        sock = getattr(self._local, 'push', None)
        if sock is not None:
            sock.close()
            self._local.push = None
        self._forget(session, 'session thread ended')
        log.info('session %s (%s) ended: %s; %d requests executed, %d errors',
                 session.sid.hex()[:8], session.label, session.end_reason, session.executed,
                 session.errors)
        self.stats.per_session[session.sid.hex()] = session.summary()
        while len(self.stats.per_session) > 100:
            self.stats.per_session.pop(next(iter(self.stats.per_session)))

    def _drain_replies(self) -> None:
        while True:
            try:
                parts = self._pull.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            self._route(parts[0].bytes, parts[1:])

    def _reply(self, ident: bytes, reply: Reply) -> None:
        self._route(ident, self._encode(ident, reply))

    @staticmethod
    def _encode(ident: bytes, reply: Reply) -> List:
        """A reply in the framing of the connection it goes back on."""
        if not ident.startswith(lanes.LANE_IDENT):
            return encode_reply(reply)
        data = bytes(frame_bytes(reply.frames[0])) if reply.frames else b''
        return lane_wire.encode_reply(reply.seq, reply.err, reply.res, data, reply.message)

    def _route(self, ident: bytes, parts: List) -> None:
        """Send a reply back the way its request came: the session's lane or ZeroMQ."""
        if not ident.startswith(lanes.LANE_IDENT):
            self._router.send_multipart([ident] + parts, copy=False)
            return
        lane = self._lanes.get(ident)
        if lane is None:
            log.debug('reply for a closed replay lane dropped')
            return
        try:
            lane.send(parts)
        except lanes.LaneClosed as e:
            return self._drop_lane(lane, str(e))
        self._watch_lane(lane)

    # ----------------------------------------------------------- replay lanes
    def _accept_lane(self) -> None:
        while True:
            conn, peer = lanes.accept(self._lane_listener)
            if conn is None:
                return
            if len(self._lane_fds) >= 2 * self.config.max_sessions:
                log.warning('replay lane from %s refused: too many open lanes', peer)
                conn.close()
                continue
            lane = ServerLane(conn, self.config.max_message_bytes, peer)
            self._lane_fds[lane.fileno()] = lane
            self._poller.register(lane.fileno(), zmq.POLLIN)

    def _watch_lane(self, lane: ServerLane) -> None:
        self._poller.modify(lane.fileno(),
                            zmq.POLLIN | (zmq.POLLOUT if lane.wants_write else 0))

    def _serve_lane(self, lane: ServerLane, events: int) -> None:
        try:
            if events & zmq.POLLOUT:
                lane.flush()
                self._watch_lane(lane)
            if not events & zmq.POLLIN:
                return
            known, proven = lane.sid is not None, lane.proven
            msgs = lane.read()
            if not known and lane.sid is not None:
                session = self.sessions.get(lane.sid)
                if session is None or lane.ident in self._lanes:
                    raise lanes.LaneClosed('hello for an unknown session or one that has a '
                                           'lane already')
                lane.greet(session.lane_key)
                self._watch_lane(lane)
            if not proven and lane.proven:
                if lane.sid not in self.sessions or lane.ident in self._lanes:
                    raise lanes.LaneClosed('its session ended or has a lane already')
                self._lanes[lane.ident] = lane
                self._watch_lane(lane)
                log.info('session %s: replay lane open (from %s, authenticated)',
                         lane.sid.hex()[:8], lane.peer)
            for lreq in msgs:
                req = Request(lane.sid, lreq.seq, Op.REPLAY_RUN, [lreq.seq_id, lreq.start,
                              lreq.end], [lreq.payload] if lreq.payload else [], lreq.quiet)
                self._admit(lane.ident, req, lreq.payload.nbytes)
        except lanes.LaneClosed as e:
            self._drop_lane(lane, str(e))

    def _drop_lane(self, lane: ServerLane, why: str) -> None:
        if self._lane_fds.pop(lane.fileno(), None) is not None:
            self._poller.unregister(lane.fileno())
        if self._lanes.get(lane.ident) is lane:
            del self._lanes[lane.ident]
            log.info('session %s: replay lane closed (%s)', (lane.sid or b'').hex()[:8], why)
        elif lane.sid is not None:   # a hello for a session, not authenticated
            log.warning('replay lane from %s for session %s refused: %s', lane.peer,
                        lane.sid.hex()[:8], why)
        else:
            log.info('connection from %s to the replay lane port closed: %s', lane.peer, why)
        lane.close()

    # ----------------------------------------------------------- requests
    def _drain_requests(self) -> None:
        while True:
            try:
                parts = self._router.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            self._handle(parts)

    def _reject(self, ident: bytes, seq: int, why: str, code: int = ops.CUDA_ERROR_INVALID_VALUE
                ) -> None:
        self.stats.rejected += 1
        log.warning('rejected a request: %s', why)
        self._reply(ident, Reply(seq, code, message=why))

    def _handle(self, parts: List[zmq.Frame]) -> None:
        self._dispatch(parts[0].bytes, parts[1:])

    def _dispatch(self, ident: bytes, body: List) -> None:
        try:
            req = decode_request(body)
        except ProtocolError as e:
            self.stats.requests += 1
            return self._reject(ident, e.seq, f'malformed request: {e}')
        self._admit(ident, req, total_size(body[1:]), _client_key(body))

    def _admit(self, ident: bytes, req: Request, size: int, client: str = '') -> None:
        """Check a decoded request (``size``: its payload bytes) against its sender and pass
        it on (or answer it)."""
        self.stats.requests += 1
        self.stats.bytes_in += size
        too_big = size > self.config.max_message_bytes
        if too_big and (req.op in (PING, Op.HELLO) or req.sid not in self.sessions):
            return self._refuse_size(ident, req, size)
        if req.op == PING:
            session = self.sessions.get(req.sid)
            if session is not None and session.ident == ident:
                session.last_seen = time.monotonic()
            alive = session is not None and not session.closed.is_set()
            return self._reply(ident, Reply(req.seq, 0, [int(alive)]))
        via_lane = ident.startswith(lanes.LANE_IDENT)   # lanes carry only REPLAY_RUN
        if req.op == Op.HELLO:
            return self._open(ident, req, client)
        session = self.sessions.get(req.sid)
        if session is None:
            return self._reject(ident, req.seq, 'unknown session (the server restarted or the '
                                'session timed out); restart the app',
                                ops.CUDA_ERROR_DEVICES_UNAVAILABLE)
        if ident != (lanes.LANE_IDENT + session.sid if via_lane else session.ident):
            return self._reject(ident, req.seq, 'session belongs to another connection',
                                ops.CUDA_ERROR_INVALID_RESOURCE_HANDLE)
        if not via_lane and not self._in_order(ident, session, req):
            return
        if too_big:   # refused once its number is counted: the session goes on
            return self._refuse_size(ident, req, size)
        req.route = ident
        session.used = True
        if req.op == Op.BYE:
            self._forget(session, 'closed by the client')
        elif len(self.sessions) == 1:   # alone: the hot path may skip the thread hand-offs
            ran, reply = session.try_inline(req)
            if ran:
                if reply is not None:
                    session.remember(reply)
                    self._reply(ident, reply)
                return
        session.submit(req)

    def _refuse_size(self, ident: bytes, req: Request, size: int) -> None:
        self._reject(ident, req.seq, f'request with {size} bytes of payload exceeds the server '
                     f'limit max_message_bytes ({self.config.max_message_bytes})')

    def _in_order(self, ident: bytes, session: ServerSession, req: Request) -> bool:
        """Requests carry a number ``n``, one after the other per session, so that a client
        that lost its connection can send again what it is not sure arrived: a number seen
        before is answered from the session's recent replies (or dropped: a quiet call),
        one beyond the next asks the client to send from the next (once per gap)."""
        n = req.extra.pop('n', None)
        if not isinstance(n, int) or isinstance(n, bool):
            return True   # a client that does not number its requests: no resume
        if n < session.next_n:
            cached = session.recent_reply(req.seq)
            if cached is not None:
                self._reply(ident, cached)
            return False
        if n > session.next_n:
            if session.gap_told != session.next_n:
                session.gap_told = session.next_n
                log.info('session %s: requests from %d did not arrive (a lost connection); '
                         'asked the client to send them again', session.sid.hex()[:8],
                         session.next_n)
                self._reply(ident, Reply(0, 0, extra={'resend_from': session.next_n}))
            return False
        session.next_n += 1
        return True

    def _open(self, ident: bytes, req, client: str = '') -> None:
        if client:   # a robot's own sessions first make room for its new one
            mine = [s for s in self.sessions.values() if s.client == client]
            if len(mine) >= self.config.max_sessions_per_client:
                self._evict_unused(mine)
                mine = [s for s in self.sessions.values() if s.client == client]
            if len(mine) >= self.config.max_sessions_per_client:
                name = self._allow.keys.get(client.encode(), client[:8]) \
                    if self._allow is not None else client[:8]
                return self._reject(ident, req.seq, f'robot {name} already has '
                                    f'{len(mine)} sessions (max_sessions_per_client='
                                    f'{self.config.max_sessions_per_client}): end one of its '
                                    'apps, or raise the limit on the server',
                                    ops.CUDA_ERROR_DEVICES_UNAVAILABLE)
        if len(self.sessions) >= self.config.max_sessions:
            self._evict_unused()
        if len(self.sessions) >= self.config.max_sessions:
            return self._reject(ident, req.seq, f'the server already has max_sessions='
                                f'{self.config.max_sessions} sessions: start the app when '
                                'another one has ended, or raise max_sessions on the server',
                                ops.CUDA_ERROR_DEVICES_UNAVAILABLE)
        sid = secrets.token_bytes(16)
        label = f"{req.extra.get('app', '?')}[{req.extra.get('pid', '?')}]"
        cfg = self.config
        session = ServerSession(sid, ident, lambda: make_backend(cfg.backend, cfg.device),
                                self.cache, self._worker_send,
                                self._session_ended, label, cfg.replay_graphs,
                                self.lane_port, cfg.max_message_bytes, cfg.max_module_bytes,
                                cfg.session_memory_bytes,
                                lane_seal.new_key() if self.lane_port else None)
        session.client = client
        n = req.extra.pop('n', None)
        session.next_n = n + 1 if isinstance(n, int) else 0
        self.sessions[sid] = session
        self.stats.sessions_opened += 1
        log.info('session %s opened for %s', sid.hex()[:8], label)
        req.sid = sid
        session.submit(req)

    def _evict_unused(self, among: Optional[List[ServerSession]] = None) -> None:
        """Make room for a new app: end the longest-unused session (of ``among``, default
        all), if any is unused (a hello that never became CUDA work must not lock real apps
        out)."""
        unused = [s for s in (self.sessions.values() if among is None else among)
                  if not s.used]
        if unused:
            oldest = min(unused, key=lambda s: s.opened_at)
            self._forget(oldest, f'unused for {time.monotonic() - oldest.opened_at:.1f} s since '
                         'its hello, and a new app needed its place (max_sessions)')
            oldest.close()

    def _forget(self, session: ServerSession, why: str) -> None:
        """No request reaches the session from now on; it ends once its queue drained."""
        if self.sessions.pop(session.sid, None) is not None:
            self.stats.sessions_closed += 1
            session.end_reason = why

    def _reap(self) -> None:
        now = time.monotonic()
        for lane in list(self._lanes.values()):
            if lane.sid not in self.sessions:
                self._drop_lane(lane, 'session ended')
        for lane in list(self._lane_fds.values()):
            if not lane.proven and now - lane.opened_at > lanes.HELLO_TIMEOUT_S:
                self._drop_lane(lane, f'not authenticated within {lanes.HELLO_TIMEOUT_S:g} s')
        cfg = self.config
        for session in list(self.sessions.values()):
            if now - session.last_seen > cfg.session_timeout_s:
                self._forget(session, f'no message for {cfg.session_timeout_s:g} s')
                session.close()
            elif not session.used and now - session.opened_at > cfg.unused_session_timeout_s:
                self._forget(session, f'no CUDA work in the {cfg.unused_session_timeout_s:g} s '
                             'since its hello (unused_session_timeout_s)')
                session.close()

    def session_count(self) -> int:
        return len(self.sessions)


def default_cache_dir() -> str:
    return os.path.join(os.environ.get('XDG_CACHE_HOME', '~/.cache'), 'rrto_ros', 'modules')
