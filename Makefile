# The README's two commands: `make demo` and `make test`. Both set up everything they need
# (a venv in .venv, the interposer, the example CUDA programs) on a fresh Debian machine.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LIB := rrto_ros/lib/librrto_cuda.so
EXAMPLES_OUT := build/examples
INTERPOSER_SRC := $(wildcard rrto_ros/interposer/*.c rrto_ros/interposer/*.h \
                    rrto_ros/interposer/*.def rrto_ros/interposer/*.py \
                    rrto_ros/interposer/vendor_api/*.txt)

.PHONY: setup lib examples test demo clean

setup: $(STAMP)

$(STAMP): requirements.txt setup.py
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.txt
	$(BIN)/pip install -q --no-deps --no-build-isolation -e .
	touch $@

lib: $(LIB)

$(LIB): $(INTERPOSER_SRC)
	$(PY) rrto_ros/interposer/build.py --out rrto_ros/lib

examples:
	$(MAKE) -C examples OUT=$(CURDIR)/$(EXAMPLES_OUT)

test: setup lib examples
	$(BIN)/python -m pytest test -q -rs

demo: setup lib examples
	$(BIN)/python -m rrto_ros.demo

clean:
	rm -rf build rrto_ros/lib $(VENV)
