# Copyright 2026 rrto_ros authors. Apache-2.0.
"""Generate the interposer's table of CUDA runtime functions from the real header.

Writes two files into the build directory:
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
"""

from __future__ import annotations

import argparse
import pathlib
import re
import subprocess
from typing import Dict, List, Sequence, Tuple

HERE = pathlib.Path(__file__).resolve().parent

# Entry points that nvcc-generated code calls; not in cuda_runtime_api.h.
PRIVATE_ENTRY_POINTS = [
    '__cudaRegisterFatBinary', '__cudaRegisterFatBinaryEnd', '__cudaUnregisterFatBinary',
    '__cudaInitModule', '__cudaRegisterFunction', '__cudaRegisterVar',
    '__cudaRegisterManagedVar', '__cudaPushCallConfiguration', '__cudaPopCallConfiguration',
    '__cudaGetKernel', '__cudaLaunchKernel', '__cudaLaunchKernel_ptsz',
]
DECL = re.compile(r'extern\s+((?:__attribute__\s*\(\(.*?\)\)\s*)*)([A-Za-z_][\w\s\*]*?)\s*'
                  r'\b(cuda\w+)\s*\(([^;]*?)\)\s*;', re.S)
DEFINITION = re.compile(r'^[A-Za-z_][\w \*]*?\b((?:__)?cuda\w+)\s*\([^;]*?\)\s*\{',
                        re.M | re.S)


INTERNAL = '__CUDA_API_VERSION_INTERNAL'   # what the runtime's own build defines
RENAMED = re.compile(r'^rrto_symbol_(\d+)\s+(\w+)\s*;', re.M)


def preprocess(include_dir: pathlib.Path, src: str, cc: str = 'gcc') -> str:
    """``src`` after the C preprocessor, with the CUDA headers of ``include_dir``."""
    r = subprocess.run([cc, '-E', '-P', '-x', 'c', '-I', str(include_dir), '-'],
                       input=src, capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError(f'{cc} cannot read the CUDA runtime headers in {include_dir}: '
                           f'{r.stderr.strip()[-2000:]}')
    return r.stdout


def declarations(include_dir: pathlib.Path, cc: str = 'gcc', internal: bool = False
                 ) -> List[Tuple[str, str, str]]:
    """(return type, name, parameter list) of every function the runtime header declares:
    as an app sees it, or (``internal``) as the runtime's own build sees it."""
    src = (f'#define {INTERNAL} 1\n' if internal else '') + '#include <cuda_runtime_api.h>\n'
    out = preprocess(include_dir, src, cc)
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
    found = {int(i): sym for i, sym in RENAMED.findall(preprocess(include_dir, src, cc))}
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
    """Write the two files into out_dir; return the table's function names."""
    public = declarations(include_dir, cc)
    public_names = {d[1] for d in public}
    # The runtime's other exports: per-thread-stream variants, the old ABI of renamed ones.
    others = [d for d in declarations(include_dir, cc, internal=True)
              if d[1] not in public_names]
    decls = public + others
    impl = set(symbols(include_dir, implemented(sorted(HERE.glob('*.c'))), cc).values())
    declared = [d[1] for d in decls]
    names = declared + [n for n in PRIVATE_ENTRY_POINTS if n not in set(declared)]
    for n in sorted(impl - set(names)):
        names.append(n)   # e.g. *_ptsz variants the header only declares under a macro
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
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / 'rrto_api_ids.h').write_text('\n'.join(ids))
    (out_dir / 'rrto_unsupported.c').write_text('\n'.join(stubs))
    return names


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--include', required=True, type=pathlib.Path)
    ap.add_argument('--out', required=True, type=pathlib.Path)
    ap.add_argument('--cc', default='gcc')
    a = ap.parse_args()
    generate(a.include, a.out, a.cc)


if __name__ == '__main__':
    main()
