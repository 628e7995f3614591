# Copyright 2026 rrto_ros authors. Apache-2.0.
"""A scripted stand-in for the client node, to test the interposer's side of the wire."""

from __future__ import annotations

import os
import socket
import struct
import tempfile
import threading
from typing import Callable, Dict, List, Optional, Tuple

from rrto_ros.protocol import agent_wire as wire
from rrto_ros.protocol.ops import Op

# (err, results, data) or (err, results, data, table[, output]): a replay table rides along
# (b'' withdraws the installed one; None: no table), and device printf text
Answer = Tuple


class FakeAgent:
    """Accepts one interposer at a time; answers each op from ``answers`` or with success."""

    def __init__(self, mode: str = 'rpc',
                 answers: Optional[Dict[Op, Callable[[wire.AgentRequest], Answer]]] = None
                 ) -> None:
        self.mode = wire.MODE_IDS[mode]
        self.answers = answers or {}
        self.received: List[wire.AgentRequest] = []
        self._tmp = tempfile.TemporaryDirectory()
        self.path = os.path.join(self._tmp.name, 'agent.sock')
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind(self.path)
        self._sock.listen(4)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def ops(self) -> List[Op]:
        return [Op(r.op) for r in self.received]

    def close(self) -> None:
        self._sock.close()
        self._tmp.cleanup()

    def _serve(self) -> None:
        try:
            conn, _ = self._sock.accept()
        except OSError:
            return
        with conn:
            while True:
                try:
                    req = wire.read_request(conn)
                except (wire.WireError, OSError):
                    return
                self.received.append(req)
                if not req.wants_reply:
                    continue
                err, res, data, *rest = self._answer(req)
                try:
                    wire.send_reply(conn, err, res, data, self.mode,
                                    table=rest[0] if rest else None,
                                    output=rest[1] if len(rest) > 1 else b'')
                except OSError:   # the app exited without reading its answer
                    return

    def _answer(self, req: wire.AgentRequest) -> Answer:
        op = Op(req.op)
        if op in self.answers:
            return self.answers[op](req)
        if op == Op.HELLO:
            return 0, (1,), b''
        if op == Op.MALLOC:
            return 0, (0x7f0000000000 + 256 * len(self.received),), b''
        if op == Op.DEVICE_ATTRS:
            n = len(req.data) // 4
            values = [0] * n
            values[10] = 32        # warp size
            values[75] = 9         # compute capability major
            values[16] = 132       # SMs
            name = b'fake device'.ljust(256, b'\0')
            return 0, (80 << 30,), struct.pack(f'<{n}i', *values) + name + b'u' * 16
        return 0, (), b''
