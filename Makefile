# erp-sync: `make demo` and `make test` set everything up on a fresh machine (Python 3.11+ and make).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install demo test unit lint typecheck constraints bench bench-quick bench-night clean

help:
	@echo "make demo         set up .venv and run the demo on the embedded database"
	@echo "make test         set up .venv, lint, type-check and run the whole test suite"
	@echo "make constraints  regenerate constraints.txt (the name==version pins) from pyproject.toml"
	@echo "make bench        run the benchmarks (generates ~1 GB of data under benchmarks/data)"
	@echo "make bench-quick  time start-up: small commands and a 10,000-customer import (< 2 min)"
	@echo "make bench-night  measure per-file costs (1k-1M customers; 49 min on a busy 2-core machine) and"
	@echo "                  simulate a night of 10,000 organisations (NIGHT=\"--from FILE\": simulate only)"

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "erp-sync needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)

# Reinstall only when the pins or the project metadata changed, so a second run is fast.
$(STAMP): $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[dev]"
	@# the pre-migrated Prefect database new homes start from (README, "Start-up")
	$(BIN)/python -m flows.servers prepare-prefect
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/erp-sync demo

lint: $(STAMP)
	$(BIN)/ruff check contract flows validators loaders reporting migrations tests benchmarks
	$(BIN)/ruff format --check contract flows validators loaders reporting migrations tests benchmarks
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/python -m pytest -q --durations=25

unit: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit

# Resolve the newest versions allowed by pyproject.toml in a scratch venv and pin them all.
constraints:
	rm -rf .constraints-venv
	$(PYTHON) -m venv .constraints-venv
	.constraints-venv/bin/python -m pip install --quiet --disable-pip-version-check ".[dev]"
	.constraints-venv/bin/python -m pip freeze --exclude-editable --all \
		| grep -v -E '^(erp-sync|erp_sync|pip|setuptools|wheel)==' | grep -v '@' | sort -f > constraints.txt
	rm -rf .constraints-venv

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run

bench-quick: $(STAMP)
	$(BIN)/python -m benchmarks.quick

# NIGHT="--from benchmarks/results/night-....json" simulates from saved measurements (seconds).
bench-night: $(STAMP)
	$(BIN)/python -m benchmarks.night $(or $(NIGHT),--measure)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
