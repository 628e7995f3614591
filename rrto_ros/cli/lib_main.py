# Copyright 2026 rrto_ros authors. Apache-2.0.
"""``rrto-lib``: print the interposer's path, e.g. ``LD_PRELOAD=$(rrto-lib) ./app``."""

import sys

from rrto_ros import interposer_path


def main() -> int:
    try:
        print(interposer_path())
    except FileNotFoundError as e:
        print(f'rrto-lib: {e}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
