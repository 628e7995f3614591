# Copyright 2026 rrto_ros authors. Apache-2.0.
"""The parameters each node declares, as plain data (no rclpy).

The nodes declare exactly these (with a ParameterDescriptor built from each entry); the
launch plan and the tests use the same tables to check that config/*.yaml and the launch
files name only parameters that exist. Defaults come from the cores' config dataclasses,
so a node started without a params file behaves like the ROS-free CLI.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional, Tuple, Union

from rrto_ros.client.config import ClientConfig, MODES
from rrto_ros.server.server import ServerConfig

CLIENT_NODE = 'rrto_client'
SERVER_NODE = 'rrto_server'

Default = Union[str, int, float, bool, Callable[[], Any]]


@dataclass(frozen=True)
class ParamSpec:
    name: str
    default: Default               # a value, or a function computing it at declare time
    description: str
    read_only: bool = False        # True where a change needs a restart of the node
    int_range: Optional[Tuple[int, int]] = None
    float_range: Optional[Tuple[float, float]] = None
    constraints: str = ''

    def default_value(self) -> Any:
        return self.default() if callable(self.default) else self.default


_RESTART = ' Read-only: set it in the params file or launch arguments, then restart the node.'
_CLIENT = ClientConfig()
_SERVER = ServerConfig()


def _modes_text() -> str:
    return 'one of ' + ', '.join(MODES)


CLIENT_PARAMS: Tuple[ParamSpec, ...] = (
    ParamSpec('server_endpoint', _CLIENT.server_endpoint,
              'ZeroMQ endpoint of the rrto server node on the edge GPU machine, e.g. '
              'tcp://edge-host:5555.' + _RESTART, read_only=True,
              constraints='tcp://HOST:PORT, ipc://PATH'),
    ParamSpec('agent_socket', _CLIENT.agent_socket,
              'UNIX socket where interposed apps (LD_PRELOAD=librrto_cuda.so) reach this node; '
              'apps find it through RRTO_AGENT_SOCKET. Empty: $XDG_RUNTIME_DIR/rrto/agent.sock, '
              "else /tmp/rrto-<uid>/agent.sock (the interposer's default too). Its directory "
              "must be private (mode 0700, this user's); only processes of this user or root "
              'are served.' + _RESTART, read_only=True),
    ParamSpec('mode', _CLIENT.mode,
              'How CUDA calls are forwarded: rpc (every call waits), pipelined (calls whose '
              'result the app does not need are not waited for), replay (record the '
              'inference sequence, then one blocking round trip per inference). Changes '
              'take effect for running sessions at their next call.',
              constraints=_modes_text()),
    ParamSpec('record_window', getattr(_CLIENT, 'record_window', 3),
              'Consecutive repetitions of an inference sequence required before it is '
              'replayed. Changes take effect for running sessions.',
              int_range=(1, 1000), constraints='>= 1'),
    ParamSpec('connect_timeout_s', _CLIENT.connect_timeout_s,
              'Seconds to wait for the server to accept a new session.' + _RESTART,
              read_only=True, float_range=(0.01, 600.0)),
    ParamSpec('server_timeout_s', _CLIENT.server_timeout_s,
              'Seconds without an answer after which the server counts as lost and the '
              "app's CUDA calls fail instead of hanging." + _RESTART,
              read_only=True, float_range=(0.01, 3600.0)),
    ParamSpec('heartbeat_s', _CLIENT.heartbeat_s,
              'Seconds between liveness probes while an app is idle.' + _RESTART,
              read_only=True, float_range=(0.01, 600.0)),
    ParamSpec('diagnostics_period_s', 1.0,
              'Seconds between DiagnosticArray messages on /diagnostics.' + _RESTART,
              read_only=True, float_range=(0.05, 60.0)),
    ParamSpec('curve_secret_key_file', '',
              "This client's CURVE certificate (zmq.auth secret key file); empty: no "
              'encryption.' + _RESTART, read_only=True),
    ParamSpec('curve_server_key_file', '',
              "The server's CURVE public key file; needed with curve_secret_key_file."
              + _RESTART, read_only=True),
    ParamSpec('replay_lane', _CLIENT.replay_lane,
              "Let apps send each replayed inference's request on the server's replay lane "
              '(a plain TCP connection from the app straight to the server, ~0.6 ms faster '
              'per inference at the edge) when the server offers one; otherwise replays go '
              'through this node. The lane is never encrypted: servers with CURVE offer none.'
              + _RESTART, read_only=True),
    ParamSpec('lane_endpoint', _CLIENT.lane_endpoint,
              "Where apps reach the server's replay lane, tcp://HOST:PORT; empty: the host "
              'of server_endpoint and the port the server announces (set it behind NAT or a '
              'port forward).' + _RESTART, read_only=True, constraints="'' or tcp://HOST:PORT"),
)


def _default_backend() -> str:
    from rrto_ros.server.server import default_backend
    return default_backend()


SERVER_PARAMS: Tuple[ParamSpec, ...] = (
    ParamSpec('bind_endpoint', _SERVER.bind_endpoint,
              'ZeroMQ endpoint to listen on for rrto client nodes, e.g. tcp://*:5555.'
              + _RESTART, read_only=True, constraints='tcp://*:PORT, tcp://ADDR:PORT'),
    ParamSpec('backend', _default_backend,
              'Where CUDA work runs: cuda (this GPU, via cuda-python) or emu (a CPU '
              'stand-in for machines without a GPU). Default: cuda when a GPU is found.'
              + _RESTART, read_only=True, constraints='cuda or emu'),
    ParamSpec('device', _SERVER.device, 'CUDA device index for the cuda backend.' + _RESTART,
              read_only=True, int_range=(0, 63)),
    ParamSpec('module_cache_dir', _SERVER.module_cache_dir or '',
              'Disk cache of shipped fatbins (content-addressed); empty: memory only.'
              + _RESTART, read_only=True),
    ParamSpec('max_sessions', _SERVER.max_sessions,
              'Most app sessions served at once; more are refused with a clear error. '
              'Changes apply to the next session that opens.', int_range=(1, 4096)),
    ParamSpec('session_timeout_s', _SERVER.session_timeout_s,
              'Seconds without a message (not even a heartbeat) after which a session is '
              'dropped and its GPU memory freed. Changes apply at once.',
              float_range=(0.5, 86400.0)),
    ParamSpec('unused_session_timeout_s', _SERVER.unused_session_timeout_s,
              'Seconds a session that has done no CUDA work since its hello (heartbeats do '
              'not count) is kept; such a session also gives its place to a new app when '
              'max_sessions are open. Changes apply at once.', float_range=(0.1, 86400.0)),
    ParamSpec('max_message_bytes', _SERVER.max_message_bytes,
              'Largest payload of one request; ZeroMQ drops a client that sends a larger '
              'frame before it is read, and clients are told the limit. The default fits '
              "the interposer's 64 MiB copies; modules are uploaded in chunks of this size."
              + _RESTART, read_only=True, int_range=(64 << 10, 1 << 40)),
    ParamSpec('max_module_bytes', _SERVER.max_module_bytes,
              'Largest module (fatbin) a session may load.' + _RESTART, read_only=True,
              int_range=(1, 1 << 40)),
    ParamSpec('module_cache_mem_bytes', _SERVER.module_cache_mem_bytes,
              'Bytes of modules kept in memory (least recently used leave first; the disk '
              'cache keeps them all).' + _RESTART, read_only=True, int_range=(0, 1 << 40)),
    ParamSpec('diagnostics_period_s', 1.0,
              'Seconds between DiagnosticArray messages on /diagnostics.' + _RESTART,
              read_only=True, float_range=(0.05, 60.0)),
    ParamSpec('curve_secret_key_file', '',
              "The server's CURVE certificate (zmq.auth secret key file); empty: no "
              'encryption.' + _RESTART, read_only=True),
    ParamSpec('lane_port', _SERVER.lane_port,
              'TCP port of the replay lane, offered to clients next to bind_endpoint: 0 any '
              'free port, -1 none (replays then go over ZeroMQ). Off when CURVE is on.'
              + _RESTART, read_only=True, int_range=(-1, 65535)),
)

NODE_PARAMS: Dict[str, Tuple[ParamSpec, ...]] = {
    CLIENT_NODE: CLIENT_PARAMS,
    SERVER_NODE: SERVER_PARAMS,
}


def names(specs: Tuple[ParamSpec, ...]) -> Tuple[str, ...]:
    return tuple(s.name for s in specs)
