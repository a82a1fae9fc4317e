# The two ways in: `make demo` (install, then run vodray with a demo upload) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
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

install: deps $(BIN)/.installed

# ffmpeg/ffprobe from the distribution; python3-venv where Debian splits it out; strace for the
# tests that prove an upload's ffmpeg commands open no other file.
deps:
	@if ! command -v ffmpeg >/dev/null || ! command -v ffprobe >/dev/null || ! command -v strace >/dev/null \
	   || ! $(PYTHON) -c 'import ensurepip, venv' 2>/dev/null; then \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends ffmpeg python3-venv strace; \
	fi

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
