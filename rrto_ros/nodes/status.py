# Copyright 2026 rrto_ros authors. Apache-2.0.
"""What the nodes report on /diagnostics, as plain data (no rclpy).

One status per session plus one for the node itself, each a level, a name
(``<node>: session <app>[<pid>]``), a one-line message and string key/value pairs, as in
``diagnostic_msgs/DiagnosticStatus``. The demo parses the same keys back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import statistics
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

OK, WARN, ERROR, STALE = 0, 1, 2, 3

# Keys of a client session's status; the tests and the demo rely on them.
CLIENT_SESSION_KEYS = (
    'app', 'pid', 'state', 'phase', 'mode', 'record_window', 'inferences',
    'blocking_round_trips', 'round_trips_per_inference', 'replay_started_at', 'latency_ms_p50',
    'server_rtt_us_median', 'agent_calls', 'forwarded_calls', 'lane_requests', 'bytes_up',
    'bytes_down', 'payload_bytes', 'payload_wire_bytes', 'module_bytes_uploaded',
    'content_bytes_by_hash', 'divergences', 'errors', 'last_inference_phase')
CLIENT_NODE_KEYS = ('server_endpoint', 'agent_socket', 'mode', 'record_window', 'sessions',
                    'sessions_finished')
SERVER_SESSION_KEYS = ('session', 'sid', 'phase', 'executed', 'errors', 'idle_s',
                       'replay_passes', 'replay_pass_us_median', 'graph_launches')
SERVER_NODE_KEYS = ('backend', 'endpoint', 'sessions', 'sessions_opened', 'sessions_closed',
                    'rejected', 'requests', 'bytes_in')


@dataclass
class StatusRecord:
    level: int
    name: str
    message: str
    hardware_id: str = ''
    values: List[Tuple[str, str]] = field(default_factory=list)

    def as_dict(self) -> Dict[str, str]:
        return dict(self.values)


def fmt(value: Any) -> str:
    """A KeyValue string: integers as is, floats with 4 significant digits, None as ''."""
    if value is None:
        return ''
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, float):
        return f'{value:.4g}'
    return str(value)


def client_phase(snap: Mapping[str, Any]) -> str:
    """forwarding / recording / replaying (the last one, once the session ended)."""
    return str(snap.get('phase') or 'forwarding')


RECENT = 10   # inferences whose round trips make the "now" figure


def round_trips_per_inference(snap: Mapping[str, Any]) -> Optional[float]:
    """Blocking round trips per inference now: the median of the recent inferences when the
    core lists them, else its single figure, else all round trips over all inferences."""
    value = snap.get('round_trips_per_inference')
    if isinstance(value, (list, tuple)):
        recent = [float(v) for v in list(value)[-RECENT:]]
        if recent:
            return float(statistics.median(recent))
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    n = int(snap.get('inferences') or 0)
    return snap.get('blocking_round_trips', 0) / n if n else None


def _replay_started_at(snap: Mapping[str, Any]) -> Optional[int]:
    """Inferences done before the first replay; None (shown as '') before it."""
    value = snap.get('replay_started_at')
    return value if isinstance(value, int) and value >= 0 else None


def client_session_status(node: str, snap: Mapping[str, Any], record_window: Any,
                          endpoint: str) -> StatusRecord:
    label = f'{snap.get("app") or "?"}[{snap.get("pid", 0)}]'
    phase = client_phase(snap)
    rtpi = round_trips_per_inference(snap)
    values = {
        'app': snap.get('app', ''), 'pid': snap.get('pid', 0),
        'state': snap.get('state', ''), 'phase': phase, 'mode': snap.get('mode', ''),
        'record_window': snap.get('record_window', record_window),
        'inferences': snap.get('inferences'),
        'blocking_round_trips': snap.get('blocking_round_trips', 0),
        'round_trips_per_inference': rtpi,
        'replay_started_at': _replay_started_at(snap),
        'latency_ms_p50': snap.get('latency_ms_p50'),
        'server_rtt_us_median': snap.get('server_rtt_us_median'),
        'agent_calls': snap.get('agent_calls', 0),
        'forwarded_calls': snap.get('forwarded_calls', 0),
        'lane_requests': snap.get('lane_requests', 0),
        'last_inference_phase': snap.get('last_inference_phase', ''),
        'bytes_up': snap.get('bytes_up', 0), 'bytes_down': snap.get('bytes_down', 0),
        # what copies to the device weighed, and what of them travelled (compressed, or
        # only their content key): the warm start and the compression, visible
        'payload_bytes': snap.get('payload_bytes', 0),
        'payload_wire_bytes': snap.get('payload_wire_bytes', 0),
        'module_bytes_uploaded': snap.get('module_bytes_uploaded', 0),
        'content_bytes_by_hash': snap.get('content_bytes_by_hash', 0),
        'divergences': snap.get('divergences', 0), 'errors': snap.get('errors', 0),
    }
    state = values['state']
    if state == 'lost':
        level, message = ERROR, "lost the server: the app's CUDA calls fail; restart the app"
    else:
        level = WARN if values['errors'] else OK
        message = f'{phase}, mode {values["mode"]}' if state != 'ended' else \
            f'ended (last phase {phase}), mode {values["mode"]}'
        if rtpi is not None:
            message += f', {rtpi:.2f} blocking round trips per inference'
        if values['errors']:
            message += f', {values["errors"]} CUDA errors returned to the app'
    return StatusRecord(level, f'{node}: session {label}', message, endpoint,
                        [(k, fmt(values[k])) for k in CLIENT_SESSION_KEYS])


def broken_session_status(node: str, snap: Mapping[str, Any], error: Exception
                          ) -> StatusRecord:
    label = f'{snap.get("app") or "?"}[{snap.get("pid", 0)}]'
    return StatusRecord(ERROR, f'{node}: session {label}',
                        f'cannot report this session ({error!r}); update rrto_ros so that '
                        'the node and the client core match')


def client_node_status(node: str, config: Any, live: int, finished: int) -> StatusRecord:
    values = {'server_endpoint': config.server_endpoint, 'agent_socket': config.agent_socket,
              'mode': config.mode, 'record_window': getattr(config, 'record_window', ''),
              'sessions': live, 'sessions_finished': finished}
    return StatusRecord(OK, f'{node}: client',
                        f'{live} session(s) running, mode {config.mode}, forwarding to '
                        f'{config.server_endpoint}', config.server_endpoint,
                        [(k, fmt(values[k])) for k in CLIENT_NODE_KEYS])


def _server_summary(session: Any) -> Dict[str, Any]:
    try:
        return dict(session.summary())
    except Exception:  # an older server core, or a summary taken mid-update: go without
        return {}


def server_session_status(node: str, session: Any, now: float, backend: str) -> StatusRecord:
    summary = _server_summary(session)
    passes = summary.get('replay_passes') or 0
    values = {
        'session': getattr(session, 'label', '?'),
        'sid': getattr(session, 'sid', b'').hex()[:8],
        # Until the server session reports its phase: replaying once it replayed at all.
        'phase': getattr(session, 'phase', None) or ('replaying' if passes else 'forwarding'),
        'executed': getattr(session, 'executed', 0),
        'errors': getattr(session, 'errors', 0),
        'idle_s': max(0.0, now - getattr(session, 'last_seen', now)),
        'replay_passes': passes,
        'replay_pass_us_median': summary.get('replay_pass_us_median'),
        'graph_launches': summary.get('graph_launches'),
    }
    level = WARN if values['errors'] else OK
    message = f'{values["executed"]} calls executed, {values["errors"]} errors'
    return StatusRecord(level, f'{node}: session {values["session"]}', message, backend,
                        [(k, fmt(values[k])) for k in SERVER_SESSION_KEYS])


def server_node_status(node: str, backend: str, endpoint: str, sessions: int,
                       stats: Any) -> StatusRecord:
    values = {'backend': backend, 'endpoint': endpoint, 'sessions': sessions,
              'sessions_opened': getattr(stats, 'sessions_opened', 0),
              'sessions_closed': getattr(stats, 'sessions_closed', 0),
              'rejected': getattr(stats, 'rejected', 0),
              'requests': getattr(stats, 'requests', 0),
              'bytes_in': getattr(stats, 'bytes_in', 0)}
    return StatusRecord(OK, f'{node}: server',
                        f'{sessions} session(s) on the {backend} backend at {endpoint}',
                        backend, [(k, fmt(values[k])) for k in SERVER_NODE_KEYS])


def by_name(records: Iterable[StatusRecord]) -> Dict[str, StatusRecord]:
    return {r.name: r for r in records}
