# Copyright 2026 rrto_ros authors. Apache-2.0.
"""People following, ROS-free: KAPAO-architecture pose estimation, keypoints -> 3D -> Kalman
filter -> follow. Nodes in ``rrto_ros.nodes`` wire these to topics."""
