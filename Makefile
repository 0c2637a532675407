# Two commands do all set-up on a fresh machine:
#   make run    the platform on the embedded bus (ARGS="--duration 10" to stop by itself), its
#               ledger in $(DATA_DIR)/ledger.db (SQLite; STARMESH_DATABASE_URL for another)
#   make test   lint, type-check and the full test suite (starts its own redis-server; needs
#               the PostgreSQL server on 127.0.0.1:5432, or STARMESH_TEST_POSTGRES_URL)

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
ARGS ?=
PYTEST_ARGS ?=
DATA_DIR ?= .starmesh

.PHONY: run test lint typecheck bench clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
		echo "starmesh needs Python >= 3.11; '$(PYTHON)' is $$($(PYTHON) --version 2>&1)." >&2; \
		echo "Run with PYTHON=/path/to/python3.11 (or newer)." >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e .
	@touch $@

$(VENV)/.installed-bench: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[bench]'
	$(BIN)/python -m pip check --disable-pip-version-check
	@touch $@ $(VENV)/.installed-run

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@ $(VENV)/.installed-run

run: $(VENV)/.installed-run
	@mkdir -p $(DATA_DIR)
	STARMESH_DATA_DIR=$(DATA_DIR) $(BIN)/starmesh run $(ARGS)

test: $(VENV)/.installed-dev
	scripts/ensure-redis-server
	scripts/ensure-chromium
	$(BIN)/python -m pip check --disable-pip-version-check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

# Every suite beside the peers (NautilusTrader, FastStream, raw redis-py): tables, JSON, plots.
bench: $(VENV)/.installed-bench
	scripts/ensure-redis-server
	$(BIN)/starmesh bench all $(ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis bench-results
	@echo "kept $(DATA_DIR)/ (the ledger: positions, cash, alerts); remove it yourself to forget them"
