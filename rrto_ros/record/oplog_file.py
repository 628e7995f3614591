# Copyright 2026 rrto_ros authors. Apache-2.0.
"""An operator log on disk: the recorded calls of one session, for tests and offline study
of the search (e.g. the log of a real PyTorch inference recorded on the GPU).

The client node writes one at the end of a session when ``RRTO_OPLOG_DUMP=FILE`` is set in
its environment (``{pid}`` in FILE becomes the app's pid, else the last session wins). It
holds every call the session forwarded, as the recorder sees it (:class:`Call`: op, args,
identity data, variable-data length, results, error): record in mode ``pipelined`` (or
``rpc``), where every call is forwarded; in ``replay`` replayed calls never reach the node.

Format: msgpack of ``{'format': 'rrto-oplog', 'version': 1, 'app': str, 'mode': str,
'calls': [[op, [args], key_data, var_len, [result], err], ...]}``.
"""

from __future__ import annotations

import os
import pathlib
from typing import Dict, Iterable, List, Tuple

import msgpack

from rrto_ros.record.calls import Call

FORMAT, VERSION = 'rrto-oplog', 1
ENV = 'RRTO_OPLOG_DUMP'
MAX_CALLS = 2_000_000      # a dump is for a few inferences; beyond this it is cut


def dump(path: str, calls: Iterable[Call], app: str = '', mode: str = '') -> int:
    """Write ``calls``; returns how many were written."""
    rows = [[c.op, list(c.args), c.key_data, c.var_len, list(c.result), c.err]
            for c in calls]
    blob = msgpack.packb({'format': FORMAT, 'version': VERSION, 'app': app, 'mode': mode,
                          'calls': rows}, use_bin_type=True)
    tmp = pathlib.Path(f'{path}.tmp{os.getpid()}')
    tmp.write_bytes(blob)
    tmp.replace(path)
    return len(rows)


def load(path: str) -> Tuple[Dict[str, object], List[Call]]:
    """(header, calls) of a dump; ValueError says what is wrong with the file."""
    try:
        doc = msgpack.unpackb(pathlib.Path(path).read_bytes(), raw=False)
        if doc.get('format') != FORMAT or doc.get('version') != VERSION:
            raise ValueError(f'not an {FORMAT} version {VERSION} file')
        calls = [Call(op, tuple(args), bytes(key), var_len, tuple(res), err)
                 for op, args, key, var_len, res, err in doc['calls']]
    except (OSError, ValueError, TypeError, KeyError, AttributeError,
            msgpack.UnpackException) as e:
        raise ValueError(f'{path}: cannot read the operator log ({e}); write it with '
                         f"{ENV}=FILE in the client node's environment") from None
    head = {k: v for k, v in doc.items() if k != 'calls'}
    return head, calls


def target(pid: int) -> str:
    """Where this process's client node dumps a session of app ``pid`` ('' when off)."""
    path = os.environ.get(ENV, '')
    return path.replace('{pid}', str(pid)) if path else ''
