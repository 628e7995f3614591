# Copyright 2026 rrto_ros authors. Apache-2.0.
"""One app process's session on the server: its own backend (CUDA context), executed in
order on its own thread, so a slow or failing session never blocks the others."""

from __future__ import annotations

import collections
import logging
import queue
import statistics
import struct
import threading
import time
from typing import Callable, Dict, Optional, Tuple

from rrto_ros.protocol import forwarding
from rrto_ros.protocol import ops
from rrto_ros.protocol import payload_codec
from rrto_ros.protocol.messages import frame_bytes
from rrto_ros.protocol.messages import OUTPUT
from rrto_ros.protocol.messages import Reply
from rrto_ros.protocol.messages import Request
from rrto_ros.protocol.ops import Op
from rrto_ros.server.address_book import AddressBook
from rrto_ros.server.backend import Backend
from rrto_ros.server.backend import CudaError
from rrto_ros.server.device_output import module_prints
from rrto_ros.server.device_output import StdoutCapture
from rrto_ros.server.lanes import LANE_IDENT
from rrto_ros.server.libcalls import LibError
from rrto_ros.server.libcalls import LibraryCalls
from rrto_ros.server.module_cache import ModuleCache
from rrto_ros.server.replay import payload_of
from rrto_ros.server.replay import ServerReplay

log = logging.getLogger(__name__)
RECENT_REPLIES = 64       # kept per session, for a client that lost its connection,
RECENT_BYTES = 8 << 20    # and the bytes they may hold (the newest one is always kept)
NEED_DATA = 'need_data'   # reply key: the server lacks this module, send its bytes
CONTENT_KEY = 'h'         # request key: a copy's content key (client/uploads.py)
HELD_KEY = 'held'         # hello reply key: which offered content keys the server holds
DIGEST = 32               # bytes of a sha256 digest in the hello's offer
MAX_OFFER = 1 << 16       # content keys a hello may offer


class ServerSession:
    def __init__(self, sid: bytes, ident: bytes, backend_factory: Callable[[], Backend],
                 cache: ModuleCache, send: Callable[[bytes, Reply], None],
                 on_closed: Callable[['ServerSession'], None], label: str = '',
                 replay_graphs: bool = True, lane_port: Optional[int] = None,
                 max_message_bytes: Optional[int] = None, max_module_bytes: int = 1 << 30,
                 memory_quota: int = 0, lane_key: Optional[bytes] = None) -> None:
        self.sid = sid
        self.lane_key = lane_key   # seals its replay lane (protocol/lane_seal.py)
        self.max_message_bytes = max_message_bytes
        self.max_module_bytes = max_module_bytes
        self._upload: Optional[Tuple[int, str, int, bytearray]] = None   # a module arriving
        self.ident = ident
        self.client = ''    # the robot's CURVE key (Z85) when the server authenticates them
        self.next_n = 0     # the number the client's next request carries (server.py)
        self.gap_told = -1
        self.recent: 'collections.OrderedDict[int, Tuple[Reply, int]]' = \
            collections.OrderedDict()
        self._recent_bytes = 0
        self.label = label
        self.lane_port = lane_port
        self.cache = cache
        self._send = send
        self._on_closed = on_closed
        self._factory = backend_factory
        self.backend: Optional[Backend] = None
        self.modules: Dict[int, object] = {}
        # Content the hello promised this session (kept even if the cache drops it).
        self.held: Dict[str, bytes] = {}
        self.memory = AddressBook()     # what this session's requests may name
        self.memory_quota = memory_quota   # bytes it may allocate; 0: no cap
        self.prints = False          # a module of it calls device printf: fd 1 is captured
        self.output = bytearray()    # printf text not yet sent with a reply
        self.last_seen = self.opened_at = time.monotonic()
        self.used = False      # a request other than hello and heartbeats arrived (server.py)
        self.executed = 0
        self.end_reason = ''       # why the server stopped taking its requests
        self.errors = 0
        self.closed = threading.Event()
        self._queue: 'queue.Queue[Optional[Request]]' = queue.Queue()
        self._busy = threading.Lock()     # held while a request executes, on any thread
        self._thread = threading.Thread(target=self._run, name=f'rrto-session-{sid.hex()[:8]}',
                                        daemon=True)
        self._handlers: Dict[int, Callable[[Request], tuple]] = {
            Op.HELLO: self._hello, Op.BYE: self._bye,
            Op.DEVICE_ATTRS: self._device_attrs, Op.MEM_GET_INFO: self._mem_get_info,
            Op.MALLOC: self._malloc, Op.FREE: self._free,
            Op.MEMCPY_HTOD: self._htod, Op.MEMCPY_DTOH: self._dtoh,
            Op.MEMCPY_DTOD: lambda r: self._none(self.backend.memcpy_dtod(*r.args[:4],
                                                                          bool(r.args[4]))),
            Op.MEMSET: lambda r: self._none(self.backend.memset(*r.args[:4], bool(r.args[4]))),
            Op.STREAM_CREATE: lambda r: ([self.backend.stream_create(
                r.args[0], _signed(r.args[1]))], []),
            Op.STREAM_DESTROY: lambda r: self._none(self.backend.stream_destroy(r.args[0])),
            Op.STREAM_SYNC: lambda r: self._none(self.backend.stream_sync(r.args[0])),
            Op.STREAM_QUERY: lambda r: self._ready(self.backend.stream_query(r.args[0])),
            Op.STREAM_WAIT_EVENT: lambda r: self._none(self.backend.stream_wait_event(
                *r.args[:3])),
            Op.EVENT_CREATE: lambda r: ([self.backend.event_create(r.args[0])], []),
            Op.EVENT_DESTROY: lambda r: self._none(self.backend.event_destroy(r.args[0])),
            Op.EVENT_RECORD: lambda r: self._none(self.backend.event_record(*r.args[:2])),
            Op.EVENT_SYNC: lambda r: self._none(self.backend.event_sync(r.args[0])),
            Op.EVENT_QUERY: lambda r: self._ready(self.backend.event_query(r.args[0])),
            Op.EVENT_ELAPSED: self._elapsed,
            Op.DEVICE_SYNC: lambda r: self._none(self.backend.device_sync()),
            Op.DEVICE_RESET: self._reset,
            Op.MODULE_LOAD: self._module_load, Op.FUNC_GET: self._func_get,
            Op.VAR_GET: self._var_get, Op.LAUNCH: self._launch,
            Op.REPLAY_LOAD: self._replay_load, Op.REPLAY_RUN: self._replay_run,
            Op.LIBCALL: self._libcall,
        }
        self.libs: Optional[LibraryCalls] = None   # made at the first library call
        self.replay = ServerReplay(self._run_template_entry,
                                   (lambda: self.backend) if replay_graphs else (lambda: None),
                                   self._guard)
        self._thread.start()

    def summary(self) -> dict:
        """What the session did, kept by the server after it ends."""
        passes = [x for t in self.replay.templates.values() for x in t.pass_times_s]
        return {'label': self.label, 'executed': self.executed, 'errors': self.errors,
                'replay_passes': len(passes),
                'replay_pass_us_median': statistics.median(passes) * 1e6 if passes else None,
                'graph_launches': self.replay.graph_launches,
                'replay_patches': self.replay.patches}

    # ----------------------------------------------------------- plumbing
    def submit(self, req: Request) -> None:
        self.last_seen = time.monotonic()
        self._queue.put(req)

    def try_inline(self, req: Request) -> Tuple[bool, Optional[Reply]]:
        """Run a replay range on the calling (I/O) thread when this session's thread is
        idle with nothing queued: it saves two thread hand-offs on the replay hot path.
        Returns (ran, reply); (False, None) when the request must be submitted instead (also
        for a session whose output is captured: the I/O thread must never wait for the
        capture another session holds)."""
        if req.op != Op.REPLAY_RUN or self.backend is None or self.prints or \
                not self._queue.empty() or not self._busy.acquire(blocking=False):
            return False, None
        try:
            self.last_seen = time.monotonic()
            self.backend.bind_thread()
            return True, self._execute(req)
        finally:
            self._busy.release()

    def close(self) -> None:
        self._queue.put(None)

    def remember(self, reply: Reply) -> None:
        """Keep the latest replies (the newest whatever its size, older ones within
        RECENT_BYTES): a client that lost its connection asks again."""
        size = sum(len(frame_bytes(f)) for f in reply.frames)
        self.recent[reply.seq] = (reply, size)
        self._recent_bytes += size
        while len(self.recent) > 1 and (len(self.recent) > RECENT_REPLIES or
                                        self._recent_bytes > RECENT_BYTES):
            self._recent_bytes -= self.recent.popitem(last=False)[1][1]

    def recent_reply(self, seq: int) -> Optional[Reply]:
        kept = self.recent.get(seq)
        return kept[0] if kept else None

    def _run(self) -> None:
        try:
            while True:
                req = self._queue.get()
                if req is None:
                    break
                with self._busy:
                    reply = self._execute(req)
                if reply is not None:
                    self.remember(reply)
                    self._send(req.route or self.ident, reply)
                if req.op == Op.BYE or (req.op == Op.HELLO and reply is not None and reply.err):
                    break
        finally:
            self._release()
            self._on_closed(self)

    def _release(self) -> None:
        self.recent.clear()
        if self.backend is not None:
            try:
                if self.libs is not None and self.libs.backend is self.backend:
                    left = self.libs.close()   # cuBLAS/cuDNN objects the app left
                    if left:
                        log.info('session %s: destroyed %d library handles the app left',
                                 self.label, left)
                self.backend.close()
            except Exception as e:  # a broken context must not kill the server
                log.warning('session %s: releasing its device state failed: %s', self.label, e)
            self.backend = None
        self.closed.set()

    def _execute(self, req: Request) -> Optional[Reply]:
        if not self.prints:
            return self._execute_plain(req)
        with StdoutCapture.capture(self.output):
            reply = self._execute_plain(req)
        if reply is not None and self.output and not (req.route or b'').startswith(LANE_IDENT):
            reply.frames.append(bytes(self.output))   # a lane's reply keeps it for later
            reply.extra[OUTPUT] = True
            self.output.clear()
        return reply

    def _execute_plain(self, req: Request) -> Optional[Reply]:
        try:
            handler = self._handlers.get(req.op)   # the decoder made op a number
            if handler is None:
                raise CudaError(ops.CUDA_ERROR_NOT_SUPPORTED, f'unknown op {req.op!r}')
            if self.backend is None and req.op != Op.HELLO:
                raise CudaError(ops.CUDA_ERROR_DEVICES_UNAVAILABLE, 'session has no device')
            self._restore(req)
            self._guard(req)
            out = handler(req)
            self.executed += req.op != Op.BYE   # as the client node counts its requests
            if req.quiet:
                return None
            return Reply(req.seq, 0, out[0], out[1], extra=out[2] if len(out) > 2 else {})
        except CudaError as e:
            self.errors += 1
            log.info('session %s: %s failed: %s', self.label, _op_name(req.op), e)
            return Reply(req.seq, e.code, e.res, message=str(e))
        except (IndexError, TypeError, ValueError, struct.error) as e:
            self.errors += 1
            return Reply(req.seq, ops.CUDA_ERROR_INVALID_VALUE,
                         message=f'malformed {_op_name(req.op)} request: {e}')
        except Exception as e:  # a backend bug must fail the call, not the session thread
            self.errors += 1
            log.exception('session %s: %s raised', self.label, _op_name(req.op))
            code = ops.CUDA_ERROR_LAUNCH_FAILURE if req.op == Op.LAUNCH else ops.CUDA_ERROR_UNKNOWN
            return Reply(req.seq, code, message=f'{_op_name(req.op)} failed on the server: '
                         f'{type(e).__name__}: {e}')

    @staticmethod
    def _none(_: object) -> Tuple[list, list]:
        return [], []

    @staticmethod
    def _ready(done: bool) -> Tuple[list, list]:
        if not done:
            raise CudaError(ops.CUDA_ERROR_NOT_READY, 'not ready')
        return [], []

    def _restore(self, req: Request) -> None:
        """Give ``req`` its payload as the app sent it: decompress a compressed frame, or
        take a copy sent by content key from what the hello promised."""
        if payload_codec.describes(req.extra):
            codec, raw_len = payload_codec.pop_header(req.extra)
            if len(req.frames) != 1:
                raise payload_codec.PayloadError(f'a compressed request carries one frame, '
                                                 f'not {len(req.frames)}')
            limit = self.max_message_bytes if self.max_message_bytes is not None else 1 << 30
            req.frames = [payload_codec.decompress(codec, frame_bytes(req.frames[0]), raw_len,
                                                   limit)]
        key = req.extra.get(CONTENT_KEY)
        if key is None:
            return
        if req.op != Op.MEMCPY_HTOD or not isinstance(key, str):
            raise ValueError(f'a content key goes with MEMCPY_HTOD only, as text (got '
                             f'{_op_name(req.op)} with {key!r:.40})')
        if not req.frames:
            data = self.held.get(key)
            if data is None:
                raise CudaError(ops.CUDA_ERROR_INVALID_VALUE, f'copy by content key '
                                f'{key[:16]}... that this session was not offered at its '
                                'hello: the client node must send the bytes')
            req.frames = [data]

    # ----------------------------------------------------------- handlers
    def _hello(self, req: Request) -> tuple:
        try:
            self.backend = self._factory()
        except CudaError:
            raise
        except Exception as e:  # no driver, no device, out of memory...
            raise CudaError(ops.CUDA_ERROR_NO_DEVICE,
                            f'the server could not open its device: {e}') from None
        extra = {'sid': self.sid, 'backend': self.backend.name}
        if req.frames:
            extra[HELD_KEY] = self._hold(bytes(frame_bytes(req.frames[0])))
        if self.lane_port is not None and self.lane_key is not None:
            extra['lane_port'] = self.lane_port
            extra['lane_key'] = self.lane_key   # inside CURVE when security is curve
        if self.max_message_bytes is not None:
            extra['max_message_bytes'] = self.max_message_bytes
        return [1], [], extra

    def _hold(self, offer: bytes) -> bytes:
        """Keep for this session what the content store holds of the offered keys, up to
        the store's memory bound (what is not kept travels as bytes); one byte per key, 1
        if held."""
        if len(offer) % DIGEST or len(offer) > MAX_OFFER * DIGEST:
            raise ValueError(f'the hello offers {len(offer)} bytes of content keys, not a '
                             f'multiple of {DIGEST} up to {MAX_OFFER} keys')
        held = bytearray(len(offer) // DIGEST)
        budget = self.cache.max_mem_bytes
        for i in range(len(held)):
            key = offer[i * DIGEST:(i + 1) * DIGEST].hex()
            data = self.held.get(key) or self.cache.get(key)
            if data is not None and len(data) <= budget:
                budget -= len(data)
                self.held[key] = data
                held[i] = 1
        return bytes(held)

    def _bye(self, req: Request) -> Tuple[list, list]:
        return [], []

    def _device_attrs(self, req: Request) -> Tuple[list, list]:
        raw = bytes(frame_bytes(req.frames[0])) if req.frames else b''
        ids = struct.unpack(f'<{len(raw) // 4}i', raw[:len(raw) // 4 * 4])
        info = self.backend.device_info(ids)
        name = info.name.encode()[:255].ljust(256, b'\0')
        out = struct.pack(f'<{len(ids)}i', *info.attrs) + name + info.uuid[:16].ljust(16, b'\0')
        return [info.total_mem], [out]

    def _mem_get_info(self, req: Request) -> Tuple[list, list]:
        return list(self.backend.mem_get_info()), []

    # ----------------------------------------------------------- device memory
    def _guard(self, req: Request) -> None:
        """The addresses ``req`` names must be this session's memory (a replay template's
        requests included: a client may send any template; they are checked when they run
        or are captured, since a template may allocate what it then uses)."""
        op, a, book = req.op, req.args, self.memory
        if op == Op.MEMCPY_HTOD:
            count = req.extra['var_len'] if 'var_len' in req.extra else \
                (frame_bytes(req.frames[0]).nbytes if req.frames else 0)
            book.check(a[0], count, 'cudaMemcpy to the device')
        elif op == Op.MEMCPY_DTOH:
            book.check(a[0], a[1], 'cudaMemcpy from the device')
        elif op == Op.MEMCPY_DTOD:
            book.check(a[0], a[2], 'cudaMemcpy (destination)')
            book.check(a[1], a[2], 'cudaMemcpy (source)')
        elif op == Op.MEMSET:
            book.check(a[0], a[2], 'cudaMemset')

    def _malloc(self, req: Request) -> Tuple[list, list]:
        if self.memory_quota and self.memory.allocated + req.args[0] > self.memory_quota:
            raise CudaError(ops.CUDA_ERROR_MEMORY_ALLOCATION,
                            f'cudaMalloc({req.args[0]}): the server lets one session allocate '
                            f'{self.memory_quota} bytes (session_memory_bytes), '
                            f'{self.memory.allocated} are in use')
        ptr = self.backend.malloc(req.args[0])
        self.memory.add(ptr, req.args[0])
        return [ptr], []

    def _free(self, req: Request) -> Tuple[list, list]:
        if req.args[0]:            # cudaFree(NULL) does nothing
            self.memory.remove(req.args[0])
        self.backend.free(req.args[0])
        return [], []

    def _htod(self, req: Request) -> Tuple[list, list]:
        data = frame_bytes(req.frames[0]) if req.frames else memoryview(b'')
        key = req.extra.get(CONTENT_KEY)
        if key is not None and key not in self.held:   # new content: keep it for next time
            self.cache.put(key, data)
        self.backend.memcpy_htod(req.args[0], data, req.args[1], bool(req.args[2]))
        return [], []

    def _dtoh(self, req: Request) -> Tuple[list, list]:
        src, count, stream, is_async = req.args[:4]
        return [], [self.backend.memcpy_dtoh(src, count, stream, bool(is_async))]

    def _elapsed(self, req: Request) -> Tuple[list, list]:
        ms = self.backend.event_elapsed(req.args[0], req.args[1])
        return [struct.unpack('<I', struct.pack('<f', ms))[0]], []

    def _reset(self, req: Request) -> Tuple[list, list]:
        self.backend.reset()
        self.modules.clear()
        self.memory.clear()
        return [], []

    def _module_load(self, req: Request) -> tuple:
        """MODULE_LOAD [id] + hash: load a cached module, or ask for its bytes (need_data);
        MODULE_LOAD [id, offset, total] + hash + a chunk: its bytes, in order, loaded with
        the last chunk."""
        module_id = req.args[0]
        key = req.extra.get('hash')
        if not isinstance(key, str):
            raise ValueError('MODULE_LOAD needs a content hash')
        if req.frames:
            image = self._take_chunk(module_id, key, req)
            if image is None:
                return [0], []
        else:
            image = self.cache.get(key)
            if image is None:
                return [0], [], {NEED_DATA: True}
        self.modules[module_id] = self.backend.module_load(image)
        self.prints = self.prints or module_prints(image)
        return [1], []

    def _take_chunk(self, module_id: int, key: str, req: Request) -> Optional[bytes]:
        """Add a chunk to the module being uploaded; its image once complete."""
        chunk = frame_bytes(req.frames[0])
        offset, total = req.args[1:3] if len(req.args) >= 3 else (0, chunk.nbytes)
        if total > self.max_module_bytes:
            raise CudaError(ops.CUDA_ERROR_INVALID_VALUE, f'module of {total} bytes exceeds '
                            f'the server limit max_module_bytes ({self.max_module_bytes})')
        if offset == 0:
            self._upload = (module_id, key, total, bytearray())
        upload = self._upload
        if upload is None or upload[:3] != (module_id, key, total) or \
                offset != len(upload[3]) or offset + chunk.nbytes > total:
            self._upload = None
            raise CudaError(ops.CUDA_ERROR_INVALID_VALUE, f'module {module_id}: chunk of '
                            f'{chunk.nbytes} bytes at {offset} does not continue its upload')
        upload[3].extend(chunk)
        if len(upload[3]) < total:
            return None
        self._upload = None
        return self.cache.put(key, upload[3])

    def _module(self, module_id: int) -> object:
        module = self.modules.get(module_id)
        if module is None:
            raise CudaError(ops.CUDA_ERROR_INVALID_KERNEL_IMAGE,
                            f'module {module_id} was not loaded in this session')
        return module

    def _func_get(self, req: Request) -> Tuple[list, list]:
        name = bytes(frame_bytes(req.frames[0])).decode()
        handle, layout = self.backend.function_get(self._module(req.args[0]), name)
        flat = [v for pair in layout for v in pair]
        return [handle, len(layout)], [struct.pack(f'<{len(flat)}I', *flat)]

    def _var_get(self, req: Request) -> Tuple[list, list]:
        name = bytes(frame_bytes(req.frames[0])).decode()
        addr = self.backend.var_get(self._module(req.args[0]), name, req.args[1])
        self.memory.add(addr, req.args[1], freeable=False)
        return [addr], []

    def _replay_load(self, req: Request) -> Tuple[list, list]:
        seq_id, start = req.args[:2]
        self.replay.load(seq_id, start, bytes(frame_bytes(req.frames[0])))
        return [], []

    def _replay_run(self, req: Request) -> tuple:
        seq_id, start, end = req.args[:3]
        return self.replay.run(seq_id, start, end, payload_of(req))

    def _run_template_entry(self, req: Request) -> tuple:
        handler = self._handlers.get(req.op)
        if handler is None or req.op in (Op.REPLAY_LOAD, Op.REPLAY_RUN):
            raise CudaError(ops.CUDA_ERROR_NOT_SUPPORTED, f'{_op_name(req.op)} cannot be replayed')
        self._guard(req)   # a template holds the client's addresses too
        return handler(req)

    def _libcall(self, req: Request) -> Tuple[list, list]:
        if self.libs is None or self.libs.backend is not self.backend:
            self.libs = LibraryCalls(self.backend, self.memory)
        data = bytes(frame_bytes(req.frames[0])) if req.frames else b''
        try:
            status, outs, why = self.libs.execute(data)
        except LibError as e:
            status, outs, why = e.status, b'', str(e)
        if status:
            cudart = forwarding.by_name(forwarding.call_name(data)).lib == 'cudart'
            raise CudaError(status if cudart else ops.CUDA_ERROR_UNKNOWN, why, res=[status])
        return [0], [outs] if outs else []

    def _launch(self, req: Request) -> Tuple[list, list]:
        fn, gx, gy, gz, bx, by, bz, shmem, stream = req.args[:9]
        params = frame_bytes(req.frames[0]) if req.frames else memoryview(b'')
        self.backend.launch(fn, (gx, gy, gz), (bx, by, bz), shmem, stream, params)
        return [], []


def _signed(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _op_name(op: object) -> str:
    try:
        return Op(op).name
    except ValueError:
        return repr(op)
