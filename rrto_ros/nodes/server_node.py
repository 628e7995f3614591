# Copyright 2026 rrto_ros authors. Apache-2.0.
"""The edge side as a ROS 2 node: the rrto ``Server`` with ROS parameters and /diagnostics.

Run: ``ros2 run rrto_ros rrto_server_node --ros-args --params-file config/edge.yaml``
(or ``python -m rrto_ros.nodes.server_node ...`` without a ROS workspace). The backend
``auto`` (the default) takes ``cuda`` when cuda-python sees a usable GPU, else ``emu``, and
logs why; ``cuda`` without a usable GPU stops the node at start with the reason.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from typing import Any, Dict, List, Optional

from rcl_interfaces.msg import SetParametersResult
from rclpy.node import Node
from rclpy.parameter import Parameter

from rrto_ros.nodes import status
from rrto_ros.nodes.common import (declare_parameters, DiagnosticsPublisher, log,
                                   NodeStartError, route_core_logging, run,
                                   starting, status_name_prefix, unroute_core_logging)
from rrto_ros.nodes.params import SERVER_NODE, SERVER_PARAMS
from rrto_ros.protocol.curve import CurveError, server_keys
from rrto_ros.server.backend import BackendUnavailable, choose_backend
from rrto_ros.server.server import Server, ServerConfig, ServerStartError

CORE_LOGGERS = ('rrto_ros.server',)   # routed to this node's logger
# applied to the running server
RUNTIME_PARAMS = ('max_sessions', 'max_sessions_per_client', 'session_timeout_s',
                  'unused_session_timeout_s')


class ServerNode(Node):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(SERVER_NODE, **kwargs)
        self._log_handler: Optional[logging.Handler] = route_core_logging(self, CORE_LOGGERS)
        self._destroy_lock = threading.Lock()
        self.server: Optional[Server] = None
        with starting(self):
            declare_parameters(self, SERVER_PARAMS)
            config = self._config_from_parameters()
            self.add_on_set_parameters_callback(self._on_set_parameters)
            self._diagnostics = DiagnosticsPublisher(
                self, self.get_parameter('diagnostics_period_s').value, self.diagnostics)
            try:
                self.server = Server(config).start()   # last: clients may connect from now on
            except ServerStartError as e:
                raise NodeStartError(str(e)) from None
            log(self, logging.INFO,
                f'ready: serving rrto clients on {self.server.endpoint} with the '
                f'{config.backend} backend (max_sessions {config.max_sessions}, security '
                f'{config.security})')

    def _config_from_parameters(self) -> ServerConfig:
        p: Dict[str, Any] = {s.name: self.get_parameter(s.name).value for s in SERVER_PARAMS}
        try:
            p['backend'], why = choose_backend(p['backend'], p['device'])
        except BackendUnavailable as e:
            raise NodeStartError(str(e)) from None
        log(self, logging.INFO, f'backend {p["backend"]}: {why}')
        fields = {f.name for f in dataclasses.fields(ServerConfig)}
        config = ServerConfig(**{k: v for k, v in p.items() if k in fields})
        config.module_cache_dir = p['module_cache_dir'] or None
        config.validate()
        try:   # key files are read here so that a wrong path stops the node at start-up
            if config.security == 'curve':
                server_keys(config.curve_secret_key_file)
        except CurveError as e:
            raise NodeStartError(str(e)) from None
        return config

    # ----------------------------------------------------------- run-time parameters
    def _on_set_parameters(self, params: List[Parameter]) -> SetParametersResult:
        assert self.server is not None
        changes = {p.name: p.value for p in params if p.name in RUNTIME_PARAMS}
        if not changes:
            return SetParametersResult(successful=True)
        try:
            dataclasses.replace(self.server.config, **changes).validate()
        except ValueError as e:
            reason = f'refused: {e}'
            self.get_logger().warning(reason)
            return SetParametersResult(successful=False, reason=reason)
        for name, value in changes.items():
            setattr(self.server.config, name, value)
            self.get_logger().info(f'{name} is now {value!r}')
        return SetParametersResult(successful=True)

    # ----------------------------------------------------------- diagnostics
    def diagnostics(self) -> List[status.StatusRecord]:
        assert self.server is not None
        prefix = status_name_prefix(self)
        backend = self.server.config.backend
        sessions = list(self.server.sessions.values())
        now = time.monotonic()
        records = [status.server_node_status(prefix, backend, self.server.endpoint,
                                             len(sessions), self.server.stats)]
        records += [status.server_session_status(prefix, s, now, backend) for s in sessions]
        return records

    # ----------------------------------------------------------- shutdown
    def destroy_node(self) -> None:
        """Close the open sessions (their GPU state is freed), then the node. Safe to call
        twice and from two threads (rclpy's shutdown may call it too)."""
        with self._destroy_lock:
            if self.server is not None:
                n = self.server.session_count()
                log(self, logging.INFO, f'stopping: closing {n} open session(s)' if n else
                    'stopping: no open sessions')
                self.server.stop()
                self.server = None
            if self._log_handler is not None:
                unroute_core_logging(self._log_handler, CORE_LOGGERS)
                self._log_handler = None
            super().destroy_node()


def main(args: Optional[List[str]] = None) -> int:
    return run(ServerNode, args)


if __name__ == '__main__':
    raise SystemExit(main())
