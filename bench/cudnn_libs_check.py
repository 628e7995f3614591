# Copyright 2026 rrto_ros authors. Apache-2.0.
"""Which of cuDNN's parts load in this Python, and what they miss (a diagnostic)."""

import ctypes
import glob
import os
import subprocess
import sys

for root in sys.path:
    for path in sorted(glob.glob(os.path.join(root, 'nvidia', 'cudnn', 'lib', 'libcudnn*.so.9'))):
        try:
            ctypes.CDLL(path)
            print('loads', path)
        except OSError as e:
            print('FAILS', path, e)
        missing = [ln for ln in subprocess.run(['ldd', path], capture_output=True,
                                               text=True).stdout.splitlines()
                   if 'not found' in ln]
        print('   ldd missing:', missing)
