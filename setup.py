# Copyright 2026 rrto_ros authors. Apache-2.0.
import glob
import importlib.util
import os
import pathlib
import tempfile
import warnings

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py
from setuptools.command.develop import develop

try:
    from setuptools.command.bdist_wheel import bdist_wheel     # setuptools >= 70.1
except ImportError:
    try:
        with warnings.catch_warnings():   # wheel's own: "update setuptools"
            warnings.simplefilter('ignore', FutureWarning)
            from wheel.bdist_wheel import bdist_wheel
    except ImportError:     # no wheel support here (colcon installs with setup.py install)
        bdist_wheel = None

package_name = 'rrto_ros'
HERE = pathlib.Path(__file__).resolve().parent


def build_interposer(out: pathlib.Path, verbose: bool = False) -> None:
    """Build librrto_cuda.so (gcc, CUDA headers) into ``out``."""
    path = HERE / package_name / 'interposer' / 'build.py'    # by path: not PyPA's `build`
    spec = importlib.util.spec_from_file_location('rrto_interposer_build', path)
    interposer_build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(interposer_build)
    with tempfile.TemporaryDirectory() as gen:
        interposer_build.build(out, verbose=verbose, gen_dir=pathlib.Path(gen))


class BuildWithInterposer(build_py):
    """Also build librrto_cuda.so into the package's lib/ folder: the built package's, or
    for an editable install (``pip install -e``) the source tree's, which is imported."""

    def run(self):
        super().run()
        if getattr(self, 'editable_mode', False):
            build_interposer(HERE / package_name / 'lib', self.verbose > 0)
        else:
            build_interposer(pathlib.Path(self.build_lib) / package_name / 'lib',
                             self.verbose > 0)


class DevelopWithInterposer(develop):
    """``setup.py develop`` (colcon build --symlink-install, older pip -e) imports the
    source tree: build librrto_cuda.so there, since develop runs no build_py."""

    def run(self):
        if not getattr(self, 'uninstall', False):
            build_interposer(HERE / package_name / 'lib', self.verbose > 0)
        super().run()


cmdclass = {'build_py': BuildWithInterposer, 'develop': DevelopWithInterposer}
if bdist_wheel is not None:
    class PlatformWheel(bdist_wheel):
        """Tagged for the building machine's platform, for any Python 3: librrto_cuda.so is
        native code but no Python extension (py3-none-<platform>, e.g. linux_x86_64).

        Only the wheel says the package has native code (the package goes to the wheel's
        platlib root): ``setup.py install`` keeps installing into purelib, the folder colcon
        puts on PYTHONPATH (platlib differs on some systems, e.g. lib64)."""

        def finalize_options(self):
            self.distribution.has_ext_modules = lambda: True
            super().finalize_options()

        def get_tag(self):
            return ('py3', 'none', super().get_tag()[2])

    cmdclass['bdist_wheel'] = PlatformWheel


setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test', 'test.*']),
    package_data={package_name: ['interposer/*.c', 'interposer/*.h', 'interposer/*.def',
                                'interposer/vendor_api/*.txt']},
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
        (os.path.join('share', package_name, 'launch'), glob.glob('launch/*.launch.py')),
        (os.path.join('share', package_name, 'config'), glob.glob('config/*.yaml')),
    ],
    install_requires=['setuptools', 'pyzmq', 'pynacl', 'msgpack', 'numpy', 'pyyaml',
                      'zstandard', 'lz4',
                      'cuda-bindings>=12.8,<14'],   # the edge server's cuda backend
    extras_require={'test': ['pytest']},
    zip_safe=False,
    maintainer='rrto_ros maintainers',
    maintainer_email='maintainers@rrto-ros.invalid',
    description='Record/replay transparent offloading of CUDA inference for ROS 2 robots',
    license='Apache-2.0',
    cmdclass=cmdclass,
    entry_points={
        'console_scripts': [
            'rrto-server = rrto_ros.cli.server_main:main',
            'rrto-client = rrto_ros.cli.client_main:main',
            'rrto-trace = rrto_ros.cli.trace_main:main',
            'rrto-lib = rrto_ros.cli.lib_main:main',
            'rrto-keys = rrto_ros.cli.keys_main:main',
            'rrto-kapao-convert = rrto_ros.cli.kapao_convert_main:main',
            'rrto_client_node = rrto_ros.nodes.client_node:main',
            'rrto_server_node = rrto_ros.nodes.server_node:main',
            'rrto_camera_node = rrto_ros.nodes.camera_node:main',
            'rrto_pose_node = rrto_ros.nodes.pose_node:main',
            'rrto_tracker_node = rrto_ros.nodes.tracker_node:main',
            'rrto_follower_node = rrto_ros.nodes.follower_node:main',
        ],
    },
)
