# Copyright 2026 rrto_ros authors. Apache-2.0.
"""Wi-Fi drops (issue 12 item 6): the client node's link to the server is cut (every TCP
connection reset, no new one accepted) for a while in the middle of an app's run; the app
carries on in the same server session and every output is right."""

from __future__ import annotations

import socket
import threading
import time
from typing import List

import pytest

from rrto_ros.stack import free_tcp_port
from rrto_ros.stack import LocalStack

N = 400   # cnn_infer inferences: a few seconds on emu, the outage falls inside


class CuttableLink:
    """A TCP forwarder to the server that can drop every connection and, for a while,
    refuse new ones (test scaffolding: a Wi-Fi outage)."""

    def __init__(self, target: str) -> None:
        host, port = target.rsplit('/', 1)[-1].rsplit(':', 1)
        self.target = (host, int(port))
        self.port = free_tcp_port()
        self.listener = socket.create_server(('127.0.0.1', self.port), reuse_port=False)
        self.down_until = 0.0
        self.cuts = 0
        self.accepted = 0
        self._conns: List[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f'tcp://127.0.0.1:{self.port}'

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if time.monotonic() < self.down_until:
                client.close()   # the link is down: the connection fails at once
                continue
            server = socket.create_connection(self.target)
            with self._lock:
                self._conns += [client, server]
                self.accepted += 1
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(1 << 16)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.close()
            except OSError:
                pass

    def outage(self, seconds: float) -> None:
        """Reset every connection now; refuse new ones for ``seconds``."""
        self.down_until = time.monotonic() + seconds
        with self._lock:
            conns, self._conns = self._conns, []
        for s in conns:
            try:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b'\x01\0\0\0\0\0\0\0')
                s.close()   # an RST, as a dropped Wi-Fi link's peer eventually sees
            except OSError:
                pass
        self.cuts += 1

    def close(self) -> None:
        self.listener.close()
        self.outage(0)


@pytest.mark.parametrize('outage_s', [0.5, 2.0])
def test_pipelined_app_survives_a_link_outage(examples_dir, backend, outage_s):
    exe = str(examples_dir / 'cnn_infer')
    with LocalStack(backend, 'pipelined') as stack:
        reference = stack.run([exe, str(N)], timeout=600)
    assert reference.returncode == 0
    links: List[CuttableLink] = []

    def route(endpoint: str) -> str:
        links.append(CuttableLink(endpoint))
        return links[0].endpoint

    with LocalStack(backend, 'pipelined', route=route, server_timeout_s=5.0) as stack:
        link = links[0]
        timer = threading.Timer(1.0, link.outage, args=(outage_s,))
        timer.start()
        r = stack.run([exe, str(N)], timeout=600)
        timer.join()
        s = stack.last_session()
        link.close()
    assert link.cuts == 2 and link.accepted >= 2, 'the outage did not happen mid-run'
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout == reference.stdout          # every output right, in one session
    assert s.get('state') != 'lost'
