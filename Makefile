# Every target creates or reuses one virtual environment at .venv/ (no global installs).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: venv demo test lint types unit integration schemas bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

venv: $(STAMP)

## A real job on the embedded endpoint: upload, submit, wait, print the URL and the listing.
demo: venv
	$(BIN)/archiver demo

## Lint, types, then every test in one run (unit, contract, integration on a real endpoint).
test: lint types
	$(BIN)/pytest

lint: venv
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/cfn-lint deploy/cloudformation/*.yaml

types: venv
	$(BIN)/mypy

unit: venv
	$(BIN)/pytest -m "not integration"

integration: venv
	$(BIN)/pytest -m integration

## Regenerate the published JSON Schemas after a model change.
schemas: venv
	$(BIN)/archiver schema --output-dir schemas

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis

## Throughput and memory against the naive design and the copy limit (not part of `make test`).
bench: venv
	$(BIN)/python -m bench.run $(BENCH_ARGS)
