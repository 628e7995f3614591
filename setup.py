# Copyright 2026 rrto_ros authors. Apache-2.0.
import glob
import os
import pathlib
import sys

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

package_name = 'rrto_ros'
HERE = pathlib.Path(__file__).resolve().parent


class BuildWithInterposer(build_py):
    """Also build librrto_cuda.so (gcc, CUDA headers) into the package's lib/ folder."""

    def run(self):
        super().run()
        sys.path.insert(0, str(HERE / package_name / 'interposer'))
        import build as interposer_build  # rrto_ros/interposer/build.py
        out = pathlib.Path(self.build_lib) / package_name / 'lib'
        interposer_build.build(out, verbose=self.verbose > 0)


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
    install_requires=['setuptools', 'pyzmq', 'msgpack', 'numpy', 'pyyaml'],
    extras_require={'test': ['pytest']},
    zip_safe=False,
    maintainer='rrto_ros maintainers',
    maintainer_email='maintainers@rrto-ros.invalid',
    description='Record/replay transparent offloading of CUDA inference for ROS 2 robots',
    license='Apache-2.0',
    cmdclass={'build_py': BuildWithInterposer},
    entry_points={
        'console_scripts': [
            'rrto-server = rrto_ros.cli.server_main:main',
            'rrto-client = rrto_ros.cli.client_main:main',
            'rrto-trace = rrto_ros.cli.trace_main:main',
            'rrto-lib = rrto_ros.cli.lib_main:main',
            'rrto_client_node = rrto_ros.nodes.client_node:main',
            'rrto_server_node = rrto_ros.nodes.server_node:main',
        ],
    },
)
