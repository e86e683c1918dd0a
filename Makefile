# Two commands on a fresh machine: `make dev` (run it) and `make test` (check it).
# Installs are stamped on pyproject.toml's mtime, so repeated runs skip pip entirely.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check --quiet
PYTEST_ARGS ?=
# Two workers, each test file whole on one (its module fixtures start once): most tests wait on
# services and browsers, so the suite takes 9-14 minutes instead of 19 on two cores.
PYTEST_WORKERS ?= -n 2 --dist loadfile
INTEROP := tests/interop

# Node clients for the interop suite, installed only when that suite exists.
ifneq ($(wildcard $(INTEROP)/package.json),)
NODE_STAMP := $(INTEROP)/node_modules/.installed
endif

.PHONY: dev test lint bench web install install-test

CHROMIUM := /usr/bin/chromium

dev: install
	$(BIN)/steno-collab dev

test: install-test $(NODE_STAMP) $(CHROMIUM)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	@# Byte-compile the sources once: where PYTHONDONTWRITEBYTECODE is set (as on CI) every CLI
	@# process a test starts would compile the ~190 modules it imports again (~10 % of a start).
	$(BIN)/python -m compileall -q -j 0 steno_collab gateway projector snapshotter eventlog schemas tools
	@# pytest exits 5 when it collected nothing: that is a failure too, and make treats it so.
	$(BIN)/pytest $(PYTEST_WORKERS) $(PYTEST_ARGS)

lint: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy

# The gateway bench drives the interop suite's Node clients (tests/interop/node_modules).
bench: install-test $(NODE_STAMP)
	@for script in bench/*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(PIP) install --editable .
	touch $@

# The test extras include the runtime install, so this stamp also satisfies `make dev`.
$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(PIP) install --editable '.[test]'
	touch $@ $(VENV)/.installed

$(INTEROP)/node_modules/.installed: $(INTEROP)/package.json $(wildcard $(INTEROP)/package-lock.json)
	cd $(INTEROP) && if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; \
		else npm install --no-audit --no-fund; fi
	touch $@

# Debian's Chromium for the browser tests (tests/web); Playwright drives it and downloads nothing.
$(CHROMIUM):
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

# Rebuild the committed browser bundle web/dist from web/src (Node >= 20, npm); commit web/dist.
web:
	cd web && npm ci --no-audit --no-fund && npm run build
