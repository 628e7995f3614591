# The README's two commands: `make demo` and `make test`. Both set up everything they need
# (a venv in .venv, the interposer, the example CUDA programs) on a fresh Debian machine.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LIB := rrto_ros/lib/librrto_cuda.so
EXAMPLES_OUT := build/examples
CROSS_OUT := build/aarch64-cuda12
INTERPOSER_SRC := $(wildcard rrto_ros/interposer/*.c rrto_ros/interposer/*.h \
                    rrto_ros/interposer/*.def rrto_ros/interposer/*.py \
                    rrto_ros/interposer/vendor_api/*.txt)

.PHONY: setup lib examples test demo cross-aarch64 clean

setup: $(STAMP)

# PyTorch runs the pose estimator (rrto_ros/tracking) and its tests. Where the Python that
# makes the venv has one (a Jetson's or a GPU machine's CUDA build), the venv uses it (a .pth
# after the venv's own packages); else the pinned CPU build is installed. Where neither
# works (no package index), the model's tests skip and say so.
TORCH ?= torch==2.13.0
HOST_TORCH = $(PY) -c 'import os, torch; print(os.path.dirname(os.path.dirname(torch.__file__)))'
VENV_SITE = $(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'

$(STAMP): requirements.txt requirements-fuzz.txt setup.py
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.txt
	$(BIN)/pip install -q -r requirements-fuzz.txt || \
	  echo 'rrto: atheris is not installable here: the fuzz runs use their mutation loop'
	$(BIN)/python -c 'import torch' 2>/dev/null || \
	  { $(HOST_TORCH) > "$$($(VENV_SITE))/rrto_host_torch.pth" 2>/dev/null && \
	    $(BIN)/python -c 'import torch; print("rrto: using the PyTorch", torch.__version__, \
	      "of", torch.__file__)'; } || \
	  { rm -f "$$($(VENV_SITE))/rrto_host_torch.pth"; $(BIN)/pip install -q $(TORCH) 'setuptools<80'; } || \
	  echo 'rrto: $(TORCH) could not be installed here: the pose model and its tests need it'
	$(BIN)/pip install -q --no-deps --no-build-isolation -e .
	touch $@

lib: $(LIB)

$(LIB): $(INTERPOSER_SRC)
	$(PY) rrto_ros/interposer/build.py --out rrto_ros/lib

# The interposer for a Jetson (aarch64, JetPack 6's CUDA 12.6) from this machine: needs
# Debian's gcc-aarch64-linux-gnu and libc6-dev-arm64-cross; the CUDA 12 headers come from
# PyPI wheels (cached in build/cuda-headers). build.py checks the machine and the exports.
cross-aarch64: setup
	$(BIN)/python rrto_ros/interposer/build.py --target aarch64 --cuda 12 --out $(CROSS_OUT)

examples:
	$(MAKE) -C examples OUT=$(CURDIR)/$(EXAMPLES_OUT)

test: setup lib examples
	PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 $(BIN)/python -m pytest test -q -rfEs

demo: setup lib examples
	$(BIN)/python -m rrto_ros.demo

clean:
	rm -rf build rrto_ros/lib $(VENV)
