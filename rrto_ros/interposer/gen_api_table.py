# Copyright 2026 rrto_ros authors. Apache-2.0.
"""Generate the interposer's tables of CUDA runtime, driver and library functions.

Writes into the build directory:
- ``rrto_api_ids.h``: ``RRTO_API_LIST(X)``, one entry per runtime API function (every
  function ``cuda_runtime_api.h`` declares plus the ``__cuda*`` registration and launch
  entry points), and the ``RRTO_ID_<name>`` enum used for call counting.
- ``rrto_unsupported.c``: for each declared function the interposer does not implement, a
  definition with the header's exact prototype that counts the call and, in trace mode,
  forwards it to the real runtime; in remote mode it reports the function by name and
  returns ``cudaErrorNotSupported``. So no CUDA call can silently reach the local runtime.

The functions are those the runtime library itself exports: the header read as an app sees
it, plus what the runtime's own build declares (``__CUDA_API_VERSION_INTERNAL``): the
per-thread default stream variants (``*_ptds``, ``*_ptsz``) and the older ABI of each
function the header renames (CUDA 12: ``cudaGetDeviceProperties`` is a macro for
``cudaGetDeviceProperties_v2``, and the library keeps the old name for old binaries). A
hand-written definition is matched to the symbol it really defines after the header's
macros, so the table is right for CUDA 12 and 13 headers alike.
- ``rrto_driver_table.h`` (from ``cuda.h``): every driver function, for the lookups in
  driver_api.c; those it does not answer fail by name with ``CUDA_ERROR_NOT_SUPPORTED``.
- ``rrto_vendor_stubs.c`` (from the committed ``vendor_api/<lib>.txt``): every cuBLAS,
  cuBLASLt and cuDNN function, failing by name with the library's NOT_SUPPORTED status.
  ``--vendor-include DIR...`` regenerates those lists from the vendor headers.
"""

from __future__ import annotations

import argparse
import functools
import pathlib
import re
import subprocess
import tempfile
from typing import Dict, List, NamedTuple, Sequence, Tuple

HERE = pathlib.Path(__file__).resolve().parent

# Entry points that nvcc-generated code calls; not in cuda_runtime_api.h.
PRIVATE_ENTRY_POINTS = [
    '__cudaRegisterFatBinary', '__cudaRegisterFatBinaryEnd', '__cudaUnregisterFatBinary',
    '__cudaInitModule', '__cudaRegisterFunction', '__cudaRegisterVar',
    '__cudaRegisterManagedVar', '__cudaPushCallConfiguration', '__cudaPopCallConfiguration',
    '__cudaGetKernel', '__cudaLaunchKernel', '__cudaLaunchKernel_ptsz',
]
# Graphics interop functions libcudart exports whose headers need GL, EGL or VDPAU headers
# (not part of the toolkit): they fail by name (their arguments are never read).
INTEROP_FUNCTIONS = [
    'cudaEGLStreamConsumerAcquireFrame', 'cudaEGLStreamConsumerConnect',
    'cudaEGLStreamConsumerConnectWithFlags', 'cudaEGLStreamConsumerDisconnect',
    'cudaEGLStreamConsumerReleaseFrame', 'cudaEGLStreamProducerConnect',
    'cudaEGLStreamProducerDisconnect', 'cudaEGLStreamProducerPresentFrame',
    'cudaEGLStreamProducerReturnFrame', 'cudaEventCreateFromEGLSync', 'cudaGLGetDevices',
    'cudaGLMapBufferObject', 'cudaGLMapBufferObjectAsync', 'cudaGLRegisterBufferObject',
    'cudaGLSetBufferObjectMapFlags', 'cudaGLSetGLDevice', 'cudaGLUnmapBufferObject',
    'cudaGLUnmapBufferObjectAsync', 'cudaGLUnregisterBufferObject',
    'cudaGraphicsEGLRegisterImage', 'cudaGraphicsGLRegisterBuffer',
    'cudaGraphicsGLRegisterImage', 'cudaGraphicsResourceGetMappedEglFrame',
    'cudaGraphicsVDPAURegisterOutputSurface', 'cudaGraphicsVDPAURegisterVideoSurface',
    'cudaVDPAUGetDevice', 'cudaVDPAUSetVDPAUDevice',
]
DECL = re.compile(r'extern\s+((?:__attribute__\s*\(\(.*?\)\)\s*)*)([A-Za-z_][\w\s\*]*?)\s*'
                  r'\b(cuda\w+)\s*\(([^;]*?)\)\s*;', re.S)
DEFINITION = re.compile(r'^[A-Za-z_][\w \*]*?\b((?:__)?cuda\w+)\s*\([^;]*?\)\s*\{',
                        re.M | re.S)


VENDOR_LOCAL = re.compile(r'^[a-z][\w \*]*?\b((?:cublas|cudnn)\w*)\s*\([^;]*?\)\s*\{', re.M)
INTERNAL = '__CUDA_API_VERSION_INTERNAL'   # what the runtime's own build defines
RENAMED = re.compile(r'^rrto_symbol_(\d+)\s+(\w+)\s*;', re.M)


def declarations(include_dir: pathlib.Path, cc: str = 'gcc', internal: bool = False
                 ) -> List[Tuple[str, str, str]]:
    """(return type, name, parameter list) of every function the runtime header declares:
    as an app sees it, or (``internal``) as the runtime's own build sees it."""
    src = (f'#define {INTERNAL} 1\n' if internal else '') + '#include <cuda_runtime_api.h>\n'
    out = preprocess(src, [include_dir], cc)
    seen: Dict[str, Tuple[str, str, str]] = {}
    for _attrs, ret, name, params in DECL.findall(out):
        seen.setdefault(name, (' '.join(ret.split()), name, ' '.join(params.split())))
    return list(seen.values())


def implemented(sources: Sequence[pathlib.Path]) -> set:
    """Names of the runtime functions the hand-written sources define (as written)."""
    names = set()
    for path in sources:
        text = path.read_text()
        names.update(m.group(1) for m in DEFINITION.finditer(text))
    return names


def symbols(include_dir: pathlib.Path, names: Sequence[str], cc: str = 'gcc'
            ) -> Dict[str, str]:
    """name -> the symbol a definition of it defines after the header's macros (CUDA 12:
    ``cudaGetDeviceProperties`` -> ``cudaGetDeviceProperties_v2``; most map to themselves)."""
    order = sorted(names)
    lines = [f'rrto_symbol_{i} {n} ;\n' for i, n in enumerate(order)]
    src = '#include <cuda_runtime_api.h>\n' + ''.join(lines)
    found = {int(i): sym for i, sym in RENAMED.findall(preprocess(src, [include_dir], cc))}
    return {n: found.get(i, n) for i, n in enumerate(order)}


def split_params(params: str) -> List[str]:
    parts, depth, cur = [], 0, ''
    for ch in params:
        if ch == ',' and depth == 0:
            parts.append(cur.strip())
            cur = ''
            continue
        depth += ch == '('
        depth -= ch == ')'
        cur += ch
    if cur.strip():
        parts.append(cur.strip())
    return [] if parts == ['void'] else parts


def named_params(params: str) -> Tuple[str, List[str]]:
    """Give every parameter a name; return (prototype text, argument names)."""
    out, names = [], []
    for i, p in enumerate(split_params(params)):
        m = re.search(r'([A-Za-z_]\w*)\s*(\[[^\]]*\])?$', p)
        type_words = {'int', 'char', 'float', 'double', 'size_t', 'void', 'unsigned', 'long',
                      'short'}
        if m and m.group(1) not in type_words and not p.rstrip().endswith('*') and \
                len(p.split()) > 1:
            names.append(m.group(1))
            out.append(p)
        else:
            names.append(f'a{i}')
            out.append(f'{p} a{i}')
    return (', '.join(out) or 'void'), names


def generate(include_dir: pathlib.Path, out_dir: pathlib.Path, cc: str = 'gcc') -> List[str]:
    """Write the tables into out_dir; return the names the library exports."""
    public = declarations(include_dir, cc)
    public_names = {d[1] for d in public}
    # The runtime's other exports: per-thread-stream variants, the old ABI of renamed ones.
    others = [d for d in declarations(include_dir, cc, internal=True)
              if d[1] not in public_names]
    decls = public + others
    forwarded = forwarding_spec().functions()
    impl = set(symbols(include_dir, implemented(sorted(HERE.glob('*.c'))), cc).values())
    impl |= {f.name for f in forwarded if f.lib == 'cudart'}
    declared = [d[1] for d in decls]
    names = declared + [n for n in PRIVATE_ENTRY_POINTS if n not in set(declared)]
    for n in sorted(impl - set(names)):
        names.append(n)   # e.g. *_ptsz variants the header only declares under a macro
    names += [n for n in INTEROP_FUNCTIONS if n not in set(names)]
    drv_names, drv_aliases = driver_declarations(include_dir, cc)
    vendor = read_vendor_lists()
    exported = names + [f.name for f in vendor]      # what the library defines (no cu*)
    names += drv_names + [f.name for f in vendor]   # one id space: counts and reports
    ids = ['/* generated by gen_api_table.py from cuda_runtime_api.h: do not edit */',
           '#ifndef RRTO_API_IDS_H', '#define RRTO_API_IDS_H', '#define RRTO_API_LIST(X) \\']
    ids += [f'  X({n}) \\' for n in names]
    ids += ['', 'enum {', '#define X(name) RRTO_ID_##name,', '  RRTO_API_LIST(X)', '#undef X',
            '  RRTO_API_COUNT', '};', '#endif', '']
    stubs = ['/* generated by gen_api_table.py from cuda_runtime_api.h: do not edit */',
             '#include "rrto.h"',
             '#pragma GCC diagnostic ignored "-Wdeprecated-declarations"', '']
    other_names = {d[1] for d in others}
    for ret, name, params in decls:
        if name in impl:
            continue
        if name in other_names:   # e.g. the name a CUDA 12 header #defines to its _v2
            stubs.append(f'#undef {name}')
        proto, args = named_params(params)
        if ret == 'cudaError_t':
            fail = (f'  rrto_unsupported(RRTO_ID_{name});\n'
                    '  return rrto_ret(cudaErrorNotSupported);')
        else:  # pure host helpers (e.g. cudaCreateChannelDesc): the local runtime answers
            fail = (f'  static __typeof__(&{name}) real_;\n'
                    f'  if (!real_) real_ = (__typeof__(&{name}))rrto_real("{name}");\n'
                    f'  return real_({", ".join(args)});')
        stubs.append(f'{ret} {name}({proto}) {{\n'
                     f'  RRTO_ENTER({", ".join([name] + args)});\n{fail}\n}}\n')
    for name in INTEROP_FUNCTIONS:
        stubs.append(f'cudaError_t {name}() {{\n  rrto_unsupported(RRTO_ID_{name});\n'
                     '  return rrto_ret(cudaErrorNotSupported);\n}\n')
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / 'rrto_api_ids.h').write_text('\n'.join(ids))
    (out_dir / 'rrto_unsupported.c').write_text('\n'.join(stubs))
    errors = driver_errors(include_dir, cc)
    (out_dir / 'rrto_driver_table.h').write_text(driver_table(drv_names, drv_aliases, errors))
    fwd_names = {f.name for f in forwarded} | set(
        VENDOR_LOCAL.findall((HERE / 'vendor_local.c').read_text()))
    (out_dir / 'rrto_vendor_stubs.c').write_text(
        vendor_stubs([f for f in vendor if f.name not in fwd_names]))
    (out_dir / 'rrto_forward_table.c').write_text(forward_table(forwarded))
    return exported


# ---------------------------------------------------------------- forwarded functions

@functools.lru_cache(maxsize=None)
def forwarding_spec():
    """rrto_ros/protocol/forwarding.py, loaded by path: this script runs before (and
    without) the package being importable."""
    import importlib.util
    path = HERE.parent / 'protocol' / 'forwarding.py'
    spec = importlib.util.spec_from_file_location('rrto_forwarding', path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


_WORD = {'p': '(uint64_t)(uintptr_t)a{i}', 'i8': '(uint64_t)(int64_t)(int8_t)a{i}',
         'i16': '(uint64_t)(int64_t)(int16_t)a{i}', 'i32': '(uint64_t)(int64_t)(int32_t)a{i}',
         'i64': '(uint64_t)a{i}', 'f': 'rrto_fbits(a{i})', 'd': 'rrto_dbits(a{i})'}


def forward_table(funcs) -> str:
    """rrto_forward_table.c: each forwarded function with its header's ABI, packing its
    arguments into words for forward.c's rrto_forward, with its parameter table."""
    fwd = forwarding_spec()
    libs = sorted({f.lib for f in funcs} - {'cudart'})
    out = ['/* generated by gen_api_table.py from vendor_api/forwarded.txt: do not edit */',
           '#include "rrto_forward.h"', '']
    for lib in libs:
        spec = VENDOR_LIBS[lib]
        out.append(f'static const char *const libs_{lib}[] = '
                   f'{{{", ".join(chr(34) + s + chr(34) for s in spec.sonames)}, 0}};')
    out.append('')
    for f in funcs:
        if f.ret != 'status':
            raise SystemExit(f'rrto: {f.name} returns no status; forwarded.txt cannot take it')
        rows = []
        for p in f.params:
            if p.abi not in _WORD:
                raise SystemExit(f'rrto: {f.name}: parameter {p.name} ({p.abi}) cannot be '
                                 'forwarded')
            s = p.size
            rows.append('{%s, %d, %d, %d, %d, %d, %d}' % (
                'RRTO_R_' + p.role.upper(), int(bool(s and s.out)),
                s.param if s else -1, int(s.dtype) if s else 0, s.const if s else 0,
                s.scale if s else 1, s.type_param if s and s.type_param >= 0 else p.prop))
        flags = ' | '.join(['0'] + [flag for cond, flag in (
            (f.blocks, 'RRTO_FWD_BLOCKS'), ('memo' in f.classes, 'RRTO_FWD_MEMO'),
            (f.stream_work, 'RRTO_FWD_STREAM'), ('forget' in f.classes, 'RRTO_FWD_FORGET'),
            (f.lib == 'cudart', 'RRTO_FWD_CUDART'),
            ('predict' in f.classes, 'RRTO_FWD_PREDICT')) if cond])
        status = fwd.LIB_STATUS[f.lib]
        params = ', '.join(f'{ABI_C[c.abi]} a{i}' for i, c in enumerate(f.params)) or 'void'
        args = ', '.join(f'a{i}' for i in range(len(f.params)))
        types = ', '.join(ABI_C[c.abi] for c in f.params) or 'void'
        words = ', '.join(_WORD[c.abi].format(i=i) for i, c in enumerate(f.params)) or '0'
        real = (f'rrto_real("{f.name}")' if f.lib == 'cudart' else
                f'rrto_real_in("{f.name}", libs_{f.lib})')
        out.append(f'static const struct rrto_fwd_param params_{f.name}[] = {{\n    '
                   + (',\n    '.join(rows) or '{0}') + '\n};')
        out.append(f'static const struct rrto_fwd_fn fn_{f.name} = {{"{f.name}", '
                   f'RRTO_ID_{f.name}, {len(f.params)}, {flags}, {status["bad_handle"]}, '
                   f'{status["invalid_value"]}, {status["failed"]}, params_{f.name}}};')
        out.append(f'uint32_t {f.name}({params}) {{\n'
                   f'  rrto_count(RRTO_ID_{f.name});\n'
                   '  if (rrto_tracing()) {\n'
                   f'    static uint32_t (*real_)({types});\n'
                   f'    if (!real_) real_ = (uint32_t (*)({types})){real};\n'
                   f'    if (real_) return real_({args});\n'
                   '  }\n'
                   f'  const uint64_t w[] = {{{words}}};\n'
                   f'  return rrto_forward(&fn_{f.name}, w);\n}}\n')
    return '\n'.join(out)


# ---------------------------------------------------------------- the driver (cuda.h)

DRIVER_DECL = re.compile(r'(?<!inline )\bCUresult\s+(?:__attribute__\s*\(\(\w+\)\)\s*)?'
                         r'(cu\w+)\s*\(')
DRIVER_LOCAL = re.compile(r'^static CUresult drv_(cu\w+)\s*\(', re.M)
DRIVER_ALIAS = re.compile(r'^#define (cu\w+) (?:__CUDA_API_PT(DS|SZ)\((cu\w+)\)|(cu\w+))$', re.M)


def preprocess(src: str, include_dirs: Sequence[pathlib.Path], cc: str = 'gcc',
               defines: Sequence[str] = (), macros: bool = False) -> str:
    """``src`` after the C preprocessor with these headers (``macros``: the macros only)."""
    cmd = [cc, '-E', '-P', '-x', 'c'] + [f'-D{d}' for d in defines]
    cmd += ['-dM'] if macros else []
    for d in include_dirs:
        cmd += ['-I', str(d)]
    r = subprocess.run(cmd + ['-'], input=src, capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError(f'{cc} cannot read the headers in '
                           f'{", ".join(map(str, include_dirs))}: {r.stderr.strip()[-2000:]}')
    return r.stdout


def driver_declarations(include_dir: pathlib.Path,
                        cc: str = 'gcc') -> Tuple[List[str], List[Tuple[str, str, str]]]:
    """The driver's ABI names and its API-name aliases, from cuda.h.

    ABI names: every function cuda.h declares in its current, legacy
    (``__CUDA_API_VERSION_INTERNAL``) and per-thread-stream forms, i.e. every name a
    ``dlsym`` on libcuda.so.1 may ask for, sorted as strcmp sorts. Aliases: (API name, ABI
    name, per-thread ABI name) for the names cuda.h maps with a macro (``cuCtxCreate`` is
    ``cuCtxCreate_v4``); ``cuGetProcAddress`` takes API names.
    """
    if not (include_dir / 'cuda.h').is_file():
        raise SystemExit(f'rrto: no cuda.h in {include_dir}: the driver table is generated '
                         'from it (it comes with the CUDA toolkit and the nvidia-cuda-runtime '
                         'wheel).')
    src = '#include <cuda.h>\n'
    names = set()
    for defs in ((), ('__CUDA_API_VERSION_INTERNAL',), ('CUDA_API_PER_THREAD_DEFAULT_STREAM',)):
        names.update(DRIVER_DECL.findall(preprocess(src, [include_dir], cc, defs)))
    targets = []   # API name -> ABI name, without and with per-thread default streams
    for defs in ((), ('CUDA_API_PER_THREAD_DEFAULT_STREAM',)):
        text = preprocess(src, [include_dir], cc, defs, macros=True)
        targets.append({api: f'{inner}_pt{pt.lower()}' if pt else plain
                        for api, pt, inner, plain in DRIVER_ALIAS.findall(text)})
    aliases = []
    for api in sorted(set(targets[0]) | set(targets[1])):
        abi = targets[0].get(api, api)
        per_thread = targets[1].get(api, abi)
        if abi in names and (abi, per_thread) != (api, api):
            aliases.append((api, abi, per_thread if per_thread in names else abi))
    return sorted(names), sorted(aliases)


def driver_errors(include_dir: pathlib.Path, cc: str = 'gcc') -> List[Tuple[int, str]]:
    """(value, name) of every CUresult, for cuGetErrorName."""
    text = preprocess('#include <cuda.h>\n', [include_dir], cc)
    found = re.findall(r'\b(CUDA_(?:SUCCESS|ERROR_\w+))\s*=\s*(\d+)', text)
    return sorted({int(v): n for n, v in reversed(found)}.items())


def driver_table(names: Sequence[str], aliases: Sequence[Tuple[str, str, str]],
                 errors: Sequence[Tuple[int, str]]) -> str:
    """rrto_driver_table.h, included by driver_api.c after its own functions: a stub that
    fails by name for every driver function driver_api.c does not define (``drv_<name>``),
    the sorted table of ABI names, and the alias table. Nothing here is exported: these
    functions are reached only through the lookups (dlsym, cuGetProcAddress)."""
    local = set(DRIVER_LOCAL.findall((HERE / 'driver_api.c').read_text()))
    out = ['/* generated by gen_api_table.py from cuda.h: do not edit */', '']
    for n in names:
        if n not in local:
            out.append(f'static CUresult stub_{n}(void) '
                       f'{{ return drv_unsupported(RRTO_ID_{n}, __builtin_return_address(0)); }}')
    out += ['', 'static const struct drv_entry g_driver[] = {']
    out += [f'    {{"{n}", (void *)({"drv_" if n in local else "stub_"}{n})}},' for n in names]
    out += ['};', '', 'static const struct drv_alias g_aliases[] = {']
    out += [f'    {{"{a}", "{b}", "{c}"}},' for a, b, c in aliases]
    out += ['};', '', 'static const struct drv_error g_errors[] = {']
    out += [f'    {{{v}, "{n}"}},' for v, n in errors]
    out += ['};', '']
    return '\n'.join(out)


# ---------------------------------------------------------------- cuBLAS, cuBLASLt, cuDNN

VENDOR_DIR = HERE / 'vendor_api'


class VendorLib(NamedTuple):
    headers: Tuple[str, ...]       # parsed in this order; the first declaration of a name wins
    prefix: str
    exclude: Tuple[str, ...]       # name prefixes that belong to another library
    status_types: Tuple[str, ...]  # return types that mean "returns the library's status"
    not_supported: str             # the status constant a stub returns
    sonames: Tuple[str, ...]       # where the real library is, for trace mode
    stubs: bool = True             # False: the runtime's list, for forwarded.txt's C types


VENDOR_LIBS: Dict[str, VendorLib] = {
    'cublas': VendorLib(('cublas_v2.h', 'cublas.h'), 'cublas', ('cublasLt', 'cublasXt'),
                        ('cublasStatus_t', 'cublasStatus'), 'CUBLAS_STATUS_NOT_SUPPORTED',
                        ('libcublas.so.13', 'libcublas.so.12', 'libcublas.so')),
    'cublasLt': VendorLib(('cublasLt.h',), 'cublasLt', (), ('cublasStatus_t',),
                          'CUBLAS_STATUS_NOT_SUPPORTED',
                          ('libcublasLt.so.13', 'libcublasLt.so.12', 'libcublasLt.so')),
    'cudnn': VendorLib(('cudnn.h',), 'cudnn', (), ('cudnnStatus_t',),
                       'CUDNN_STATUS_NOT_SUPPORTED', ('libcudnn.so.9', 'libcudnn.so')),
    'cudart': VendorLib(('cuda_runtime_api.h', 'cuda_profiler_api.h'), 'cuda', (),
                        ('cudaError_t',), 'cudaErrorNotSupported',
                        ('libcudart.so.13', 'libcudart.so.12'), stubs=False),
}


class VendorFunc(NamedTuple):
    lib: str
    name: str
    ret: str           # 'status' or an ABI type code (see ABI_C)
    params: List[str]  # ABI type codes
    prototype: str     # the header's declaration, for people


# ABI type codes: what a value is passed or returned as (signedness does not matter).
ABI_C = {'p': 'void *', 'i8': 'uint8_t', 'i16': 'uint16_t', 'i32': 'uint32_t',
         'i64': 'uint64_t', 'f': 'float', 'd': 'double', 'c8': 'rrto_c8', 'c16': 'rrto_c16',
         'void': 'void', 'status': 'uint32_t'}


def vendor_decls(lib: str, include_dirs: Sequence[pathlib.Path],
                 cc: str = 'gcc') -> List[Tuple[str, str, str]]:
    """(return type, name, parameters) of every function of lib its headers declare."""
    spec = VENDOR_LIBS[lib]
    decl = re.compile(r'(?:extern\s+)?(?:__attribute__\s*\(\([^()]*(?:\([^()]*\))?\)\)\s*)*'
                      r'([A-Za-z_][\w \*]*?)\s*\b(' + spec.prefix + r'\w+)\s*\((.*)\)')
    seen: Dict[str, Tuple[str, str, str]] = {}
    for header in spec.headers:
        text = preprocess(f'#include <{header}>\n', include_dirs, cc)
        statements = (' '.join(st.split()) for st in re.split(r'[;{}]', text))
        for ret, name, params in (m.groups() for m in map(decl.fullmatch, statements) if m):
            if not name.startswith(spec.exclude or ('\0',)):
                seen.setdefault(name, (' '.join(ret.split()), name, ' '.join(params.split())))
    return list(seen.values())


def abi_code(type_class: int, size: int, what: str) -> str:
    """An ABI type code from gcc's __builtin_classify_type and sizeof."""
    if type_class == 5:
        return 'p'
    if type_class in (1, 2, 3, 4) and size in (1, 2, 4, 8):
        return f'i{8 * size}'
    if type_class == 8 and size in (4, 8):
        return 'f' if size == 4 else 'd'
    if type_class == 12 and 'Complex' in what and size in (8, 16):
        return f'c{size}'   # cuComplex / cuDoubleComplex by value (legacy cuBLAS)
    raise SystemExit(f'rrto: cannot pass {what} (type class {type_class}, {size} bytes) '
                     'through a generated stub: extend abi_code()')


def vendor_functions(lib: str, include_dirs: Sequence[pathlib.Path],
                     cc: str = 'gcc') -> Tuple[List[VendorFunc], int]:
    """The functions of lib with their ABI types, and the value of its NOT_SUPPORTED status.

    gcc itself classifies each parameter and return type: a probe program with one function
    per declaration prints __builtin_classify_type and sizeof of each (never evaluated)."""
    spec = VENDOR_LIBS[lib]
    decls = vendor_decls(lib, include_dirs, cc)
    # cublas.h declares everything and refuses to follow cublas_v2.h; others take all.
    headers = spec.headers[-1:] if lib == 'cublas' else spec.headers
    probe = ['#include <stdio.h>'] + [f'#include <{h}>' for h in headers]
    calls = []
    for i, (ret, name, params) in enumerate(decls):
        proto, args = named_params(params)
        body = [f'printf("{name}");']
        body += [f'printf(" %d:%zu", __builtin_classify_type({a}), sizeof({a}));' for a in args]
        if ret != 'void':
            call = f'{name}({", ".join(args)})'
            body.append(f'printf(" -> %d:%zu", __builtin_classify_type({call}), sizeof({call}));')
        body.append('printf("\\n");')
        probe.append(f'static void probe{i}({proto}) {{ {" ".join(body)} }}')
        calls.append(f'((void (*)(void))probe{i})();')
    probe.append(f'int main(void) {{ printf("%d\\n", (int){spec.not_supported}); '
                 f'{" ".join(calls)} return 0; }}')
    with tempfile.TemporaryDirectory() as tmp:
        src, exe = pathlib.Path(tmp) / 'probe.c', pathlib.Path(tmp) / 'probe'
        src.write_text('\n'.join(probe) + '\n')
        cmd = [cc, '-w', '-o', str(exe), str(src)]
        for d in include_dirs:
            cmd += ['-I', str(d)]
        subprocess.run(cmd, check=True)
        lines = subprocess.run([str(exe)], capture_output=True, text=True,
                               check=True).stdout.splitlines()
    status = int(lines[0])
    funcs = []
    for (ret, name, params), line in zip(decls, lines[1:]):
        fields = line.split()
        assert fields[0] == name, (fields[0], name)
        codes, ret_code = [], 'void'
        parts = split_params(params)
        try:
            for k, f in enumerate(fields[1:]):
                if f == '->':
                    tc, size = fields[k + 2].split(':')
                    ret_code = 'status' if ret in spec.status_types else \
                        abi_code(int(tc), int(size), ret)
                    break
                tc, size = f.split(':')
                codes.append(abi_code(int(tc), int(size), parts[k]))
        except SystemExit:
            if spec.stubs:
                raise
            continue   # the runtime's list only serves forwarded.txt: leave such a one out
        funcs.append(VendorFunc(lib, name, ret_code, codes, f'{ret} {name}({params})'))
    return funcs, status


def write_vendor_lists(include_dirs: Sequence[pathlib.Path], out_dir: pathlib.Path = VENDOR_DIR,
                       cc: str = 'gcc') -> List[pathlib.Path]:
    """Regenerate vendor_api/<lib>.txt from the vendor headers (a developer's step; the
    build uses the committed lists, so CI needs no vendor headers)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for lib, spec in VENDOR_LIBS.items():
        funcs, status = vendor_functions(lib, include_dirs, cc)
        lines = [f'# generated by gen_api_table.py --vendor-include from {", ".join(spec.headers)}'
                 ': do not edit',
                 '# name<TAB>return (status or ABI type)<TAB>parameter ABI types<TAB>prototype',
                 f'# not_supported {spec.not_supported} {status}']
        lines += [f'{f.name}\t{f.ret}\t{",".join(f.params)}\t{f.prototype}'
                  for f in sorted(funcs, key=lambda f: f.name)]
        path = out_dir / f'{lib}.txt'
        path.write_text('\n'.join(lines) + '\n')
        written.append(path)
    return written


def read_vendor_lists(in_dir: pathlib.Path = VENDOR_DIR) -> List[VendorFunc]:
    funcs = []
    for lib in (name for name, spec in VENDOR_LIBS.items() if spec.stubs):
        for line in (in_dir / f'{lib}.txt').read_text().splitlines():
            if line and not line.startswith('#'):
                name, ret, params, proto = line.split('\t')
                funcs.append(VendorFunc(lib, name, ret, params.split(',') if params else [],
                                        proto))
    return funcs


def vendor_status(lib: str, in_dir: pathlib.Path = VENDOR_DIR) -> Tuple[str, int]:
    """(name, value) of the status a stub of lib returns, as its list records it."""
    for line in (in_dir / f'{lib}.txt').read_text().splitlines():
        if line.startswith('# not_supported '):
            _tag, name, value = line[2:].split()
            return name, int(value)
    raise SystemExit(f'rrto: {in_dir / lib}.txt has no "# not_supported" line')


def vendor_stubs(funcs: Sequence[VendorFunc]) -> str:
    """rrto_vendor_stubs.c: every cuBLAS, cuBLASLt and cuDNN function, exported with its ABI
    types so that it wins over the real library's. Trace mode passes the call to the real
    library; otherwise it fails by name, returning the library's NOT_SUPPORTED status (or
    0 / an explanation for the few functions that return no status)."""
    out = ['/* generated by gen_api_table.py from vendor_api/<lib>.txt: do not edit */',
           '#include "rrto.h"', '',
           'typedef struct { float x, y; } __attribute__((aligned(8))) rrto_c8;',
           'typedef struct { double x, y; } __attribute__((aligned(16))) rrto_c16;', '']
    for lib in sorted({f.lib for f in funcs}):
        out.append(f'static const char *const libs_{lib}[] = '
                   f'{{{", ".join(chr(34) + s + chr(34) for s in VENDOR_LIBS[lib].sonames)}, 0}};')
    out.append('')
    status = {lib: vendor_status(lib) for lib in VENDOR_LIBS}
    for f in funcs:
        ret = ABI_C[f.ret]
        params = ', '.join(f'{ABI_C[c]} a{i}' for i, c in enumerate(f.params)) or 'void'
        args = ', '.join(f'a{i}' for i in range(len(f.params)))
        types = ', '.join(ABI_C[c] for c in f.params) or 'void'
        fn_type = f'{ret} (*)({types})'
        sname, svalue = status[f.lib]
        if f.ret == 'status':
            what, fail = f'{sname} ({svalue})', f'return {svalue};'
        elif f.ret == 'void':
            what, fail = 'nothing', 'return;'
        elif f.ret == 'p':
            what = 'an explanation'
            fail = f'return (void *)"rrto: {f.name} is not forwarded yet";'
        elif f.ret in ('c8', 'c16'):
            what, fail = '0', f'return ({ret}){{0, 0}};'
        else:
            what, fail = '0', 'return 0;'
        call = f'real_({args})' if f.ret == 'void' else f'return real_({args})'
        out.append(f'{ret} {f.name}({params}) {{\n'
                   f'  rrto_count(RRTO_ID_{f.name});\n'
                   '  if (rrto_tracing()) {\n'
                   f'    static {ret} (*real_)({types});\n'
                   f'    if (!real_) real_ = ({fn_type})rrto_real_in("{f.name}", libs_{f.lib});\n'
                   f'    if (real_) {{ {call}; {"return; " if f.ret == "void" else ""}}}\n'
                   '  }\n'
                   f'  rrto_not_forwarded(RRTO_ID_{f.name}, "{what}", '
                   '__builtin_return_address(0));\n'
                   f'  {fail}\n}}\n')
    return '\n'.join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--include', required=True, type=pathlib.Path)
    ap.add_argument('--out', type=pathlib.Path)
    ap.add_argument('--cc', default='gcc')
    ap.add_argument('--vendor-include', nargs='+', type=pathlib.Path,
                    help='regenerate vendor_api/*.txt from the cuBLAS and cuDNN headers here')
    a = ap.parse_args()
    if a.vendor_include:
        print('\n'.join(map(str, write_vendor_lists(a.vendor_include + [a.include], cc=a.cc))))
    if a.out:
        generate(a.include, a.out, a.cc)


if __name__ == '__main__':
    main()
