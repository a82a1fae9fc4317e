# The two ways in: `make demo` (install, then run vodray with a demo upload) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PLAYERS := tests/players/node_modules
WEB     := serve/web/node_modules
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test install test-install deps test-deps lint unit integration clean

demo: install
	$(BIN)/vodray up --demo

test: test-install lint
	$(BIN)/pytest

unit: test-install
	$(BIN)/pytest tests/unit

integration: test-install
	$(BIN)/pytest tests/integration

lint: test-install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

install: deps $(BIN)/.installed $(WEB)/.installed

test-install: test-deps $(BIN)/.test-installed $(PLAYERS)/.installed $(WEB)/.installed

# Debian packages, each asked for only when what it provides is missing (a NodeSource `nodejs`
# ships its own npm, and asking apt for Debian's `npm` beside it fails with "held broken
# packages"). What running vodray needs: ffmpeg/ffprobe, python3-venv where Debian splits it
# out, and nodejs/npm to install the pages' pinned player and upload libraries (`npm ci` in
# serve/web; the app serves them). What only the tests need (`make test`): strace (an upload's
# ffmpeg opens no other file) and chromium (it plays H.264/AAC).
RUN_PKGS  = $(if $(shell command -v ffmpeg && command -v ffprobe),,ffmpeg) \
            $(if $(shell $(PYTHON) -c 'import ensurepip, venv' 2>/dev/null && echo ok),,python3-venv) \
            $(if $(shell command -v npm),,$(if $(shell command -v node),npm,nodejs npm))
TEST_PKGS = $(if $(shell command -v strace),,strace) $(if $(shell command -v chromium),,chromium)
APT_GET   = DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends

deps:
	@pkgs="$(strip $(RUN_PKGS))"; if [ -n "$$pkgs" ]; then \
	  $(SUDO) apt-get update -qq && $(APT_GET) $$pkgs; fi

test-deps: deps
	@pkgs="$(strip $(TEST_PKGS))"; if [ -n "$$pkgs" ]; then \
	  $(SUDO) apt-get update -qq && $(APT_GET) $$pkgs; fi

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e .
	touch $@

# The test extra (pytest, moto, ruff, mypy, Playwright...) only for `make test`.
$(BIN)/.test-installed: $(BIN)/.installed
	$(BIN)/pip install -q -e '.[test]'
	touch $@

# Shaka Player and hls.js, pinned by their lockfile, for the browser test (served to Chromium
# from tests/players; nothing is fetched while the tests run).
$(PLAYERS)/.installed: tests/players/package.json tests/players/package-lock.json
	npm ci --prefix tests/players --no-audit --no-fund --loglevel=error
	touch $@

# The pages' Shaka Player (with its UI) and tus-js-client, pinned by their lockfile; the app
# serves an allow-list of their built files from /static/vendor/ (serve/web/vendor.py).
$(WEB)/.installed: serve/web/package.json serve/web/package-lock.json
	npm ci --prefix serve/web --no-audit --no-fund --loglevel=error
	touch $@

clean:
	rm -rf $(VENV) $(PLAYERS) $(WEB) .pytest_cache .ruff_cache *.egg-info
