# Copyright 2026 rrto_ros authors. Apache-2.0.
"""Following: ``target`` (geometry_msgs/PointStamped) -> ``cmd_vel`` (geometry_msgs/Twist,
linear.x and angular.z) at ``control_rate_hz``, keeping ``standoff_m`` from the person, with
speed, turn-rate and acceleration limits (``rrto_ros.tracking.follower``: the control law
and the frame convention). No target for ``lost_timeout_s``: a zero Twist, every cycle, until
the person is seen again (put a twist_mux in front of the base to let teleop win).

Run: ``ros2 run rrto_ros rrto_follower_node --ros-args --params-file config/robot.yaml``.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, List, Mapping, Optional, Tuple

from geometry_msgs.msg import PointStamped, Twist
from rclpy.node import Node

from rrto_ros.nodes.common import (declare_parameters, DiagnosticsPublisher, log,
                                   NodeStartError, run, starting, status_name_prefix)
from rrto_ros.nodes.params import FOLLOWER_NODE, FOLLOWER_PARAMS
from rrto_ros.nodes.pipeline_common import (accept_changes, parameter_values, record,
                                            RESULT_QOS)
from rrto_ros.nodes.status import OK, StatusRecord, WARN
from rrto_ros.tracking.follower import Follower, FollowerConfig


def follower_config(values: Mapping[str, Any]) -> FollowerConfig:
    names = {f.name for f in dataclasses.fields(FollowerConfig)}
    config = FollowerConfig(**{k: v for k, v in values.items() if k in names})
    config.validate()
    return config


class FollowerNode(Node):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(FOLLOWER_NODE, **kwargs)
        with starting(self):
            declare_parameters(self, FOLLOWER_PARAMS)
            p = parameter_values(self, FOLLOWER_PARAMS)
            try:
                self.follower = Follower(follower_config(p))
            except ValueError as e:
                raise NodeStartError(str(e)) from e
            self.target: Optional[Tuple[float, float, float]] = None
            self._received_ns = 0
            self._last_step_ns: Optional[int] = None
            self.commands = 0
            accept_changes(self, FOLLOWER_PARAMS, follower_config, self.follower.set_config)
            self._cmd = self.create_publisher(Twist, 'cmd_vel', RESULT_QOS)
            self.create_subscription(PointStamped, 'target', self._on_target, RESULT_QOS)
            self._diagnostics = DiagnosticsPublisher(self, p['diagnostics_period_s'],
                                                     self.diagnostics)
            self.create_timer(1.0 / p['control_rate_hz'], self._step)
            log(self, logging.INFO,
                f'ready: following target at {p["standoff_m"]:g} m on cmd_vel '
                f'({p["control_rate_hz"]:g} Hz, <= {p["max_linear_mps"]:g} m/s, '
                f'<= {p["max_angular_rps"]:g} rad/s, stop after {p["lost_timeout_s"]:g} s '
                'without a target)')

    def _on_target(self, msg: PointStamped) -> None:
        self.target = (msg.point.x, msg.point.y, msg.point.z)
        self._received_ns = self.get_clock().now().nanoseconds

    def _step(self) -> None:
        now = self.get_clock().now().nanoseconds
        dt = 0.0 if self._last_step_ns is None else (now - self._last_step_ns) * 1e-9
        self._last_step_ns = now
        age = (now - self._received_ns) * 1e-9
        before = self.follower.state
        linear, angular = self.follower.step(self.target, age, dt)
        if self.follower.state == 'lost' and before != 'lost':
            log(self, logging.WARNING, f'no target for {self.follower.config.lost_timeout_s:g} '
                's: stopping (zero cmd_vel) until the person is seen again')
        elif before == 'lost' and self.follower.state != 'lost':
            log(self, logging.INFO, 'target seen again: following')
        msg = Twist()
        msg.linear.x = float(linear)
        msg.angular.z = float(angular)
        self._cmd.publish(msg)
        self.commands += 1

    def diagnostics(self) -> List[StatusRecord]:
        f = self.follower
        values = {'state': f.state, 'linear_x': f.linear, 'angular_z': f.angular,
                  'distance_m': f.distance, 'bearing_rad': f.bearing,
                  'standoff_m': f.config.standoff_m, 'commands': self.commands}
        level = WARN if f.state == 'lost' else OK
        return [record(f'{status_name_prefix(self)}: follower', level, f.state, values)]


def main(args: Optional[List[str]] = None) -> int:
    return run(FollowerNode, args)


if __name__ == '__main__':
    raise SystemExit(main())
