# Copyright 2026 rrto_ros authors. Apache-2.0.
"""Server and client cores on one machine, for the demo, the tests and the benchmarks.

The production layout runs them as two nodes on two machines; here both talk over real
ZeroMQ on loopback and a real UNIX socket, so the data path is the same. The server runs
in this process (threads) or, with ``server_process=True``, as its own ``rrto-server``
process, as it would in production (no shared interpreter lock with the client).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
from typing import Callable, Dict, Optional, Sequence

import zmq

from rrto_ros.bench.link import LinkProcess
from rrto_ros.client.config import ClientConfig
from rrto_ros.client.core import ClientCore
from rrto_ros.client.launcher import interposed_env
from rrto_ros.client.uplink import ServerLost
from rrto_ros.client.uplink import Uplink
from rrto_ros.protocol import keys
from rrto_ros.protocol.curve import client_keys
from rrto_ros.protocol.messages import PING
from rrto_ros.server.server import Server
from rrto_ros.server.server import ServerConfig


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class LocalStack:
    def __init__(self, backend: str = 'emu', mode: str = 'pipelined',
                 cache_dir: Optional[str] = None, server_timeout_s: float = 5.0,
                 connect_timeout_s: float = 3.0, server_process: bool = False,
                 link: Optional[str] = None, server_options: Optional[dict] = None,
                 client_options: Optional[dict] = None, security: str = 'open',
                 route: Optional[Callable[[str], str]] = None) -> None:
        """``link``: a profile of rrto_ros.bench.link (``loopback``, ``edge``, ``cloud``):
        the client then reaches the server through that link emulator, run as its own
        process. None: a direct connection. ``security``: ``open`` (what most tests and
        the benchmarks measure) or ``curve`` (keys made in a temporary directory, the robot
        allowed); the replay lane is encrypted with either. ``route``: maps the server's
        endpoint to the one the client node uses (a test's proxy that cuts the link)."""
        # A known lane port, so that a link emulator can carry the lane too.
        lane_port = free_tcp_port()
        self._tmp = tempfile.TemporaryDirectory(prefix='rrto-')
        self.backend = backend
        self.server: Optional[Server] = None
        self.server_proc: Optional[subprocess.Popen] = None
        server_security: Dict[str, str] = {'security': security}
        client_security: Dict[str, str] = {'security': security}
        if security == 'curve':
            made = keys.one_machine(os.path.join(self._tmp.name, 'keys'))
            server_security = keys.server_parameters(made)
            client_security = keys.client_parameters(made)
        self._client_security = client_security
        if server_process:
            endpoint = f'tcp://127.0.0.1:{free_tcp_port()}'
            self._server_cmd = [sys.executable, '-m', 'rrto_ros.cli.server_main', '--bind',
                                endpoint, '--backend', backend, '--cache-dir', cache_dir or '',
                                '--lane-port', str(lane_port)]
            for name, value in server_security.items():
                self._server_cmd += [f'--{name.replace("_", "-")}', value]
        else:
            self.server = Server(ServerConfig('tcp://127.0.0.1:*', backend,
                                              module_cache_dir=cache_dir,
                                              lane_port=lane_port,
                                              **{**server_security, **(server_options or {})}))
            endpoint = self.server.endpoint
        self.endpoint = endpoint
        self.link: Optional[LinkProcess] = None
        client_endpoint = endpoint
        client_options = {**client_security, **(client_options or {})}
        if link is not None:
            lane_via = free_tcp_port()
            self.link = LinkProcess(link, endpoint, free_tcp_port(),
                                    also=[(f'127.0.0.1:{lane_port}', lane_via)])
            client_endpoint = self.link.endpoint
            client_options.setdefault('lane_endpoint', f'tcp://127.0.0.1:{lane_via}')
        if route is not None:   # e.g. a test's proxy that cuts the link
            client_endpoint = route(client_endpoint)
        self.agent_socket = os.path.join(self._tmp.name, 'agent.sock')
        self.client = ClientCore(ClientConfig(client_endpoint, self.agent_socket, mode,
                                              connect_timeout_s, server_timeout_s,
                                              **client_options))

    def __enter__(self) -> 'LocalStack':
        if self.link is not None:
            # First: it needs nothing else up, and a child of its own ends with its parent.
            self.link.start()
        if self.server is not None:
            self.server.start()
        else:
            self.server_proc = subprocess.Popen(self._server_cmd)
            self._wait_for_server(30.0)
        self.client.start()
        return self

    def __exit__(self, *exc) -> None:
        self.client.stop()
        if self.link is not None:
            self.link.stop()
        if self.server is not None:
            self.server.stop()
        if self.server_proc is not None and self.server_proc.poll() is None:
            self.server_proc.terminate()
            self.server_proc.wait(10)
        self._tmp.cleanup()

    def _wait_for_server(self, timeout: float) -> None:
        c = self._client_security
        curve = client_keys(c['curve_secret_key_file'], c['curve_server_key_file']) \
            if c['security'] == 'curve' else None
        link = Uplink(zmq.Context.instance(), self.endpoint, server_timeout_s=timeout,
                      curve=curve)
        try:
            link.wait(link.send(PING, []))
        except ServerLost:
            raise RuntimeError(f'rrto-server did not start on {self.endpoint}') from None
        finally:
            link.close()

    def kill_server(self) -> None:
        """Simulate the edge machine dying (server_process=True only)."""
        assert self.server_proc is not None, 'kill_server needs server_process=True'
        self.server_proc.kill()
        self.server_proc.wait(10)

    def env(self, extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
        env = interposed_env(self.agent_socket)
        env.update(extra or {})
        return env

    def run(self, cmd: Sequence[str], timeout: float = 120.0,
            extra_env: Optional[Dict[str, str]] = None) -> subprocess.CompletedProcess:
        """Run an unmodified program with its CUDA work sent through this stack; returns
        once the program's session has ended too, so its statistics are final."""
        r = subprocess.run(list(cmd), env=self.env(extra_env), capture_output=True,
                           text=True, timeout=timeout)
        self.client.wait_idle(5.0)
        return r

    def last_session(self) -> dict:
        return self.client.finished[-1] if self.client.finished else {}
