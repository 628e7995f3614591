# Copyright 2026 rrto_ros authors. Apache-2.0.
"""Thin rclpy nodes over the ROS-free cores: ``client_node`` (robot) and ``server_node`` (edge).

Importing this package needs no ROS: ``params`` (what each node declares) and ``status``
(what each node reports on /diagnostics) are plain Python, so the launch plan, the demo and
the static tests use them without rclpy. The node modules import rclpy at the top.
"""
