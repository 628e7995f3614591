# Copyright 2026 rrto_ros authors. Apache-2.0.
"""The server's allow-list of robot keys, enforced through ZeroMQ's ZAP.

A ``zmq.auth`` ThreadAuthenticator on the server's context asks ``AllowList.callback`` for
each CURVE handshake: a client key that is not a ``*.key`` certificate in the allow-list
directory is refused (ZAP status 400, which reaches the client as a handshake failure; the
client node turns that into a message naming ``rrto-keys allow``). The directory is read
again when it changes, so ``rrto-keys allow`` takes effect without a restart.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Dict, Optional, Tuple

import zmq
from zmq.auth.thread import ThreadAuthenticator

from rrto_ros.protocol import keys

log = logging.getLogger(__name__)
REFUSAL_LOG_INTERVAL_S = 60.0    # one warning per refused key per minute


class AllowListError(ValueError):
    """The allow-list directory cannot be used; the message says what to do."""


class AllowList:
    """The public keys (Z85) of the robots allowed in, from a directory of certificates."""

    def __init__(self, directory: str) -> None:
        self.dir = os.path.expanduser(directory)
        if not directory or not os.path.isdir(self.dir):
            raise AllowListError(
                f'the allow-list directory {self.dir or "(curve_allowed_clients_dir is empty)"} '
                'does not exist: `rrto-keys init-server` makes it, `rrto-keys allow NAME.key` '
                'adds a robot to it')
        loose = keys.writable_by_others(self.dir)
        if loose:
            raise AllowListError(f'the allow-list directory {loose}')
        self._lock = threading.Lock()
        self._stamp: Optional[Tuple] = None
        self._read = False
        self.keys: Dict[bytes, str] = {}      # Z85 public key -> robot name
        self._refused: Dict[bytes, float] = {}
        self.refusals = 0
        self.reload()

    def _signature(self) -> Tuple:
        """What identifies the directory's contents: each key file's name, inode, size and
        time (a directory's own time can miss two changes within one clock tick)."""
        out = []
        with os.scandir(self.dir) as entries:
            for e in entries:
                if e.name.endswith('.key'):
                    st = e.stat()
                    out.append((e.name, st.st_ino, st.st_size, st.st_mtime_ns))
        return tuple(sorted(out))

    def reload(self) -> None:
        """Read the directory again if it changed since the last read."""
        try:
            stamp: Optional[Tuple] = self._signature()
        except OSError as e:
            log.warning('allow-list %s unreadable (%s): no robot is let in', self.dir, e)
            stamp, found = None, {}
        else:
            if stamp == self._stamp:
                return
            found = {key.encode(): name for name, key in keys.allowed_keys(
                self.dir, lambda why: log.warning('allow-list: skipped %s', why))}
        with self._lock:
            changed = self._read and found != self.keys
            self._stamp, self.keys, self._read = stamp, found, True
        if changed:
            log.info('allow-list %s changed: %d robot(s) allowed', self.dir, len(found))

    def callback(self, domain: str, key: bytes) -> bool:
        """ZAP's question for one CURVE handshake (on the authenticator's thread)."""
        self.reload()
        with self._lock:
            name = self.keys.get(key)
        if name is not None:
            log.debug('CURVE key of robot %s accepted', name)
            return True
        self.refusals += 1
        now = time.monotonic()
        if now - self._refused.get(key, -REFUSAL_LOG_INTERVAL_S) >= REFUSAL_LOG_INTERVAL_S:
            self._refused[key] = now
            if len(self._refused) > 1000:
                self._refused.clear()
            log.warning('refused a client with CURVE key %s: not in the allow-list %s. If it is '
                        'one of your robots, copy its NAME.key here and run `rrto-keys allow '
                        'NAME.key`', key.decode(errors='replace'), self.dir)
        return False


def start_authenticator(ctx: zmq.Context, allow: AllowList) -> ThreadAuthenticator:
    """ZAP on ``ctx``: every CURVE server socket of the context admits only ``allow``."""
    auth = ThreadAuthenticator(ctx, log=logging.getLogger(__name__ + '.zap'))
    auth.start()
    auth.configure_curve_callback('*', credentials_provider=allow)
    return auth
