# The README's two commands: `make run` and `make test`. Everything else here serves them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV := $(BIN)/uv
MARKETBOT_DATA_DIR ?= var
export MARKETBOT_DATA_DIR

.PHONY: run test test-deep lint types unit bench screenshots clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(UV) pip install --quiet --compile-bytecode --python $(BIN)/python -e .
	$(BIN)/python -m compileall -q src  # bytecode for the editable sources, for fast commands
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(UV) pip install --quiet --compile-bytecode --python $(BIN)/python -e '.[dev]'
	$(BIN)/python -m compileall -q src
	touch $(VENV)/.installed $@

## run: set up the database with the bundled data and backtest the built-in strategies
run: $(VENV)/.installed
	$(BIN)/marketbot demo --sample-dir data/sample
	$(BIN)/marketbot polymarket import-sample

## test: lint, layer contracts, types and the test suite
test: lint types unit

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/lint-imports
	$(BIN)/deptry src

types: $(VENV)/.installed-dev
	$(BIN)/mypy

unit: $(VENV)/.installed-dev
	$(BIN)/pytest -q -p no:cacheprovider

## test-deep: the property tests with 800 examples each (by hand, not part of `make test`)
test-deep: $(VENV)/.installed-dev
	HYPOTHESIS_PROFILE=deep $(BIN)/pytest -q -p no:cacheprovider -m "not postgres"

## bench: the benchmarks of docs/performance.md (by hand, not part of `make test`)
bench: $(VENV)/.installed-dev
	$(UV) pip install --quiet --python $(BIN)/python -e '.[dev,bench]'
	$(BIN)/python benchmarks/bench_engine.py

## screenshots: docs/screenshots/*.png of every dashboard page on demo data (by hand, not in `make test`)
screenshots: $(VENV)/.installed-dev
	$(BIN)/python -m tests.integration.web.screenshots docs/screenshots

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
