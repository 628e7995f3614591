# Copyright 2026 rrto_ros authors. Apache-2.0.
"""The rrto client core (ROS-free): listens for interposers on a local socket and runs one
session per app process. The client node and ``rrto-client`` wrap it."""

from __future__ import annotations

import collections
import logging
import os
import socket
import threading
import time
from typing import Deque, Dict, List, Optional, Tuple

import zmq

from rrto_ros.client import agent_socket
from rrto_ros.client.compression import BandwidthEstimate
from rrto_ros.client.config import check_mode
from rrto_ros.client.config import check_record_window
from rrto_ros.client.config import ClientConfig
from rrto_ros.client.session import ClientSession
from rrto_ros.client.uploads import ContentIndex
from rrto_ros.protocol.curve import client_keys
from rrto_ros.protocol.curve import open_warning
from rrto_ros.protocol.keys import exposed

log = logging.getLogger(__name__)
FINISHED_KEPT = 100


class ClientCore:
    def __init__(self, config: ClientConfig, context: Optional[zmq.Context] = None) -> None:
        config.validate()
        self.config = config
        self.curve = client_keys(config.curve_secret_key_file, config.curve_server_key_file) \
            if config.security == 'curve' else None
        self.ctx = context or zmq.Context.instance()
        self.sessions: Dict[int, ClientSession] = {}
        # The last sessions' summaries (the diagnostics show them); older ones are dropped
        # so that a node serving apps for days keeps a flat memory.
        self.finished: Deque[dict] = collections.deque(maxlen=FINISHED_KEPT)
        self.finished_total = 0
        # Shared by the sessions: what the server stored for earlier runs of each app, and
        # the link's measured bandwidth.
        self.content = ContentIndex()
        self.bandwidth = BandwidthEstimate()
        self._lock = threading.Lock()
        self._listener: Optional[socket.socket] = None
        self._thread: Optional[threading.Thread] = None
        self._stop = threading.Event()

    def start(self) -> 'ClientCore':
        path = self.config.agent_socket
        agent_socket.prepare_dir(path)
        _remove_stale_socket(path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(path)
        os.chmod(path, 0o600)
        sock.listen(64)
        sock.settimeout(0.2)
        self._listener = sock
        self._thread = threading.Thread(target=self._accept_loop, name='rrto-agent',
                                        daemon=True)
        self._thread.start()
        log.info('rrto client listening on %s, forwarding to %s in mode %s (security %s)',
                 path, self.config.server_endpoint, self.config.mode, self.config.security)
        why = exposed(self.config.curve_secret_key_file) if self.curve else \
            open_warning('client', self.config.server_endpoint)
        if why:
            log.warning(why)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout)
        with self._lock:
            sessions = list(self.sessions.values())
        for s in sessions:
            try:
                s.conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in [s.thread for s in sessions]:
            t.join(timeout)
        if self._listener:
            self._listener.close()
            try:
                os.unlink(self.config.agent_socket)
            except FileNotFoundError:
                pass

    def set_mode(self, mode: str) -> None:
        """Change the forwarding mode; running sessions use it from their next call."""
        self.config.mode = check_mode(mode)

    def set_record_window(self, n: int) -> None:
        """Repetitions to see before replaying; running sessions use it at their next
        search."""
        self.config.record_window = check_record_window(n)
        with self._lock:
            for s in self.sessions.values():
                s.replay.set_record_window(n)

    def restart_recording(self) -> int:
        """Drop every session's recorded sequence so that it records again; returns the
        number of sessions affected."""
        with self._lock:
            sessions = list(self.sessions.values())
        for s in sessions:
            s.request_restart()
        return len(sessions)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no session is running; True if that happened within timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if not self.sessions:
                    return True
            time.sleep(0.01)
        return False

    def finished_since(self, seen: int) -> Tuple[List[dict], int]:
        """Summaries of the sessions that ended after the first ``seen`` (those still
        kept), and the number ended so far."""
        with self._lock:
            new = min(self.finished_total - seen, len(self.finished))
            return list(self.finished)[len(self.finished) - new:], self.finished_total

    def snapshot(self) -> List[dict]:
        with self._lock:
            return [s.snapshot() for s in self.sessions.values()]

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            refusal = agent_socket.peer_refusal(agent_socket.peer_uid(conn))
            if refusal:
                log.warning("%s (its calls would run as this node's user)", refusal)
                conn.close()
                continue
            conn.settimeout(None)
            session = ClientSession(conn, self.ctx, self.config, self._ended, self.curve,
                                    self.content, self.bandwidth)
            session.thread = threading.Thread(target=session.run, name='rrto-client-session',
                                              daemon=True)
            with self._lock:
                self.sessions[id(session)] = session
            session.thread.start()

    def _ended(self, session: ClientSession) -> None:
        with self._lock:
            self.sessions.pop(id(session), None)
            if session.stats.agent_calls == 0:   # a probe of the socket, not an app
                log.debug('a connection closed before saying hello')
                return
            self.finished.append(session.snapshot())
            self.finished_total += 1
        log.info('session %s ended: %d messages from the app, %d requests to the server '
                 '(%d on the replay lane), %d blocking round trips', session.label,
                 session.stats.agent_calls, session.stats.forwarded_calls,
                 session.stats.lane_requests, session.stats.blocking_round_trips)


def _remove_stale_socket(path: str) -> None:
    """Remove a socket file left by a dead client; refuse to steal a live one."""
    if not os.path.exists(path):
        return
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError:
        os.unlink(path)
        return
    finally:
        probe.close()
    raise RuntimeError(f'another rrto client already listens on {path}; stop it or choose '
                       'another agent_socket')
