# Two commands on a fresh machine: `make demo` and `make test`.
# Every target installs what it needs and is safe to run again.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
INTEROP := .venv-interop
STAMP := $(VENV)/.installed
NPM_STAMP := node_modules/.installed
PYTEST_ARGS ?=

.PHONY: all setup system-deps demo lint test fuzz clean

all: test

$(PY):
	$(PYTHON) -m venv $(VENV)

# The project, editable, with everything the tests need.
$(STAMP): pyproject.toml | $(PY)
	$(PIP) install --upgrade pip
	$(PIP) install -e '.[test]'
	touch $@

# pycose 1.1 only decodes with cbor2 < 6, so the COSE interop check runs in its own venv.
$(INTEROP)/.installed:
	$(PYTHON) -m venv $(INTEROP)
	$(INTEROP)/bin/python -m pip --disable-pip-version-check -q install 'pycose==1.1.0' 'cbor2<6' cryptography
	touch $@

# Node packages (solcjs, anvil, sm-crypto, MicroPython's WebAssembly port) go into ./node_modules,
# pinned by package-lock.json.
$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Mosquitto, socat, strace (the durable-ack test counts fsyncs with it) and Chromium (the
# status page is checked in a headless browser) come from Debian packages when they are
# missing: installed by root, or named for a user to install (a non-root make never runs
# apt-get, and nothing is installed when all are present).
SYSTEM_PACKAGES := mosquitto mosquitto-clients socat strace chromium
system-deps:
	@command -v mosquitto >/dev/null 2>&1 && command -v socat >/dev/null 2>&1 && command -v strace >/dev/null 2>&1 \
	  && command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" != 0 ]; then \
	    echo "missing system packages; install them as root, then run make again:" >&2; \
	    echo "  sudo apt-get install $(SYSTEM_PACKAGES)" >&2; exit 1; fi; \
	  echo "installing $(SYSTEM_PACKAGES) from Debian packages"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(SYSTEM_PACKAGES) >/dev/null; }

setup: system-deps $(STAMP) $(INTEROP)/.installed $(NPM_STAMP)

demo: setup
	$(VENV)/bin/edgeledger demo

# ruff over the whole repository; mypy over the CPython-only code: the gateway, the agent's
# CPython modules (paho, pyserial, cryptography, tongsuopy, the Linux entry point) and tools/
# (settings in pyproject.toml). mypy sees the packages under their installed names through
# build/typecheck/edgeledger, a tree of links.
TYPECHECK := build/typecheck/edgeledger
AGENT_CPYTHON := edgeledger.agent.linux edgeledger.agent.mqtt_paho edgeledger.agent.serial_port \
	edgeledger.agent.crypto.cpython edgeledger.agent.crypto.tongsuo

lint: setup
	$(VENV)/bin/ruff check .
	@mkdir -p $(TYPECHECK)
	@for d in protocols agent firmware gateway; do ln -sfn ../../../$$d $(TYPECHECK)/$$d; done
	$(VENV)/bin/mypy -p edgeledger.gateway $(addprefix -m ,$(AGENT_CPYTHON))
	$(VENV)/bin/mypy tools

test: setup lint
	$(VENV)/bin/pytest $(PYTEST_ARGS)

# The fuzz tests of `make test`, run for longer: 20,000 examples per property
# (tests/fuzz/profiles.py; EDGELEDGER_FUZZ_EXAMPLES=N to choose another count).
fuzz: setup
	EDGELEDGER_FUZZ=1 $(VENV)/bin/pytest -p no:cacheprovider tests/fuzz $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) $(INTEROP) node_modules build dist *.egg-info
