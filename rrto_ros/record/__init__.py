# Copyright 2026 rrto_ros authors. Apache-2.0.
"""Record/replay: the operator log, the data-dependency graph and the search for the inference
operator sequence (pure Python + numpy; no ROS, GPU or sockets). See ``search`` for the API."""

from rrto_ros.record.calls import Call
from rrto_ros.record.calls import KeyInterner
from rrto_ros.record.deps import DepGraph
from rrto_ros.record.oplog import OpLog
from rrto_ros.record.search import Recorder
from rrto_ros.record.search import Sequence

__all__ = ['Call', 'DepGraph', 'KeyInterner', 'OpLog', 'Recorder', 'Sequence']
