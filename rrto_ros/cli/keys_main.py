# Copyright 2026 rrto_ros authors. Apache-2.0.
"""``rrto-keys``: the CURVE keys of the edge server and the robots, and the allow-list."""

from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional

from rrto_ros.protocol import keys

STEPS = """steps (one edge, any number of robots):
  edge:   rrto-keys init-server             # server.key_secret, server.key, clients/
  robot:  rrto-keys init-robot robot-1      # robot.key_secret, robot-1.key
  robot:  copy the edge's server.key into the robot's key directory
  edge:   copy robot-1.key here, then: rrto-keys allow robot-1.key
The nodes, rrto-server and rrto-client use these files by default (security curve)."""


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog='rrto-keys', description='Make the CURVE keys that authenticate and encrypt the '
        'link between robots (rrto client) and the edge GPU server, and keep the list of '
        'robots the server lets in.', epilog=STEPS,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--dir', default=keys.DEFAULT_DIR,
                    help=f'key directory, created mode 0700 (default {keys.DEFAULT_DIR})')
    sub = ap.add_subparsers(dest='cmd', required=True, metavar='COMMAND',
                            help='init-server, init-robot, allow or list (COMMAND --help: '
                            'its options)')
    common = argparse.ArgumentParser(add_help=False)   # --dir after the command works too
    common.add_argument('--dir', default=argparse.SUPPRESS, help='key directory (as above)')
    s = sub.add_parser('init-server', parents=[common],
                       help="on the edge: the server's key pair and an empty allow-list")
    s.add_argument('--force', action='store_true',
                   help='replace an existing server key (every robot then needs the new '
                   'server.key)')
    r = sub.add_parser('init-robot', parents=[common], help="on a robot: the robot's key pair")
    r.add_argument('name', metavar='NAME', help='name of this robot, e.g. robot-1 (its public '
                   'key file is NAME.key)')
    r.add_argument('--force', action='store_true',
                   help='replace an existing robot key (the edge must then allow the new one)')
    a = sub.add_parser('allow', parents=[common],
                       help='on the edge: let a robot in (copies its public key into the '
                       'allow-list)')
    a.add_argument('public_key_file', metavar='ROBOT_PUBLIC_KEY_FILE',
                   help="the robot's NAME.key (never its .key_secret)")
    a.add_argument('--name', default='',
                   help='name in the allow-list (default: the file name without .key)')
    sub.add_parser('list', parents=[common],
                   help='show the keys in the key directory and the allowed robots')
    return ap


def main(argv: Optional[List[str]] = None) -> int:
    ap = parser()
    a = ap.parse_args(argv)
    d = os.path.expanduser(a.dir)
    try:
        if a.cmd == 'init-server':
            public, secret = keys.init_server(d, a.force)
            print(f'made the server key {secret} (stays on this machine) and {public}; robots '
                  f'are let in from {keys.allowed_clients_dir(d)}.\nnext: copy {public} into '
                  "each robot's key directory (~/.config/rrto_ros/keys/server.key), and allow "
                  'each robot with `rrto-keys allow NAME.key`')
        elif a.cmd == 'init-robot':
            public, secret = keys.init_robot(a.name, d, a.force)
            print(f'made the key of robot {a.name}: {secret} (stays on this robot) and '
                  f'{public}.\nnext: copy {public} to the edge and run `rrto-keys allow '
                  f"{os.path.basename(public)}` there; copy the edge's server.key to "
                  f'{keys.server_public_file(d)}')
        elif a.cmd == 'allow':
            path, added = keys.allow(a.public_key_file, d, a.name)
            name = os.path.basename(path)[:-len('.key')]
            print(f'robot {name} is allowed: {path}' + ('' if added else ' (that key was '
                  'allowed already)') + '. A running server reads the change by itself.')
        else:
            print('\n'.join(keys.describe(d)))
    except (keys.KeyStoreError, OSError) as e:
        print(f'rrto-keys: {e}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
