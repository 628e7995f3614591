# Copyright 2026 rrto_ros authors. Apache-2.0.
"""Where the client node's local socket lives, and who may use it.

Apps send the node their CUDA calls, executable path and input data over this socket, so
nobody else may stand in for it: it lives in a private directory (``$XDG_RUNTIME_DIR/rrto``,
else ``/tmp/rrto-<uid>``), created mode 0700 and refused unless it is a real directory
owned by this user with no access for others (a directory another user made first, or a
symlink to one, would let them receive the calls). The node also checks each connecting
process's credentials (``SO_PEERCRED``): same user as the node, or root. The interposer
resolves the same default path (``interposer/transport.c``) and checks the socket's owner
before it connects.
"""

from __future__ import annotations

import os
import socket
import stat
import struct
from typing import Optional

SOCKET_NAME = 'agent.sock'
_UCRED = struct.Struct('3i')    # pid, uid, gid (struct ucred)


class SocketDirError(RuntimeError):
    """The socket's directory is not private to this user."""


def default_agent_socket() -> str:
    """``$XDG_RUNTIME_DIR/rrto/agent.sock``, else ``/tmp/rrto-<uid>/agent.sock``."""
    runtime = os.environ.get('XDG_RUNTIME_DIR', '')
    base = os.path.join(runtime, 'rrto') if runtime else f'/tmp/rrto-{os.getuid()}'
    return os.path.join(base, SOCKET_NAME)


def resolve(path: str) -> str:
    """The configured path, or the default one when it is empty."""
    return path or default_agent_socket()


def prepare_dir(socket_path: str) -> None:
    """Create the socket's directory (mode 0700) if it is missing, and raise
    SocketDirError unless it is a directory of this user's that nobody else can use."""
    d = os.path.dirname(os.path.abspath(socket_path))
    try:
        os.mkdir(d, 0o700)
    except FileExistsError:
        pass
    except OSError as e:
        raise SocketDirError(f'cannot create the directory {d} for the agent socket: {e}. '
                             'Set agent_socket to a path in a directory of yours.') from None
    check_dir(d)


def check_dir(d: str, uid: Optional[int] = None) -> None:
    """Raise SocketDirError unless ``d`` is a real directory owned by ``uid`` (this
    process's user by default) with mode 0700 or stricter."""
    uid = os.getuid() if uid is None else uid
    st = os.lstat(d)
    fix = ("Remove it (another user or program may have made it to receive your apps' CUDA "
           'calls), or set agent_socket to a path in a directory only you can use')
    if stat.S_ISLNK(st.st_mode):
        raise SocketDirError(f'agent socket directory {d} is a symbolic link. {fix}.')
    if not stat.S_ISDIR(st.st_mode):
        raise SocketDirError(f'agent socket directory {d} is not a directory. {fix}.')
    if st.st_uid != uid:
        raise SocketDirError(f'agent socket directory {d} belongs to uid {st.st_uid}, not to '
                             f'this user ({uid}). {fix}.')
    if st.st_mode & 0o077:
        raise SocketDirError(f'agent socket directory {d} has mode '
                             f'{stat.S_IMODE(st.st_mode):04o}; it must be 0700. {fix}, or '
                             f'chmod 700 {d}.')


def peer_uid(conn: socket.socket) -> int:
    """The user id of the process at the other end of a UNIX socket."""
    raw = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
    return _UCRED.unpack(raw)[1]


def peer_refusal(peer: int, own: Optional[int] = None) -> Optional[str]:
    """Why a process of user ``peer`` may not use this node's socket (None: it may)."""
    own = os.getuid() if own is None else own
    if peer in (own, 0):
        return None
    return (f'a process of uid {peer} connected to the agent socket, which serves only uid '
            f'{own} and root: refused')
