# Copyright 2026 rrto_ros authors. Apache-2.0.
"""The robot side as a ROS 2 node: ``ClientCore`` with ROS parameters, /diagnostics and a
``~/restart_recording`` service.

Run: ``ros2 run rrto_ros rrto_client_node --ros-args --params-file config/robot.yaml``
(or ``python -m rrto_ros.nodes.client_node ...`` without a ROS workspace). ``mode`` and
``record_window`` can be changed while apps run (``ros2 param set /rrto_client
record_window 5``); invalid values are refused with a reason.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from typing import Any, Dict, List, Optional, Tuple

from rcl_interfaces.msg import SetParametersResult
from rclpy.node import Node
from rclpy.parameter import Parameter
from std_srvs.srv import Trigger

from rrto_ros.client.config import ClientConfig
from rrto_ros.client.core import ClientCore
from rrto_ros.nodes import status
from rrto_ros.nodes.common import (declare_parameters, DiagnosticsPublisher, log,
                                   NodeStartError, route_core_logging, run,
                                   starting, status_name_prefix, unroute_core_logging)
from rrto_ros.nodes.params import CLIENT_NODE, CLIENT_PARAMS
from rrto_ros.protocol.curve import client_keys, CurveError

CORE_LOGGERS = ('rrto_ros.client', 'rrto_ros.record')   # routed to this node's logger
FINISHED_LINGER_S = 10.0   # ended sessions stay on /diagnostics this long (final stats)


class ClientNode(Node):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(CLIENT_NODE, **kwargs)
        self._log_handler: Optional[logging.Handler] = route_core_logging(self, CORE_LOGGERS)
        self._destroy_lock = threading.Lock()
        self.core: Optional[ClientCore] = None
        self._finished_seen = 0
        self._finished: List[Tuple[float, dict]] = []
        with starting(self):
            declare_parameters(self, CLIENT_PARAMS)
            config = self._config_from_parameters()
            self.add_on_set_parameters_callback(self._on_set_parameters)
            self.create_service(Trigger, '~/restart_recording', self._restart_recording)
            self._diagnostics = DiagnosticsPublisher(
                self, self.get_parameter('diagnostics_period_s').value, self.diagnostics)
            # Last: once the agent socket exists, apps connect, so all else must be ready.
            self.core = ClientCore(config).start()
            log(self, logging.INFO,
                f'ready: apps started with LD_PRELOAD=librrto_cuda.so and '
                f'RRTO_AGENT_SOCKET={config.agent_socket} run their CUDA work on '
                f'{config.server_endpoint} (mode {config.mode}, record_window '
                f'{self.get_parameter("record_window").value}, security {config.security})')

    def _config_from_parameters(self) -> ClientConfig:
        p: Dict[str, Any] = {s.name: self.get_parameter(s.name).value for s in CLIENT_PARAMS}
        fields = {f.name for f in dataclasses.fields(ClientConfig)}
        config = ClientConfig(**{k: v for k, v in p.items() if k in fields})
        config.validate()
        try:   # key files are read here so that a wrong path stops the node at start-up
            if config.security == 'curve':
                client_keys(config.curve_secret_key_file, config.curve_server_key_file)
        except CurveError as e:
            raise NodeStartError(str(e)) from None
        return config

    # ----------------------------------------------------------- run-time parameters
    def _on_set_parameters(self, params: List[Parameter]) -> SetParametersResult:
        """Apply mode and record_window to the core (running sessions included); refuse
        what the core refuses, undoing what this call already applied."""
        assert self.core is not None
        undo: List[Tuple[str, Any]] = []
        for p in params:
            try:
                if p.name == 'mode':
                    undo.append(('mode', self.core.config.mode))
                    self.core.set_mode(p.value)
                elif p.name == 'record_window':
                    undo.append(('record_window', getattr(self.core.config, 'record_window',
                                                          None)))
                    self._set_record_window(p.value)
            except ValueError as e:
                undo.pop()
                for name, old in reversed(undo):
                    self._apply(name, old)
                reason = f'{p.name} := {p.value!r} refused: {e}'
                self.get_logger().warning(reason)
                return SetParametersResult(successful=False, reason=reason)
        for p in params:
            if p.name in ('mode', 'record_window'):
                self.get_logger().info(f'{p.name} is now {p.value!r} for new and '
                                       f'{len(self.core.sessions)} running session(s)')
        return SetParametersResult(successful=True)

    def _apply(self, name: str, value: Any) -> None:
        assert self.core is not None
        if name == 'mode':
            self.core.set_mode(value)
        elif value is not None:
            self._set_record_window(value)

    def _set_record_window(self, n: int) -> None:
        assert self.core is not None
        setter = getattr(self.core, 'set_record_window', None)
        if setter is not None:
            setter(n)
            return
        if n < 1:                                # until the core validates it
            raise ValueError(f'record_window must be >= 1, not {n}')
        self.core.config.record_window = n       # type: ignore[attr-defined]

    # ----------------------------------------------------------- service
    def _restart_recording(self, request: Trigger.Request,
                           response: Trigger.Response) -> Trigger.Response:
        assert self.core is not None
        restart = getattr(self.core, 'restart_recording', None)
        if restart is None:
            response.success = False
            response.message = ('this rrto_ros client core cannot restart recording (no '
                                'ClientCore.restart_recording); update rrto_ros')
        else:
            try:
                count = restart()
            except Exception as e:  # report any core failure to the caller, keep serving
                response.success = False
                response.message = f'restarting the recording failed: {e}'
            else:
                if not isinstance(count, int):
                    count = len(self.core.sessions)
                response.success = True
                response.message = (
                    f'dropped the recorded sequences of {count} running session(s); they '
                    'record again and replay after record_window='
                    f'{getattr(self.core.config, "record_window", "?")} repetitions')
        log(self, logging.INFO if response.success else logging.WARNING,
            f'restart_recording: {response.message}')
        return response

    # ----------------------------------------------------------- diagnostics
    def diagnostics(self) -> List[status.StatusRecord]:
        assert self.core is not None
        now = time.monotonic()
        finished, self._finished_seen = self.core.finished_since(self._finished_seen)
        for snap in finished:
            if snap.get('agent_calls', 0):      # skip connections that never said hello
                self._finished.append((now, snap))
        self._finished = [(t, s) for t, s in self._finished if now - t < FINISHED_LINGER_S]
        config = self.core.config
        window = getattr(config, 'record_window', '')
        prefix = status_name_prefix(self)
        live = self.core.snapshot()
        records = [status.client_node_status(prefix, config, len(live), len(finished))]
        for snap in live + [s for _, s in self._finished]:
            try:
                records.append(status.client_session_status(prefix, snap, window,
                                                            config.server_endpoint))
            except Exception as e:  # one odd snapshot must not hide the others
                records.append(status.broken_session_status(prefix, snap, e))
        return records

    # ----------------------------------------------------------- shutdown
    def destroy_node(self) -> None:
        """Close every app session (the server frees its GPU state), then the node.
        Safe to call twice and from two threads (rclpy's shutdown may call it too)."""
        with self._destroy_lock:
            if self.core is not None:
                log(self, logging.INFO, f'stopping: closing {len(self.core.sessions)} app '
                    'session(s) on the server')
                self.core.stop()
                self.core = None
            if self._log_handler is not None:
                unroute_core_logging(self._log_handler, CORE_LOGGERS)
                self._log_handler = None
            super().destroy_node()


def main(args: Optional[List[str]] = None) -> int:
    return run(ClientNode, args)


if __name__ == '__main__':
    raise SystemExit(main())
