# Copyright 2026 rrto_ros authors. Apache-2.0.
"""Server and client cores in one process, for the demo, the tests and the benchmarks.

The production layout runs them as two nodes on two machines; here both talk over real
ZeroMQ on loopback and a real UNIX socket, so the data path is the same.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from typing import Dict, List, Optional, Sequence

from rrto_ros.client.config import ClientConfig
from rrto_ros.client.core import ClientCore
from rrto_ros.client.launcher import interposed_env
from rrto_ros.server.server import Server, ServerConfig


class LocalStack:
    def __init__(self, backend: str = 'emu', mode: str = 'pipelined',
                 cache_dir: Optional[str] = None, server_timeout_s: float = 5.0,
                 connect_timeout_s: float = 3.0) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix='rrto-')
        self.server = Server(ServerConfig('tcp://127.0.0.1:*', backend,
                                          module_cache_dir=cache_dir))
        self.agent_socket = os.path.join(self._tmp.name, 'agent.sock')
        self.client = ClientCore(ClientConfig(self.server.endpoint, self.agent_socket, mode,
                                              connect_timeout_s, server_timeout_s))

    def __enter__(self) -> 'LocalStack':
        self.server.start()
        self.client.start()
        return self

    def __exit__(self, *exc) -> None:
        self.client.stop()
        self.server.stop()
        self._tmp.cleanup()

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

    def finished(self) -> List[dict]:
        return list(self.client.finished)
