# Copyright 2026 rrto_ros authors. Apache-2.0.
"""One session's forwarded library calls (op LIBCALL): decoded by the spec
(:mod:`rrto_ros.protocol.forwarding`), its handles mapped from the interposer's ids to the
server's objects, its device addresses checked against the session's memory, and run by
the backend's libraries (``Backend.lib_call``) on the session's context and streams."""

from __future__ import annotations

import logging
import struct
from typing import Dict, List, Tuple

from rrto_ros.protocol import forwarding
from rrto_ros.protocol import ops
from rrto_ros.server.address_book import AddressBook
from rrto_ros.server.backend import Backend
from rrto_ros.server.backend import CudaError

log = logging.getLogger(__name__)
MAX_HANDLES = 1 << 16      # live handles and descriptors per session
VOID_PTR_ELEMENTS = 6      # CUDNN_TYPE_VOID_PTR: device addresses in a backend attribute


class Holder:
    """Where a create call puts the handle it makes (the backend sets ``value``)."""

    __slots__ = ('value',)

    def __init__(self) -> None:
        self.value: object = None


class LibError(CudaError):
    """A call the server refuses before the library sees it: ``status`` is the library's
    status the app gets (``code`` the CUDA error the session reports)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(ops.CUDA_ERROR_UNKNOWN, message)
        self.status = status


class LibraryCalls:
    def __init__(self, backend: Backend, memory: AddressBook) -> None:
        self.backend = backend
        self.memory = memory
        self.handles: Dict[int, object] = {}
        self.kinds: Dict[int, str] = {}   # id -> the function that created it
        self.calls = 0

    def execute(self, data: bytes) -> Tuple[int, bytes, str]:
        """Run one call; (library status, the out buffers, why it failed or '')."""
        try:
            d = forwarding.decode(data)
        except forwarding.WireError as e:
            raise CudaError(ops.CUDA_ERROR_INVALID_VALUE, str(e)) from None
        fn = d.function
        status_of = forwarding.LIB_STATUS[fn.lib]
        args: List[object] = []
        for i, p in enumerate(fn.params):
            w = d.words[i]
            role = p.role
            if role in ('value', 'key'):
                args.append(forwarding.as_float(w, p.abi) if p.abi in ('f', 'd')
                            else forwarding.signed(w, p.abi))
            elif role in forwarding.HANDLE_ROLES - {'create'}:
                if w and w not in self.handles:
                    raise LibError(status_of['bad_handle'], f'{fn.name}: {p.name} (id {w}) is '
                                   'not a live handle of this session')
                args.append(self.handles.get(w))
            elif role == 'create':
                if w == 0:
                    raise LibError(status_of['invalid_value'], f'{fn.name}: {p.name} id 0')
                if w in self.handles:   # its destroy was skipped (a replayed run): replace
                    self._destroy(w)
                if len(self.handles) >= MAX_HANDLES:
                    raise LibError(status_of['failed'], f'{fn.name}: this session holds '
                                   f'{MAX_HANDLES} handles already; destroy some')
                args.append(Holder())
            elif role == 'device':
                if w:
                    try:
                        self.memory.check(w, 1, f'{fn.name} {p.name}')
                    except CudaError as e:
                        raise LibError(status_of['invalid_value'], str(e)) from None
                args.append(w)
            elif role == 'in':
                if p.device_when and forwarding.signed(d.words[p.device_when[0]], 'i32') in \
                        p.device_when[1] and d.buffers[i] and len(d.buffers[i]) >= 8:
                    addr = struct.unpack_from('<Q', d.buffers[i])[0]
                    if addr:
                        try:
                            self.memory.check(addr, 1, f'{fn.name} {p.name}')
                        except CudaError as e:
                            raise LibError(status_of['invalid_value'], str(e)) from None
                args.append(d.buffers[i])
            elif role == 'out':
                args.append(None if d.out_sizes[i] < 0 else bytearray(d.out_sizes[i]))
            elif role == 'elems':
                args.append(self._elements(fn, p, d, i))
            else:   # stream, kernel: the backend maps its own handles
                args.append(w)
        self.calls += 1
        status = int(self.backend.lib_call(fn, args))
        if status == 0:
            for i, p in enumerate(fn.params):
                if p.role == 'create':
                    self.handles[d.words[i]] = args[i].value
                    self.kinds[d.words[i]] = fn.name
                elif p.role == 'destroy':
                    self.handles.pop(d.words[i], None)
                    self.kinds.pop(d.words[i], None)
        outs = b''.join(bytes(a) for p, a in zip(fn.params, args)
                        if p.role in ('out', 'elems') and isinstance(a, bytearray))
        if log.isEnabledFor(logging.DEBUG):
            log.debug('%s(%s) -> %d%s', fn.name, ', '.join(
                f'{p.name}={_show(a)}' for p, a in zip(fn.params, args)), status,
                f' out {outs[:64].hex()}' if outs else '')
        why = '' if status == 0 else f'{fn.name} returned {status} on the server'
        return status, outs, why

    def _elements(self, fn: forwarding.Function, p: forwarding.Param,
                  d: forwarding.Decoded, i: int) -> object:
        """A cuDNN attribute's elements: the server's handles (a list) for handle types,
        else the bytes the app sent, or a buffer for the library to write."""
        status_of = forwarding.LIB_STATUS[fn.lib]
        size, is_handle = forwarding.element_size(
            forwarding.signed(d.words[p.size.type_param], 'i32'))
        if not size:
            raise LibError(status_of['invalid_value'], f'{fn.name}: unknown attribute type '
                           f'{forwarding.signed(d.words[p.size.type_param], "i32")}')
        buf = d.buffers[i] or b''
        if is_handle:
            ids = struct.unpack(f'<{len(buf) // 8}Q', buf[:len(buf) // 8 * 8])
            missing = [x for x in ids if x and x not in self.handles]
            if missing:
                raise LibError(status_of['bad_handle'], f'{fn.name}: element ids {missing[:4]} '
                               'are not live handles of this session')
            return [self.handles.get(x) for x in ids]
        if d.out_sizes[i] > 0:
            return bytearray(d.out_sizes[i])
        if forwarding.signed(d.words[p.size.type_param], 'i32') == VOID_PTR_ELEMENTS:
            # device addresses (a variant pack's data pointers, its workspace): the session's
            for (addr,) in struct.iter_unpack('<Q', buf[:len(buf) // 8 * 8]):
                if addr:
                    try:
                        self.memory.check(addr, 1, f'{fn.name} {p.name}')
                    except CudaError as e:
                        raise LibError(status_of['invalid_value'], str(e)) from None
        return buf

    def _destroy(self, hid: int) -> None:
        """Destroy handle ``hid`` with the destroy function matching its creator's
        (cublasLtMatmulDescCreate -> cublasLtMatmulDescDestroy, cudnnCreate -> cudnnDestroy)."""
        obj, creator = self.handles.pop(hid, None), self.kinds.pop(hid, '')
        fn = forwarding.by_name(creator.replace('Create', 'Destroy', 1))
        if obj is None or fn is None or len(fn.params) != 1 or fn.params[0].role != 'destroy':
            return
        try:
            status = int(self.backend.lib_call(fn, [obj]))
        except CudaError as e:
            status = -1
            log.debug('%s of id %d failed: %s', fn.name, hid, e)
        if status:
            log.debug('%s of id %d returned %d', fn.name, hid, status)

    def close(self) -> int:
        """Destroy what the app left alive (the session ends); returns how many."""
        left = list(self.handles)
        for hid in reversed(left):   # descriptors before the handles they were made with
            self._destroy(hid)
        return len(left)


def _show(a: object) -> str:
    if isinstance(a, (bytes, bytearray)):
        return f'<{len(a)}:{bytes(a[:24]).hex()}>'
    if isinstance(a, Holder):
        return f'new:{a.value}'
    return repr(a)
