# Copyright 2026 rrto_ros authors. Apache-2.0.
"""``rrto-lib``: print the interposer's path, e.g. ``LD_PRELOAD=$(rrto-lib) ./app``."""

import argparse
import sys
from typing import List, Optional

from rrto_ros import interposer_path


def main(argv: Optional[List[str]] = None) -> int:
    argparse.ArgumentParser(
        description='Print the path of librrto_cuda.so, the interposer an app is started '
        'with to offload its CUDA work: LD_PRELOAD=$(rrto-lib) '
        "RRTO_AGENT_SOCKET=<the client node's agent_socket> ./app").parse_args(argv)
    try:
        print(interposer_path())
    except FileNotFoundError as e:
        print(f'rrto-lib: {e}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
