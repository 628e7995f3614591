# Copyright 2026 rrto_ros authors. Apache-2.0.
"""Fuzz targets for every decoder an outsider or a broken app reaches (``bench/fuzz.py``
runs them; ``test/test_fuzz.py`` runs a short bounded run of each).

A target takes one input (bytes) and returns normally whatever the bytes are: the clean
rejections (ProtocolError, WireError, LaneClosed) are the expected outcome of a bad input;
any other exception is a bug and ends the run as a crash. The targets are
    server      the server's request decoding and its session dispatch (an emu session
                executes every request that decodes; its replies must decode on the client)
    lane        the replay lane on the server: hello, sealed records (lane_seal) and
                the requests they hold, then dispatch
    agent       the client node's local-socket framing and request checks
    reply       the client node's decoding of the server's replies

Engines: atheris (coverage-guided, libFuzzer's flags) when it is installed, else a seeded
mutation loop (no coverage) that prints libFuzzer-style progress with the same flags:
``python -m rrto_ros.bench.fuzz_targets TARGET -runs=N -seed=S [corpus dirs]``.
"""

from __future__ import annotations

import os
import random
import resource
import socket
import struct
import sys
import time
from typing import Callable, Dict, List, Optional

try:
    import atheris
except ImportError:      # the fallback engine below needs nothing
    atheris = None

if atheris is not None and __name__ == '__main__':   # a fuzzing run: coverage of rrto_ros
    with atheris.instrument_imports(include=['rrto_ros']):
        import msgpack
        from rrto_ros.protocol import agent_wire
        from rrto_ros.protocol import lane_seal
        from rrto_ros.protocol import lane_wire
        from rrto_ros.protocol import messages
        from rrto_ros.protocol.ops import Op
        from rrto_ros.server import lanes
        from rrto_ros.server.backend import make_backend
        from rrto_ros.server.module_cache import ModuleCache
        from rrto_ros.server.session import ServerSession
else:
    import msgpack
    from rrto_ros.protocol import agent_wire
    from rrto_ros.protocol import lane_seal
    from rrto_ros.protocol import lane_wire
    from rrto_ros.protocol import messages
    from rrto_ros.protocol.ops import Op
    from rrto_ros.server import lanes
    from rrto_ros.server.backend import make_backend
    from rrto_ros.server.module_cache import ModuleCache
    from rrto_ros.server.session import ServerSession

EMU_BYTES = 64 << 20      # device memory of the fuzzed session (emu)
RESET_EVERY = 2000        # inputs after which the fuzzed session starts afresh
MAX_LEN = 4096


class Reader:
    """Consumes an input as the values a structured request is built from."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def byte(self) -> int:
        if self.pos >= len(self.data):
            return 0
        self.pos += 1
        return self.data[self.pos - 1]

    def u64(self) -> int:
        raw = self.take(8).ljust(8, b'\0')
        return struct.unpack('<Q', raw)[0]

    def take(self, n: int) -> bytes:
        out = self.data[self.pos:self.pos + n]
        self.pos += len(out)
        return out

    def rest(self) -> bytes:
        return self.take(len(self.data))


class FuzzSession:
    """An emu session whose requests run on the fuzzing thread (a bug raises here, where
    the fuzzer sees it, instead of ending a worker thread)."""

    def __init__(self) -> None:
        self.inputs = 0
        self.session: Optional[ServerSession] = None
        self.cache = ModuleCache(None, max_mem_bytes=1 << 20)
        self.fresh()

    def fresh(self) -> None:
        if self.session is not None:
            self.session.close()
            self.session.closed.wait(5)
        self.session = ServerSession(os.urandom(16), b'fuzz', lambda: make_backend('emu', 0),
                                     self.cache, lambda ident, reply: None,
                                     lambda s: None, 'fuzz', True, 7000, 1 << 20, 1 << 20)
        hello = self.session._execute(messages.Request(b'', 0, Op.HELLO, [1]))
        assert hello is not None and hello.err == 0, hello
        self.session.backend.mem.capacity = EMU_BYTES

    def run(self, req: messages.Request) -> None:
        self.inputs += 1
        if self.inputs % RESET_EVERY == 0:
            self.fresh()
        if req.op in (Op.HELLO, Op.BYE, messages.PING):   # the server's own, not a session's
            return
        reply = self.session._execute(req)
        if reply is not None:   # what the server sends must be what its clients read
            messages.decode_reply(messages.encode_reply(reply))
            assert -(1 << 31) <= reply.err < 1 << 31

    def pointers(self) -> List[int]:
        return self.session.backend.mem.allocations() if self.session.backend else []


_SESSION: Optional[FuzzSession] = None


def _session() -> FuzzSession:
    global _SESSION
    if _SESSION is None:
        _SESSION = FuzzSession()
    return _SESSION


_ODD_OPS = [[1], {'a': 1}, 1.5, True, None, 'x', b'\x05', -1, 1 << 40]


def _structured_request(r: Reader, sid: bytes) -> List[bytes]:
    """A well-formed header (mostly) with fuzzed values, to reach the handlers."""
    pick = r.byte()
    ops = list(Op)
    op = _ODD_OPS[pick % len(_ODD_OPS)] if pick >= 250 else int(ops[pick % len(ops)])
    ptrs = _session().pointers()
    args = []
    for _ in range(r.byte() % 12):
        kind = r.byte() % 4
        if kind == 0 and ptrs:
            args.append(ptrs[r.byte() % len(ptrs)] + r.byte())
        elif kind == 1:
            args.append(r.byte())
        else:
            args.append(r.u64())
    head = {'v': messages.PROTOCOL_VERSION, 'sid': sid, 'seq': r.byte(), 'op': op, 'a': args,
            'q': bool(r.byte() & 1)}
    if r.byte() & 1:
        head['hash'] = r.take(r.byte()).hex()
    frames = [r.rest()] if r.byte() & 1 else []
    return [msgpack.packb(head, use_bin_type=True)] + frames


def target_server(data: bytes) -> None:
    r = Reader(data)
    if r.byte() & 1:
        frames = _structured_request(r, _session().session.sid)
    else:   # raw frames: a length byte splits the header from one bulk frame
        cut = r.byte()
        rest = r.rest()
        frames = [rest[:cut], rest[cut:]] if cut < len(rest) else [rest]
    try:
        req = messages.decode_request(frames)
    except messages.ProtocolError:
        return
    _session().run(req)


class _LaneSink:
    """Stands for a lane's socket: keeps the last bytes the server sent (never a full
    socket buffer, however many lanes a run makes)."""

    last = b''

    def setblocking(self, flag: bool) -> None:
        pass

    def setsockopt(self, *args) -> None:
        pass

    def fileno(self) -> int:
        return -1

    def sendmsg(self, buffers) -> int:
        self.last = b''.join(bytes(b) for b in buffers)
        return len(self.last)


LANE_KEY = b'\x42' * lane_seal.KEY_BYTES     # the fuzzed session's lane key
APP_RANDOM = b'\x24' * lane_seal.RANDOM_BYTES


def _proven_lane() -> 'tuple[lanes.ServerLane, lane_seal.Sealer]':
    """A lane past its authentication, and the sealer of the app's records on it."""
    sink = _LaneSink()
    lane = lanes.ServerLane(sink, 1 << 20)
    lane._feed(memoryview(lane_wire.LANE_HELLO + _session().session.sid + APP_RANDOM))
    lane.greet(LANE_KEY)
    app = lane_seal.Sealer(lane_seal.connection_key(LANE_KEY, APP_RANDOM, sink.last),
                           lane_seal.TO_SERVER)
    lane._feed(memoryview(app.seal(lane_seal.PROOF)))
    return lane, app


def target_lane(data: bytes) -> None:
    """Mode 0: raw bytes from the first byte on (the hello, records that do not
    authenticate); 1: bytes after an authenticated hello (record framing); 2: frames the
    fuzzer seals, one per length-prefixed piece (the requests inside records)."""
    r = Reader(data)
    mode = r.byte() % 3
    step = 1 + r.byte()
    body = r.rest()
    try:
        if mode == 0:
            lane = lanes.ServerLane(_LaneSink(), 1 << 20)
            chunks = [body[i:i + step] for i in range(0, len(body), max(step, len(body) // 64))]
        else:
            lane, app = _proven_lane()
            if mode == 1:
                chunks = [body[i:i + step]
                          for i in range(0, len(body), max(step, len(body) // 64))]
            else:
                chunks, at = [], 0
                while at < len(body) and len(chunks) < 64:
                    n = body[at]
                    chunks.append(app.seal(body[at + 1:at + 1 + n]))
                    at += 1 + n
        for chunk in chunks:
            for lreq in lane._feed(memoryview(chunk)):
                _session().run(messages.Request(
                    lane.sid, lreq.seq, Op.REPLAY_RUN, [lreq.seq_id, lreq.start, lreq.end],
                    [lreq.payload] if lreq.payload else [], lreq.quiet))
    except (lanes.LaneClosed, messages.ProtocolError):
        return


_AGENT_PAIR: List[socket.socket] = []


def target_agent(data: bytes) -> None:
    """The bytes arrive on the client node's end of an interposer connection."""
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        a.sendall(data)
        a.shutdown(socket.SHUT_WR)
        while True:
            try:
                req = agent_wire.read_request(b)
            except agent_wire.BadRequest:
                continue          # answered with an error; the connection goes on
            except agent_wire.WireError:
                return            # the connection is over
            assert len(req.args) == agent_wire.ops.AGENT_ARGS[Op(req.op)]
    finally:
        a.close()
        b.close()


def target_reply(data: bytes) -> None:
    r = Reader(data)
    cut = r.byte()
    rest = r.rest()
    frames = [rest[:cut], rest[cut:]] if cut < len(rest) else [rest]
    try:
        rep = messages.decode_reply(frames)
    except messages.ProtocolError:
        return
    # what the client node then does with it: answer the app
    struct.pack('<i', rep.err)
    for v in rep.res:
        struct.pack('<Q', v & 0xFFFFFFFFFFFFFFFF)


TARGETS: Dict[str, Callable[[bytes], None]] = {
    'server': target_server, 'lane': target_lane, 'agent': target_agent,
    'reply': target_reply,
}


def seeds(target: str) -> List[bytes]:
    """Valid inputs each target starts from."""
    sid = b'\x11' * 16
    head = {'v': messages.PROTOCOL_VERSION, 'sid': sid, 'seq': 1, 'op': int(Op.MALLOC),
            'a': [64], 'q': False}
    raw = msgpack.packb(head, use_bin_type=True)
    if target == 'server':
        rows = msgpack.packb([[int(Op.MEMSET), [0, 0, 16, 0, 0], b'', 0]], use_bin_type=True)
        load = msgpack.packb(dict(head, op=int(Op.REPLAY_LOAD), a=[1, 0]), use_bin_type=True)
        return [b'\0' + bytes([len(raw)]) + raw, b'\0' + bytes([len(load)]) + load + rows,
                bytes([1, int(Op.MALLOC), 1, 1, 64, 0, 0, 0, 0]),
                bytes([1, int(Op.MEMCPY_HTOD), 3, 0, 0, 1, 0, 1, 0, 0, 1]) + b'data']
    if target == 'lane':
        req = lane_wire.encode_request(1, 1, 0, 1, b'payload', quiet=False)
        barrier = lane_wire.encode_request(2, 1, 1, 1)
        return [b'\x02\x10' + bytes([len(req)]) + req + bytes([len(barrier)]) + barrier,
                b'\x00\x03' + lane_wire.LANE_HELLO + sid + APP_RANDOM,
                b'\x01\x08' + lane_seal.LEN.pack(len(req) + lane_seal.TAG_BYTES) + req]
    if target == 'agent':
        return [agent_wire.encode_request(Op.HELLO, [1, agent_wire.PROTO_VERSION], b'/bin/x'),
                agent_wire.encode_request(Op.MODULE_LOAD, [1, 0, 4], b'abcd'),
                agent_wire.encode_request(Op.REPLAY_DIVERGE, [1, 2, 3], b'why', 1)]
    rep = msgpack.packb({'seq': 1, 'err': 0, 'r': [1, 2], 'm': 'x', 'sid': sid})
    return [bytes([len(rep)]) + rep + b'bulk']


def c_seeds() -> List[bytes]:
    """Valid inputs of the C harness (``bench/c/fuzz/parsers.c``): the first byte picks the
    parser (0 replay table, 1 lane description, 2 client node replies, 3 lane replies)."""
    from rrto_ros.client.replay_table import compile_table

    class Call:
        def __init__(self, op, args, key=b'', var_len=0, result=(), err=0):
            self.op, self.args, self.key_data, self.var_len = op, tuple(args), key, var_len
            self.result, self.err = tuple(result), err
    calls = [Call('MEMCPY_HTOD', [0x7E0000000000, 0, 1], var_len=16),
             Call('LAUNCH', [1] * 9, key=b'\x01' * 24),
             Call('MEMCPY_DTOH', [0x7E0000000000, 16, 0, 0])]
    table = compile_table([(1, calls), (2, calls[1:])])
    w = agent_wire
    reply = w.REP.pack(w.MAGIC, 0, 1, 4, 2, w.R_TABLE) + struct.pack('<Q', 1) + b'abcd' + \
        struct.pack('<I', len(table)) + table
    message = w.REP.pack(w.MAGIC, 5, 0, 5, 2, w.R_MESSAGE) + b'hello'
    frames = [b''.join(lane_wire.encode_reply(5, 700, [], b'', 'a quiet range failed')),
              b''.join(lane_wire.encode_reply(1000, 0, [1, 2], b'data', 'done'))]
    lane = b''.join(struct.pack('<I', len(f)) + f for f in frames)
    desc = lane_wire.describe('127.0.0.1', 7000, 1.0, b'\1' * 16, b'\2' * 32, 'libsodium.so.23')
    return [b'\0' + table, b'\1' + desc, b'\2' + reply + message, b'\3' + lane]


# ----------------------------------------------------------- engines
def _rss_mb() -> int:
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * resource.getpagesize() >> 20


def _measured(fn: Callable[[bytes], None], runs: int) -> Callable[[bytes], None]:
    """``fn`` printing the process's current RSS after a warm-up and from then on at each
    power of two (``rss_at_input N: M``): the runner takes the growth from these."""
    warm = max(1, runs // 10)   # allocator arenas, caches and the corpus settle first
    count = [0]

    def one(data: bytes) -> None:
        fn(data)
        count[0] += 1
        n = count[0]
        if n == warm or n == runs or (n > warm and n & (n - 1) == 0):
            print(f'rss_at_input {n}: {_rss_mb()}', flush=True)
    return one


def _mutate(data: bytes, rng: random.Random, corpus: List[bytes]) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        at = rng.randrange(len(b) + 1)
        kind = rng.randrange(7)
        if kind == 0 and b:
            b[min(at, len(b) - 1)] ^= 1 << rng.randrange(8)
        elif kind == 1 and b:
            b[min(at, len(b) - 1)] = rng.randrange(256)
        elif kind == 2:
            v = rng.choice((0, 1, 0x7F, 0x80, 0xFF, 0x7FFFFFFF, 0xFFFFFFFF, 1 << 63, -1))
            b[at:at + 8] = (v & 0xFFFFFFFFFFFFFFFF).to_bytes(8, 'little')[:rng.choice(
                (1, 2, 4, 8))]
        elif kind == 3:
            b[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif kind == 4 and b:
            del b[at:at + rng.randint(1, 16)]
        elif kind == 5 and corpus:
            other = rng.choice(corpus)
            b[at:] = other[rng.randrange(len(other) + 1):]
        else:
            del b[at:]
    return bytes(b[:MAX_LEN])


def run_plain(target: str, runs: int, seed: int, corpus_dirs: List[str],
              timeout_s: float) -> int:
    """The fallback engine: seeded mutations of the seeds and of some mutants."""
    import signal
    fn = _measured(TARGETS[target], runs)
    corpus = seeds(target)
    for d in corpus_dirs:
        for name in sorted(os.listdir(d)) if os.path.isdir(d) else []:
            with open(os.path.join(d, name), 'rb') as f:
                corpus.append(f.read())
    rng = random.Random(seed)

    def hang(*_):
        raise TimeoutError(f'an input ran for more than {timeout_s:g} s')
    signal.signal(signal.SIGALRM, hang)
    print(f'INFO: plain mutation engine (no coverage), seed {seed}, {len(corpus)} seeds',
          flush=True)
    print(f'#0 INITED rss: {_rss_mb()}Mb', flush=True)
    t0 = time.monotonic()
    for n in range(1, runs + 1):
        data = _mutate(rng.choice(corpus), rng, corpus)
        signal.setitimer(signal.ITIMER_REAL, timeout_s)
        try:
            fn(data)
        except TimeoutError:
            print(f'ERROR: libFuzzer: timeout after {timeout_s:g} s on input {data.hex()}')
            return 77
        except BaseException:
            import traceback
            traceback.print_exc()
            print(f'==ERROR: crash on input {data.hex()}', flush=True)
            return 1
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        if rng.random() < 1 / 64 and len(corpus) < 4096:
            corpus.append(data)
        if n & (n - 1) == 0 or n == runs:
            print(f'#{n} pulse rss: {_rss_mb()}Mb', flush=True)
    print(f'Done {runs} runs in {int(time.monotonic() - t0)} second(s)', flush=True)
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv if argv is None else argv)
    if len(argv) < 2 or argv[1] not in TARGETS:
        print(f'usage: {argv[0]} TARGET [-runs=N -seed=S -timeout=S corpus...]; targets: '
              f'{", ".join(TARGETS)}', file=sys.stderr)
        return 2
    target, flags = argv[1], argv[2:]
    opts = {f.split('=', 1)[0]: f.split('=', 1)[1] for f in flags if f.startswith('-') and
            '=' in f}
    dirs = [f for f in flags if not f.startswith('-')]
    runs = int(opts.get('-runs', 100000))
    _session()   # set up before the first input (not counted as growth)
    if atheris is None or os.environ.get('RRTO_FUZZ_ENGINE') == 'plain':
        return run_plain(target, runs, int(opts.get('-seed', 1)), dirs,
                         float(opts.get('-timeout', 10)))
    for d in dirs:   # the seeds join the corpus libFuzzer reads
        for i, s in enumerate(seeds(target)):
            with open(os.path.join(d, f'seed-{i}'), 'wb') as f:
                f.write(s)
    atheris.Setup([argv[0]] + flags + [f'-max_len={MAX_LEN}'], _measured(TARGETS[target], runs))
    atheris.Fuzz()
    return 0


if __name__ == '__main__':
    sys.exit(main())
