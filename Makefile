# The two ways in: `make demo` (install, then run vodray with a demo upload) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PLAYERS := tests/players/node_modules
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test install deps lint unit integration clean

demo: install
	$(BIN)/vodray up --demo

test: install lint
	$(BIN)/pytest

unit: install
	$(BIN)/pytest tests/unit

integration: install
	$(BIN)/pytest tests/integration

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

install: deps $(BIN)/.installed $(PLAYERS)/.installed

# ffmpeg/ffprobe from the distribution; python3-venv where Debian splits it out; strace for the
# tests that prove an upload's ffmpeg commands open no other file; chromium (it plays H.264/AAC)
# and nodejs/npm for the browser test of real players (tests/integration/test_players.py).
deps:
	@if ! command -v ffmpeg >/dev/null || ! command -v ffprobe >/dev/null || ! command -v strace >/dev/null \
	   || ! command -v chromium >/dev/null || ! command -v npm >/dev/null \
	   || ! $(PYTHON) -c 'import ensurepip, venv' 2>/dev/null; then \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends ffmpeg python3-venv strace chromium nodejs npm; \
	fi

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

# Shaka Player and hls.js, pinned by their lockfile, for the browser test (served to Chromium
# from tests/players; nothing is fetched while the tests run).
$(PLAYERS)/.installed: tests/players/package.json tests/players/package-lock.json
	npm ci --prefix tests/players --no-audit --no-fund --loglevel=error
	touch $@

clean:
	rm -rf $(VENV) $(PLAYERS) .pytest_cache .ruff_cache *.egg-info
