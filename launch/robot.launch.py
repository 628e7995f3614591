# Copyright 2026 rrto_ros authors. Apache-2.0.
"""Robot side: the rrto client node and the GPU workload, its CUDA work sent to the edge.

    ros2 launch rrto_ros robot.launch.py server_host:=edge-host
    ros2 launch rrto_ros robot.launch.py workload:='/opt/app/infer --camera 0'
    ros2 launch rrto_ros robot.launch.py use_rrto:=false     # the local GPU, untouched
    ros2 launch rrto_ros robot.launch.py pipeline:=true      # people following (README)

What starts is defined in rrto_ros/launch_plan.py (robot_plan, or pipeline_plan with
pipeline:=true) from config/robot.yaml; this file only turns that plan into launch actions.
The workload (or the pose node) gets LD_PRELOAD=librrto_cuda.so (the installed interposer)
through additional_env.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from rrto_ros.launch_plan import (parse_bool, PIPELINE_INPUTS, pipeline_plan, ROBOT_ARGUMENTS,
                                  robot_plan)


def _actions(context):
    value = {a.name: LaunchConfiguration(a.name).perform(context) for a in ROBOT_ARGUMENTS}
    if parse_bool(value['pipeline']):
        plan = pipeline_plan(params_file=value['params_file'] or None,
                             server_host=value['server_host'],
                             server_port=value['server_port'], use_rrto=value['use_rrto'],
                             camera=value['camera'], workload=value['workload'],
                             topics={t: value[f'{t}_topic'] for t in PIPELINE_INPUTS})
    else:
        plan = robot_plan(params_file=value['params_file'] or None,
                          server_host=value['server_host'], server_port=value['server_port'],
                          use_rrto=value['use_rrto'], workload=value['workload'])
    actions = []
    for p in plan.processes:
        if p.is_node:
            actions.append(Node(package=p.package, executable=p.executable, name=p.name,
                                parameters=p.ros_parameters(),
                                remappings=list(p.remappings.items()), output='screen',
                                additional_env=p.env))
        else:
            actions.append(ExecuteProcess(cmd=p.command(), name=p.name, output='screen',
                                          additional_env=p.env))
    return actions


def generate_launch_description():
    return LaunchDescription(
        [DeclareLaunchArgument(a.name, default_value=a.default, description=a.description)
         for a in ROBOT_ARGUMENTS] + [OpaqueFunction(function=_actions)])
