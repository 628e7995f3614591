# Copyright 2026 rrto_ros authors. Apache-2.0.
"""What both nodes share: declaring parameters from ``params``, a 1 Hz /diagnostics
publisher (a small subset of diagnostic_updater, which is not installable everywhere), the
core's Python logging routed to the node's logger, and ``run``, the nodes' ``main``."""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from typing import Callable, Iterable, Iterator, List, Optional, Sequence

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node

from rrto_ros.nodes.params import names, ParamSpec, unknown_names_message
from rrto_ros.nodes.status import StatusRecord

DIAGNOSTICS_TOPIC = '/diagnostics'


class NodeStartError(Exception):
    """A node cannot start; the message says why and what to change."""


@contextlib.contextmanager
def starting(node: Node) -> Iterator[None]:
    """A node's start-up: whatever fails (a bad setting, Ctrl-C or SIGTERM meanwhile)
    destroys what was made; a bad setting becomes a NodeStartError that says why."""
    try:
        yield
    except NodeStartError:
        node.destroy_node()
        raise
    except (ValueError, RuntimeError, OSError) as e:
        node.destroy_node()
        raise NodeStartError(str(e)) from e
    except BaseException:
        node.destroy_node()
        raise


def descriptor(spec: ParamSpec) -> ParameterDescriptor:
    d = ParameterDescriptor(name=spec.name, description=spec.description,
                            additional_constraints=spec.constraints, read_only=spec.read_only)
    if spec.int_range is not None:
        d.integer_range = [IntegerRange(from_value=spec.int_range[0],
                                        to_value=spec.int_range[1], step=1)]
    if spec.float_range is not None:
        d.floating_point_range = [FloatingPointRange(from_value=spec.float_range[0],
                                                     to_value=spec.float_range[1], step=0.0)]
    return d


def declare_parameters(node: Node, specs: Iterable[ParamSpec]) -> None:
    """Declare each parameter; a bad value from a params file becomes a NodeStartError, a
    name the node does not have (a typo: rclpy ignores it) a warning naming the closest."""
    specs = tuple(specs)
    for spec in specs:
        try:
            node.declare_parameter(spec.name, spec.default_value(), descriptor(spec))
        except Exception as e:  # rclpy raises several types for type and range failures
            raise NodeStartError(f'parameter {spec.name}: {e}. Fix it in the params file or '
                                 'the launch arguments.') from e
    given = getattr(node, '_parameter_overrides', {})   # params files and -p, as rclpy read them
    unknown = sorted(n for n in given if not node.has_parameter(n))
    if unknown:
        log(node, logging.WARNING,
            f'ignored: {unknown_names_message(node.get_name(), unknown, names(specs))}. '
            'Fix the name in the params file or the launch arguments.')


def to_message(node: Node, records: Sequence[StatusRecord]) -> DiagnosticArray:
    msg = DiagnosticArray()
    msg.header.stamp = node.get_clock().now().to_msg()
    for r in records:
        msg.status.append(DiagnosticStatus(
            level=bytes([r.level]), name=r.name, message=r.message, hardware_id=r.hardware_id,
            values=[KeyValue(key=k, value=v) for k, v in r.values]))
    return msg


def status_name_prefix(node: Node) -> str:
    """``rrto_client``, or ``ns/rrto_client`` in a namespace: unique names on /diagnostics."""
    return node.get_fully_qualified_name().lstrip('/')


class DiagnosticsPublisher:
    """Publishes ``collect()`` on /diagnostics every ``period_s`` seconds."""

    def __init__(self, node: Node, period_s: float,
                 collect: Callable[[], List[StatusRecord]]) -> None:
        self._node = node
        self._collect = collect
        self._pub = node.create_publisher(DiagnosticArray, DIAGNOSTICS_TOPIC, 10)
        self._timer = node.create_timer(period_s, self.publish)
        self._last_error = ''

    def publish(self) -> None:
        try:
            records = self._collect()
        except Exception as e:  # never let a stats glitch stop the node
            if repr(e) != self._last_error:        # once per kind of failure, not per tick
                self._last_error = repr(e)
                log(self._node, logging.WARNING, f'could not collect diagnostics: {e!r}; '
                    '/diagnostics stays silent until this is fixed')
            return
        self._last_error = ''
        self._pub.publish(to_message(self._node, records))


def log(node: Node, level: int, text: str) -> None:
    """Log through the node's logger; once Ctrl-C or SIGTERM has shut the context down
    (rclpy's signal handler does that), /rosout is gone, so write to stderr instead."""
    try:
        ok = node.context.ok()
        logger = node.get_logger()
    except Exception:  # the node is being destroyed: its handle is gone
        ok = False
    if not ok:
        name = logging.getLevelName(level).replace('WARNING', 'WARN')
        sys.stderr.write(f'[{name}] [{time.time():.9f}] [{_node_name(node)}]: {text}\n')
        sys.stderr.flush()
        return
    if level >= logging.ERROR:
        logger.error(text)
    elif level >= logging.WARNING:
        logger.warning(text)
    elif level >= logging.INFO:
        logger.info(text)
    else:
        logger.debug(text)


def _node_name(node: Node) -> str:
    try:
        return node.get_name()
    except Exception:  # destroyed: rclpy refuses to read its handle
        return getattr(node, '_rrto_name', 'rrto')


class _RosLogHandler(logging.Handler):
    def __init__(self, node: Node) -> None:
        super().__init__()
        self._node = node

    def emit(self, record: logging.LogRecord) -> None:
        try:
            log(self._node, record.levelno, self.format(record))
        except Exception:  # logging must never raise into the core's threads
            self.handleError(record)


def route_core_logging(node: Node, loggers: Sequence[str]) -> logging.Handler:
    """Send the cores' ``logging`` output (``loggers``, e.g. ``rrto_ros.client``) to the
    node's ROS logger."""
    node._rrto_name = node.get_name()   # type: ignore[attr-defined]  (for late records)
    handler = _RosLogHandler(node)
    for name in loggers:
        core_logger = logging.getLogger(name)
        core_logger.addHandler(handler)
        core_logger.setLevel(logging.INFO)
        core_logger.propagate = False
    return handler


def unroute_core_logging(handler: logging.Handler, loggers: Sequence[str]) -> None:
    for name in loggers:
        logging.getLogger(name).removeHandler(handler)


def run(node_factory: Callable[[], Node], args: Optional[List[str]] = None) -> int:
    """A node's ``main``: init, spin until Ctrl-C or SIGTERM, clean up; 1 if it can't start."""
    rclpy.init(args=args)
    node: Optional[Node] = None
    code = 0
    try:
        node = node_factory()
        if rclpy.ok():   # a SIGTERM during start-up has already shut the context down
            rclpy.spin(node)
    except NodeStartError as e:
        rclpy.logging.get_logger('rrto_ros').error(f'cannot start: {e}')
        code = 1
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception:   # the signal came between the check above and spin's executor
        if rclpy.ok():
            raise
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return code
