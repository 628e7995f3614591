# Copyright 2026 rrto_ros authors. Apache-2.0.
"""Edge side: the rrto server node next to the GPU.

    ros2 launch rrto_ros edge.launch.py
    ros2 launch rrto_ros edge.launch.py port:=6000 backend:=emu

What starts is defined in rrto_ros/launch_plan.py (edge_plan) from config/edge.yaml; this
file only turns that plan into launch actions.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from rrto_ros.launch_plan import EDGE_ARGUMENTS, edge_plan


def _actions(context):
    value = {a.name: LaunchConfiguration(a.name).perform(context) for a in EDGE_ARGUMENTS}
    plan = edge_plan(params_file=value['params_file'] or None, port=value['port'],
                     backend=value['backend'])
    return [Node(package=p.package, executable=p.executable, name=p.name,
                 parameters=p.ros_parameters(), output='screen', additional_env=p.env)
            for p in plan.processes]


def generate_launch_description():
    return LaunchDescription(
        [DeclareLaunchArgument(a.name, default_value=a.default, description=a.description)
         for a in EDGE_ARGUMENTS] + [OpaqueFunction(function=_actions)])
