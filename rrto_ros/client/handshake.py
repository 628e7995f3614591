# Copyright 2026 rrto_ros authors. Apache-2.0.
"""Why the ZeroMQ handshake with the server fails, in one line naming the fix.

A server that refuses a client sends it nothing: without this, the app would only see a
timeout. The client's DEALER socket is watched with a ZeroMQ socket monitor, whose events
(libzmq >= 4.3, ZMTP 3.1) say what happened:

- ``HANDSHAKE_FAILED_AUTH`` with ZAP status 400: the server's allow-list does not hold this
  robot's key;
- ``HANDSHAKE_FAILED_PROTOCOL`` with a mechanism mismatch: one side runs CURVE, the other
  open;
- ``HANDSHAKE_FAILED_NO_DETAIL``: the server dropped the connection in the middle of the
  CURVE handshake, which is what a server public key that is not the server's gives (the
  server cannot read the client's hello); it is only the likely reason, so it is given
  when the wait for an answer times out, not at once.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Optional

import zmq
from zmq.utils.monitor import recv_monitor_message

from rrto_ros.protocol import keys

EVENTS = (zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_HANDSHAKE_FAILED_AUTH |
          zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL)
MECHANISM_MISMATCH = 0x11000002    # ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH
ZAP_DENIED = 400


def allow_fix(secret_file: str) -> str:
    """How to get this robot into the edge's allow-list, from its secret key file."""
    path = os.path.expanduser(secret_file)
    name = keys.metadata(path).get('name', '')
    public = os.path.join(os.path.dirname(path), f'{name}.key')
    if name and os.path.isfile(public):
        return (f'copy {public} to the edge and run `rrto-keys allow {name}.key` there')
    return (f'on the edge, run `rrto-keys allow FILE` with the public key file of '
            f'{secret_file}')


class HandshakeWatch:
    """The handshake events of one client socket, turned into a reason when it fails."""

    def __init__(self, sock: zmq.Socket, endpoint: str,
                 curve: Optional[Dict[str, Any]] = None) -> None:
        self.endpoint = endpoint
        self.curve = curve
        self.done = False               # a handshake has succeeded (replies can come)
        self.connects = 0               # handshakes that succeeded (2 and more: reconnects)
        self.verdict: Optional[str] = None   # why the latest handshake failed, if certain
        self.silent_failures = 0        # handshakes the server cut short without a reason
        self._monitor: Optional[zmq.Socket] = sock.get_monitor_socket(EVENTS)
        self._sock = sock

    def close(self) -> None:
        if self._monitor is not None:
            try:
                self._sock.disable_monitor()
            except zmq.ZMQError:
                pass
            self._monitor.close(0)
            self._monitor = None

    def check(self) -> Optional[str]:
        """Take in the events so far; the reason the handshake fails, when it is certain."""
        while self._monitor is not None and self._monitor.poll(0):
            event = recv_monitor_message(self._monitor)
            kind, value = event['event'], event['value']
            if kind == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self.done, self.verdict, self.silent_failures = True, None, 0
                self.connects += 1
            elif kind == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
                self.verdict = self._refused(value)
            elif kind == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL:
                self.verdict = self._protocol(value)
            elif kind == zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL:
                self.silent_failures += 1
        return self.verdict

    def explain_silence(self) -> Optional[str]:
        """Why no answer came, if the handshake events tell (at a timeout)."""
        verdict = self.check()
        if verdict or self.done or not self.silent_failures:
            return verdict
        if self.curve:
            server_file = self.curve.get('server_file') or 'curve_server_key_file'
            return (f'the CURVE handshake with the rrto server at {self.endpoint} fails: the '
                    f"server public key in {server_file} is not that server's; check "
                    "curve_server_key_file (a copy of the edge's server.key)")
        return (f'the rrto server at {self.endpoint} cuts the ZeroMQ handshake short: check '
                'that it is an rrto server and that both sides run the same security')

    def _refused(self, status: int) -> str:
        if status == ZAP_DENIED and self.curve:
            return (f"the rrto server at {self.endpoint} refused this robot's key (not in its "
                    f"allow-list): {allow_fix(self.curve.get('secret_file', ''))}")
        return (f'the rrto server at {self.endpoint} refused the connection (ZAP status '
                f'{status}); its log says why')

    def _protocol(self, code: int) -> str:
        if code == MECHANISM_MISMATCH and self.curve:
            return (f'the rrto server at {self.endpoint} runs without CURVE (security open) '
                    'and this client with it (security curve): set the same security on both '
                    'sides (on the edge: `rrto-keys init-server`, security curve)')
        if code == MECHANISM_MISMATCH:
            return (f'the rrto server at {self.endpoint} requires CURVE (security curve) and '
                    'this client runs open: set security curve with curve_secret_key_file '
                    "(`rrto-keys init-robot NAME`) and curve_server_key_file (the edge's "
                    'server.key)')
        return (f'the ZeroMQ handshake with {self.endpoint} failed (protocol error '
                f'0x{code:x}): is it an rrto server?')
