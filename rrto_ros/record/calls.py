# Copyright 2026 rrto_ros authors. Apache-2.0.
"""One recorded CUDA call, its identity key, and the op classes the dependency search uses.

A :class:`Call` holds only what identifies a call for record/replay: the op, its uint64
arguments (layouts in :mod:`rrto_ros.protocol.ops`), the data that is part of the identity
(LAUNCH's flat parameter buffer, FUNC_GET/VAR_GET names), the *length* of variable data
(MEMCPY_HTOD's payload, whose content differs per inference and is shipped at replay), and
the results the app got. Replay returns recorded results, so a call whose results differ is
a different call: results are part of the key.

:class:`KeyInterner` maps keys to small dense ints, so that the log and the period search
work on integer arrays rather than on tuples of bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
import hashlib
from typing import Dict, FrozenSet, List, Sequence, Tuple

from rrto_ros.protocol import forwarding

# Op names (as in rrto_ops.def). Kept as plain strings: comparing interned str is as fast
# as comparing ints. A LIBCALL's meaning (which library function, its classes) comes from
# the forwarding spec (protocol/forwarding.py), read from its data.
MALLOC = 'MALLOC'
FREE = 'FREE'
MEMCPY_HTOD = 'MEMCPY_HTOD'
MEMCPY_DTOH = 'MEMCPY_DTOH'
MEMCPY_DTOD = 'MEMCPY_DTOD'
MEMSET = 'MEMSET'
LAUNCH = 'LAUNCH'
VAR_GET = 'VAR_GET'
LIBCALL = 'LIBCALL'
DEVICE_RESET = 'DEVICE_RESET'

#: Ops that read or write device memory (everything else is "passive" for the data flow).
DATA_OPS: FrozenSet[str] = frozenset({MEMCPY_HTOD, MEMCPY_DTOH, MEMCPY_DTOD, MEMSET, LAUNCH})
#: Ops that write device memory; a start candidate among them is where an inference begins.
DEVICE_WRITE_OPS: FrozenSet[str] = frozenset({MEMCPY_HTOD, MEMCPY_DTOD, MEMSET, LAUNCH})
#: Ops that hand a result to the host: the end hints.
OUTPUT_OPS: FrozenSet[str] = frozenset({MEMCPY_DTOH})
#: Passive ops that belong to the *end* of an inference when they follow its last output
#: (the app waits for the result, then releases). Other passive ops that sit between an
#: output and the next input (MALLOC, EVENT_RECORD, STREAM_WAIT_EVENT, ...) belong to the
#: start of the next inference.
TAIL_OPS: FrozenSet[str] = frozenset({
    'STREAM_SYNC', 'DEVICE_SYNC', 'EVENT_SYNC', 'STREAM_QUERY', 'EVENT_QUERY',
    'EVENT_ELAPSED', FREE, 'STREAM_DESTROY', 'EVENT_DESTROY'})

_MAX_KEY_DATA = 4096


def library_function(call: 'Call'):
    """The spec entry (:class:`rrto_ros.protocol.forwarding.Function`) a LIBCALL names, or
    None (another op, or a name this version does not forward)."""
    if call.op != LIBCALL:
        return None
    return forwarding.by_name(forwarding.call_name(call.key_data))


def is_stream_work(call: 'Call') -> bool:
    """A library call whose work goes to a stream (class ``stream`` in the spec): it reads
    and writes device memory through its ``device`` parameters, like a kernel launch."""
    fn = library_function(call)
    return fn is not None and fn.stream_work


def touches_device(call: 'Call') -> bool:
    """Reads or writes device memory (:data:`DATA_OPS`, or library stream work)."""
    return call.op in DATA_OPS or is_stream_work(call)


def writes_device(call: 'Call') -> bool:
    """Writes device memory (:data:`DEVICE_WRITE_OPS`, or library stream work)."""
    return call.op in DEVICE_WRITE_OPS or is_stream_work(call)


Key = Tuple[str, Tuple[int, ...], bytes, int, Tuple[int, ...], int]


@dataclass(frozen=True)
class Call:
    """One call as the interposer sent it and the app saw its answer.

    ``args`` must be a tuple of ints (a list is converted). ``key_data`` is identity data
    (LAUNCH parameter buffer, names); ``var_len`` is the length of variable data whose
    content is not part of the identity (MEMCPY_HTOD payload).
    """

    op: str
    args: Tuple[int, ...]
    key_data: bytes = b''
    var_len: int = 0
    result: Tuple[int, ...] = ()
    err: int = 0

    def __post_init__(self) -> None:
        # Cheap normalisation only: add() runs once per forwarded call.
        if type(self.op) is not str:   # an Op enum member or similar
            object.__setattr__(self, 'op', getattr(self.op, 'name', str(self.op)))
        if type(self.args) is not tuple:
            object.__setattr__(self, 'args', tuple(int(a) for a in self.args))
        if type(self.result) is not tuple:
            object.__setattr__(self, 'result', tuple(int(r) for r in self.result))
        if type(self.key_data) is not bytes:
            object.__setattr__(self, 'key_data', bytes(self.key_data))

    @classmethod
    def from_request(cls, op: object, args: Sequence[int], data: bytes = b'',
                     result: Sequence[int] = (), err: int = 0) -> 'Call':
        """The call for a forwarded request: ``data`` is what the interposer sent up with it.

        MEMCPY_HTOD's data is the variable payload (only its length is kept); LAUNCH's is
        the parameter buffer (kept whole: the dependency graph scans it for pointers); any
        other op's data is identity (names, attribute ids), kept as is up to 4 KiB and as a
        digest beyond (a MODULE_LOAD chunk).
        """
        name = op if type(op) is str else getattr(op, 'name', str(op))
        if name == MEMCPY_HTOD:   # only its length: a bulk payload is not copied
            return cls(name, tuple(args), b'', len(data), tuple(result), err)
        data = bytes(data)
        if name not in (LAUNCH, LIBCALL) and len(data) > _MAX_KEY_DATA:
            data = b'#blake2b:' + hashlib.blake2b(data, digest_size=20).digest()
        return cls(name, tuple(args), data, 0, tuple(result), err)

    def key(self) -> Key:
        """The identity: two calls with equal keys are interchangeable at replay."""
        return (self.op, self.args, self.key_data, self.var_len, self.result, self.err)

    def arg(self, i: int, default: int = 0) -> int:
        """Argument ``i``, or ``default`` when the interposer sent fewer."""
        a = self.args
        return a[i] if i < len(a) else default


class KeyInterner:
    """Maps call keys to dense ints 0, 1, 2, ... (first come, first numbered).

    Ids are never reused, so an id seen in an old log entry still means the same call.
    """

    __slots__ = ('_ids', '_keys')

    def __init__(self) -> None:
        self._ids: Dict[Key, int] = {}
        self._keys: List[Key] = []

    def __len__(self) -> int:
        return len(self._keys)

    def intern(self, call: Call) -> int:
        return self.intern_key((call.op, call.args, call.key_data, call.var_len, call.result,
                                call.err))

    def intern_key(self, k: Key) -> int:
        i = self._ids.get(k)
        if i is None:
            i = self._ids[k] = len(self._keys)
            self._keys.append(k)
        return i

    def lookup(self, call: Call) -> int:
        """The id of ``call``'s key, or -1 when it was never interned."""
        return self._ids.get(call.key(), -1)

    def key_of(self, kid: int) -> Key:
        return self._keys[kid]

    def compact(self, live: Sequence[int]) -> List[int]:
        """Forget every key but the ids in ``live`` (sorted, unique); renumber them 0, 1, ...

        Returns the old-id -> new-id table (-1 for forgotten ids) so that the caller can
        rewrite its arrays. Bounds memory when keys keep changing (a call whose argument
        counts up) over a long session.
        """
        table = [-1] * len(self._keys)
        keys = [self._keys[i] for i in live]
        for new, old in enumerate(live):
            table[old] = new
        self._keys = keys
        self._ids = {k: i for i, k in enumerate(keys)}
        return table
