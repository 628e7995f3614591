# Copyright 2026 rrto_ros authors. Apache-2.0.
"""Where rrto_ros keeps its CURVE keys, and what ``rrto-keys`` does with them (no ROS).

One private directory per user, ``~/.config/rrto_ros/keys`` (mode 0700), the default of
the nodes, the CLIs and config/*.yaml:

- ``server.key_secret``: the edge server's certificate (its secret key never leaves the edge)
- ``server.key``: the server's public key; each robot keeps a copy under the same name
- ``clients/NAME.key``: on the edge, the allow-list: the public key of every robot it serves
- ``robot.key_secret``: a robot's certificate (secret; never leaves the robot), its name in
  the metadata
- ``NAME.key``: that robot's public key, the file to carry to the edge (``rrto-keys allow``)

Key files are ZeroMQ certificates made by ``zmq.auth.create_certificates``; secret ones are
written mode 0600.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import tempfile
from typing import Callable, Dict, List, Optional, Tuple

import zmq
import zmq.auth

DEFAULT_DIR = '~/.config/rrto_ros/keys'
SERVER = 'server'
ROBOT = 'robot'
CLIENTS = 'clients'
_NAME = re.compile(r'^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$')


class KeyStoreError(ValueError):
    """A key command cannot do what was asked; the message says why and what to do."""


def server_secret_file(directory: str = DEFAULT_DIR) -> str:
    return os.path.join(directory, f'{SERVER}.key_secret')


def server_public_file(directory: str = DEFAULT_DIR) -> str:
    return os.path.join(directory, f'{SERVER}.key')


def robot_secret_file(directory: str = DEFAULT_DIR) -> str:
    return os.path.join(directory, f'{ROBOT}.key_secret')


def allowed_clients_dir(directory: str = DEFAULT_DIR) -> str:
    return os.path.join(directory, CLIENTS)


def check_name(name: str) -> str:
    if not _NAME.match(name or '') or name == SERVER:
        raise KeyStoreError(f'robot name {name!r} is not usable: take letters, digits, ".", '
                            f'"_" or "-" (at most 64, not {SERVER!r}), e.g. robot-1')
    return name


def private_dir(path: str) -> str:
    """``path`` as a directory only its owner can enter: created mode 0700; an existing one
    that others may enter is refused (it is not changed behind the user's back)."""
    path = os.path.expanduser(path)
    os.makedirs(path, mode=0o700, exist_ok=True)
    st = os.stat(path)
    if st.st_uid != os.getuid():
        raise KeyStoreError(f'{path} belongs to another user: keep keys in a directory of '
                            'your own (--dir)')
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        raise KeyStoreError(f'{path} can be entered by other users (mode {mode:o}): run '
                            f'`chmod 700 {path}`, or give another --dir')
    return path


def writable_by_others(path: str) -> Optional[str]:
    """Why a directory of allowed keys cannot be trusted (others may add keys), or None."""
    mode = stat.S_IMODE(os.stat(path).st_mode)
    if mode & 0o022:
        return (f'{path} can be written by other users (mode {mode:o}), who could add their '
                f'own keys: run `chmod go-w {path}`')
    return None


def exposed(path: str) -> Optional[str]:
    """A warning when a secret key file can be read by other users, else None."""
    try:
        mode = stat.S_IMODE(os.stat(os.path.expanduser(path)).st_mode)
    except OSError:
        return None
    if mode & 0o077:
        return (f'the secret key file {path} can be read by other users (mode {mode:o}): '
                f'run `chmod 600 {path}`')
    return None


def metadata(path: str) -> Dict[str, str]:
    """The ``metadata`` section of a ZeroMQ certificate (name = value lines)."""
    out: Dict[str, str] = {}
    section = ''
    try:
        with open(os.path.expanduser(path), encoding='utf-8') as f:
            for line in f:
                text = line.split('#', 1)[0].rstrip()
                if not text:
                    continue
                if not text[0].isspace():
                    section = text.strip()
                elif section == 'metadata' and '=' in text:
                    key, _, value = text.partition('=')
                    out[key.strip()] = value.strip().strip('"')
    except (OSError, UnicodeDecodeError):
        pass
    return out


def _load(path: str) -> Tuple[bytes, Optional[bytes]]:
    try:
        return zmq.auth.load_certificate(os.path.expanduser(path))
    except (OSError, ValueError) as e:
        raise KeyStoreError(f'{path} is not a ZeroMQ certificate: {e}') from None


def public_key(path: str) -> str:
    """The Z85 text of a certificate's public key (names a key in messages and lists)."""
    return _load(path)[0].decode()


def _create(directory: str, name: str, meta: Dict[str, str]) -> Tuple[str, str]:
    """A new key pair as (public file, secret file) in a fresh directory inside
    ``directory``, the secret one mode 0600; the caller moves them into place."""
    if not zmq.has('curve'):
        raise KeyStoreError('this libzmq has no CURVE support: install the pyzmq wheels')
    work = tempfile.mkdtemp(prefix='.new-', dir=directory)
    public, secret = zmq.auth.create_certificates(work, name, meta)
    os.chmod(secret, 0o600)
    return public, secret


def _refuse_overwrite(path: str, what: str, force: bool) -> None:
    if os.path.exists(path) and not force:
        raise KeyStoreError(f'{path} exists already ({what}); keep it, or give --force to '
                            'make a new one (every side that has the old public key must '
                            'then get the new one)')


def _install_pair(public: str, secret: str, public_path: str, secret_path: str
                  ) -> Tuple[str, str]:
    """Move a pair made by _create to its names; returns (public, secret) paths."""
    try:
        os.replace(secret, secret_path)
        os.replace(public, public_path)
    finally:
        shutil.rmtree(os.path.dirname(public), ignore_errors=True)
    return public_path, secret_path


def init_server(directory: str = DEFAULT_DIR, force: bool = False) -> Tuple[str, str]:
    """The edge's key pair and its (empty) allow-list; returns (public, secret) paths."""
    d = private_dir(directory)
    secret_path, public_path = server_secret_file(d), server_public_file(d)
    _refuse_overwrite(secret_path, "the server's key", force)
    private_dir(allowed_clients_dir(d))
    public, secret = _create(d, SERVER, {'role': 'rrto server'})
    return _install_pair(public, secret, public_path, secret_path)


def init_robot(name: str, directory: str = DEFAULT_DIR, force: bool = False
               ) -> Tuple[str, str]:
    """A robot's key pair: ``robot.key_secret`` (its name in the metadata) and ``NAME.key``,
    the public half to allow on the edge; returns (public, secret) paths."""
    check_name(name)
    d = private_dir(directory)
    secret_path, public_path = robot_secret_file(d), os.path.join(d, f'{name}.key')
    old = metadata(secret_path).get('name', '?')
    _refuse_overwrite(secret_path, f'the key of robot {old}', force)
    if os.path.exists(public_path) and not force:
        raise KeyStoreError(f'{public_path} exists already; choose another robot name or '
                            'give --force')
    public, secret = _create(d, name, {'name': name, 'role': 'rrto robot'})
    return _install_pair(public, secret, public_path, secret_path)


def allow(public_file: str, directory: str = DEFAULT_DIR, name: str = '') -> Tuple[str, bool]:
    """Copy a robot's public key into the allow-list as ``clients/NAME.key`` (NAME: ``name``,
    else the file's name); returns (its path, False if that key was allowed already)."""
    public_file = os.path.expanduser(public_file)
    if not os.path.isfile(public_file):
        raise KeyStoreError(f"{public_file} does not exist: copy the robot's public key file "
                            '(NAME.key, made by `rrto-keys init-robot NAME` on the robot) here '
                            'first')
    _, secret = _load(public_file)
    if secret:
        raise KeyStoreError(f'{public_file} holds a secret key: give the public .key file; the '
                            'secret one never leaves the robot')
    key = public_key(public_file)
    stem = os.path.basename(public_file)
    name = check_name(name or (stem[:-len('.key')] if stem.endswith('.key') else stem))
    clients = private_dir(allowed_clients_dir(directory))
    target = os.path.join(clients, f'{name}.key')
    for other, other_key in allowed(directory):
        if other_key == key:
            return os.path.join(clients, f'{other}.key'), False
    if os.path.exists(target):
        raise KeyStoreError(f'another key is allowed as {name!r} already ({target}): give '
                            '--name NAME for this robot, or remove the old file first')
    work = tempfile.mkdtemp(prefix='.new-', dir=clients)
    try:
        shutil.copyfile(public_file, os.path.join(work, 'k'))
        os.replace(os.path.join(work, 'k'), target)   # the server sees whole files only
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target, True


def allowed(directory: str = DEFAULT_DIR) -> List[Tuple[str, str]]:
    """(name, Z85 public key) of each robot in the allow-list of a key directory."""
    return allowed_keys(allowed_clients_dir(os.path.expanduser(directory)))


def allowed_keys(clients_dir: str, on_bad: Optional[Callable[[str], None]] = None
                 ) -> List[Tuple[str, str]]:
    """(name, Z85 public key) of each ``NAME.key`` certificate in ``clients_dir``, by name;
    ``on_bad`` hears of the files that are no certificate (they are skipped)."""
    out = []
    for entry in sorted(os.listdir(clients_dir)) if os.path.isdir(clients_dir) else []:
        if entry.endswith('.key'):
            try:
                out.append((entry[:-len('.key')], public_key(os.path.join(clients_dir, entry))))
            except KeyStoreError as e:
                if on_bad is not None:
                    on_bad(str(e))
    return out


def describe(directory: str = DEFAULT_DIR) -> List[str]:
    """What ``rrto-keys list`` prints: each key of this machine and the allow-list, with
    what to do about what is missing."""
    d = os.path.expanduser(directory)
    if not os.path.isdir(d):
        return [f'no keys in {d} yet: `rrto-keys init-server` on the edge, `rrto-keys '
                'init-robot NAME` on a robot']
    lines = [f'keys in {d} (mode {stat.S_IMODE(os.stat(d).st_mode):o})']

    def entry(label: str, path: str, missing: str, extra: str = '') -> None:
        if not os.path.isfile(path):
            lines.append(f'  {label:<15} none: {missing}')
            return
        try:
            key = public_key(path)
        except KeyStoreError as e:
            lines.append(f'  {label:<15} {e}')
            return
        lines.append(f'  {label:<15} {os.path.basename(path)}  public key {key}{extra}')
        if path.endswith('.key_secret') and exposed(path):
            lines.append(f'  {"":<15} WARNING: {exposed(path)}')

    entry('server (edge)', server_secret_file(d), '`rrto-keys init-server` on the edge',
          '; robots need server.key')
    name = metadata(robot_secret_file(d)).get('name')
    entry('robot', robot_secret_file(d), '`rrto-keys init-robot NAME` on a robot',
          f'; name {name}: the edge allows {name}.key' if name else '')
    entry('server public', server_public_file(d), "on a robot: copy the edge's server.key "
          'here')
    clients = allowed(d)
    if os.path.isdir(allowed_clients_dir(d)) or clients:
        lines.append(f'  allowed robots  {len(clients)} in {allowed_clients_dir(d)}' +
                     ('' if clients else ': none yet, `rrto-keys allow NAME.key` adds one'))
        lines += [f'    {n:<13} {k}' for n, k in clients]
    return lines


def one_machine(directory: str, robot: str = 'robot-1') -> Dict[str, str]:
    """Both sides' keys in one new directory, the robot allowed: what the demo and the tests
    use. Returns the node parameters that point at them, per side."""
    d = private_dir(directory)
    init_server(d)
    public, secret = init_robot(robot, d)
    allow(public, d)
    return {'server_secret': server_secret_file(d), 'allowed_dir': allowed_clients_dir(d),
            'robot_secret': secret, 'server_public': server_public_file(d)}


def server_parameters(made: Dict[str, str]) -> Dict[str, str]:
    """The server node's parameters for keys made by ``one_machine``."""
    return {'security': 'curve', 'curve_secret_key_file': made['server_secret'],
            'curve_allowed_clients_dir': made['allowed_dir']}


def client_parameters(made: Dict[str, str]) -> Dict[str, str]:
    """The client node's parameters for keys made by ``one_machine``."""
    return {'security': 'curve', 'curve_secret_key_file': made['robot_secret'],
            'curve_server_key_file': made['server_public']}
