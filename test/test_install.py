# Copyright 2026 rrto_ros authors. Apache-2.0.
"""Installed like a ROS package, it starts: the layouts colcon and pip make, each built from
a copy of this source tree into temporary folders, then planned from another directory.

- colcon build (ament_python): ``setup.py egg_info build install --prefix P`` as colcon runs
  it; the package, librrto_cuda.so, lib/rrto_ros executables and share/rrto_ros files.
- colcon build --symlink-install: ``setup.py develop --editable`` from a build folder of
  symlinks; the interposer is built into the source tree, which is what is imported.
- pip install -e (PEP 660): the editable wheel's build also builds the interposer in place.
- A wheel is tagged for its platform (it carries native code), not py3-none-any.
"""

from __future__ import annotations

import itertools
import os
import pathlib
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
from typing import Dict, List
import zipfile

import pytest

from rrto_ros.interposer import elf_info

ROOT = pathlib.Path(__file__).resolve().parent.parent
LIB = pathlib.Path('rrto_ros') / 'lib' / 'librrto_cuda.so'
SITE = pathlib.Path(sysconfig.get_path('purelib', vars={'base': '', 'platbase': ''}).lstrip('/'))
DATA_FILES = ['share/ament_index/resource_index/packages/rrto_ros', 'share/rrto_ros/package.xml',
              'share/rrto_ros/launch/robot.launch.py', 'share/rrto_ros/launch/edge.launch.py',
              'share/rrto_ros/config/robot.yaml', 'share/rrto_ros/config/edge.yaml']
NOT_SOURCES = ('.git', '.venv', 'build', 'dist', '*.egg-info', '__pycache__', '.pytest_cache',
               '.whl')
ASSIGNMENT = re.compile(r'^[A-Z_][A-Z0-9_]*=')
EXECUTABLES = ['rrto_client_node', 'rrto_server_node', 'rrto-server', 'rrto-client',
               'rrto-trace', 'rrto-lib', 'rrto-keys']


@pytest.fixture
def source(tmp_path_factory) -> pathlib.Path:
    """A fresh copy of this source tree's files (no venv, no build outputs)."""
    dest = tmp_path_factory.mktemp('src') / 'rrto_ros'
    try:
        listed = subprocess.run(['git', 'ls-files', '-co', '--exclude-standard', '-z'],
                                cwd=ROOT, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):    # not a git checkout: what is there
        shutil.copytree(ROOT, dest, ignore=shutil.ignore_patterns(*NOT_SOURCES))
        shutil.rmtree(dest / 'rrto_ros' / 'lib', ignore_errors=True)
    else:
        for rel in filter(None, (f.decode() for f in listed.split(b'\0'))):
            if (ROOT / rel).is_file():
                (dest / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / rel, dest / rel)
    assert not (dest / LIB).exists() and (dest / 'setup.py').is_file()
    return dest


def clean_env(**extra: str) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ('PYTHONPATH', 'AMENT_PREFIX_PATH', 'RRTO_INTERPOSER')}
    env.update(extra)
    return env


def run(cmd: List[str], cwd: pathlib.Path, env: Dict[str, str]) -> subprocess.CompletedProcess:
    r = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True,
                       text=True, timeout=240)
    assert r.returncode == 0, f'{shlex.join(map(str, cmd))}:\n{r.stdout[-2000:]}{r.stderr[-3000:]}'
    return r


def show(side: str, cwd: pathlib.Path, env: Dict[str, str], *args: str
         ) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, '-m', 'rrto_ros.launch_plan', 'show', side, *args],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


def plan_lines(out: str) -> Dict[str, List[str]]:
    """process name -> its words (environment assignments first) from `show`'s output."""
    return {line.split(':', 1)[0]: shlex.split(line.split(':', 1)[1])
            for line in out.splitlines() if not line.startswith('#')}


def module_origin(module: str, cwd: pathlib.Path, env: Dict[str, str]) -> pathlib.Path:
    r = run([sys.executable, '-c', 'import importlib.util as u, sys; '
             f'print(u.find_spec({module!r}).origin)'], cwd, env)
    return pathlib.Path(r.stdout.strip())


def check_plans_resolve(cwd: pathlib.Path, env: Dict[str, str], package: pathlib.Path,
                        workload: str) -> Dict[str, List[str]]:
    """Both plans print, every executable, module, file and the interposer they name exist,
    the nodes' modules come from ``package``; returns the robot plan."""
    edge = show('edge', cwd, env)
    assert edge.returncode == 0, edge.stderr
    robot = show('robot', cwd, env, '--workload', workload)
    assert robot.returncode == 0, robot.stderr
    plans = {**plan_lines(edge.stdout), **plan_lines(robot.stdout)}
    assert set(plans) == {'rrto_server', 'rrto_client', 'rrto_workload'}
    for name, words in plans.items():
        env_words = list(itertools.takewhile(ASSIGNMENT.match, words))
        argv = words[len(env_words):]
        assert pathlib.Path(argv[0]).is_file() and os.access(argv[0], os.X_OK), (name, argv)
        for assignment in env_words:
            key, value = assignment.split('=', 1)
            if key == 'LD_PRELOAD':
                assert pathlib.Path(value).is_file(), value
                assert pathlib.Path(value).resolve().is_relative_to(package.resolve())
        if '-m' in argv:
            origin = module_origin(argv[argv.index('-m') + 1], cwd, env)
            assert origin.is_file() and origin.resolve().is_relative_to(package.resolve())
        if '--params-file' in argv:
            assert pathlib.Path(argv[argv.index('--params-file') + 1]).is_file()
    assert 'LD_PRELOAD' in ' '.join(plans['rrto_workload'])
    return plans


def test_wheel_is_tagged_for_its_platform(source, tmp_path):
    run([sys.executable, '-m', 'pip', 'wheel', str(source), '--no-deps', '--no-build-isolation',
         '--disable-pip-version-check', '-q', '-w', str(tmp_path)], tmp_path, clean_env())
    (wheel,) = tmp_path.glob('*.whl')
    platform = sysconfig.get_platform().replace('-', '_').replace('.', '_')
    assert wheel.name == f'rrto_ros-0.1.0-py3-none-{platform}.whl'
    assert not wheel.name.endswith('-any.whl')
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        assert 'rrto_ros/lib/librrto_cuda.so' in names          # at the root: platlib
        assert not [n for n in names if '/lib/gen/' in n]       # generated sources stay out
        meta = z.read('rrto_ros-0.1.0.dist-info/WHEEL').decode()
        (tmp_path / 'lib.so').write_bytes(z.read('rrto_ros/lib/librrto_cuda.so'))
    assert 'Root-Is-Purelib: false' in meta and f'Tag: py3-none-{platform}' in meta
    assert elf_info.machine(tmp_path / 'lib.so') == os.uname().machine


def test_colcon_install_layout_starts(source, tmp_path):
    prefix, build = tmp_path / 'install' / 'rrto_ros', tmp_path / 'build' / 'rrto_ros'
    site = prefix / SITE
    site.mkdir(parents=True)
    build.mkdir(parents=True)
    env = clean_env(PYTHONPATH=str(site), AMENT_PREFIX_PATH=str(prefix))
    run([sys.executable, 'setup.py', 'egg_info', '--egg-base', build, 'build', '--build-base',
         build / 'build', 'install', '--prefix', prefix, '--record', build / 'install.log',
         '--single-version-externally-managed'], source, env)
    assert not (source / LIB).exists()                 # nothing built into the source tree
    for rel in DATA_FILES:
        assert (prefix / rel).is_file(), rel
    for exe in EXECUTABLES:                            # where ros2 launch / ros2 run look
        assert os.access(prefix / 'lib' / 'rrto_ros' / exe, os.X_OK), exe
    elsewhere = tmp_path / 'elsewhere'
    elsewhere.mkdir()
    lib = run([prefix / 'lib' / 'rrto_ros' / 'rrto-lib'], elsewhere, env).stdout.strip()
    assert pathlib.Path(lib) == site / LIB and pathlib.Path(lib).is_file()
    plans = check_plans_resolve(elsewhere, env, site / 'rrto_ros', 'true 3')
    assert plans['rrto_workload'][-2:] == [shutil.which('true'), '3']
    assert str(prefix / 'share' / 'rrto_ros' / 'config') in ' '.join(plans['rrto_client'])
    # The default workload is an example program of the source checkout: not installed, so
    # the plan says what to pass instead.
    default = show('robot', elsewhere, env)
    assert default.returncode == 2
    assert 'source checkout' in default.stderr and 'workload:=' in default.stderr
    assert str(prefix / 'share' / 'rrto_ros' / 'config' / 'robot.yaml') in default.stderr
    alone = show('robot', elsewhere, env, '--workload', 'none')
    assert alone.returncode == 0 and list(plan_lines(alone.stdout)) == ['rrto_client']


def test_colcon_symlink_install_builds_the_interposer(source, tmp_path):
    prefix, build = tmp_path / 'install' / 'rrto_ros', tmp_path / 'build' / 'rrto_ros'
    (prefix / SITE).mkdir(parents=True)
    build.mkdir(parents=True)
    for item in ('setup.py', 'setup.cfg', 'rrto_ros', 'package.xml', 'resource', 'launch',
                 'config'):
        (build / item).symlink_to(source / item)       # as colcon links them
    env = clean_env(PYTHONPATH=f'{build}{os.pathsep}{prefix / SITE}',
                    AMENT_PREFIX_PATH=str(prefix))
    run([sys.executable, 'setup.py', 'develop', '--prefix', prefix, '--editable',
         '--build-directory', build / 'build', '--no-deps', 'install_data', '--install-dir',
         prefix], build, env)
    assert elf_info.machine(source / LIB) == os.uname().machine   # built in the source tree
    for rel in DATA_FILES:
        assert (prefix / rel).is_file(), rel
    for exe in EXECUTABLES:
        assert os.access(prefix / 'lib' / 'rrto_ros' / exe, os.X_OK), exe
    elsewhere = tmp_path / 'elsewhere'
    elsewhere.mkdir()
    # The source checkout is what runs, so its examples resolve (a stand-in for make examples).
    example = source / 'build' / 'examples' / 'cnn_infer'
    message = show('robot', elsewhere, env)
    assert message.returncode == 2 and f'`make examples` in {source}' in message.stderr
    example.parent.mkdir(parents=True)
    example.write_text('#!/bin/sh\nexit 0\n')
    example.chmod(0o755)
    plans = check_plans_resolve(elsewhere, env, source / 'rrto_ros', '')
    assert plans['rrto_workload'][-2:] == [str(example), '20']


def test_pip_editable_install_builds_the_interposer(source, tmp_path):
    """pip install -e's build step (PEP 660 build_editable), without installing anything."""
    run([sys.executable, '-c', 'import sys; from setuptools import build_meta; '
         'print(build_meta.build_editable(sys.argv[1]))', tmp_path], source, clean_env())
    assert list(tmp_path.glob('rrto_ros-*.whl'))
    assert elf_info.machine(source / LIB) == os.uname().machine
    env = clean_env(PYTHONPATH=str(source))
    elsewhere = tmp_path / 'elsewhere'
    elsewhere.mkdir()
    check_plans_resolve(elsewhere, env, source / 'rrto_ros', 'true')
