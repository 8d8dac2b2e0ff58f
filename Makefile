# Every target creates or reuses one virtual environment at .venv/ (no global installs).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: venv demo test test-slow lint types unit integration compat schemas bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

venv: $(STAMP)

## A real job on the embedded endpoint: upload, submit, wait, print the URL and the listing.
demo: venv
	$(BIN)/archiver demo

## Lint, types, then every test but the slow ones in one run (unit, contract, integration on a
## real endpoint, compatibility with every ZIP reader installed).
test: lint types
	$(BIN)/pytest -m "not slow"

## Archives over 4 GiB and over 65,535 entries through every reader, and jobs of 50,000 and
## 100,000 files on the real endpoint (half an hour, GiB of disk).
test-slow: venv
	$(BIN)/pytest -m slow

lint: venv
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/cfn-lint deploy/cloudformation/*.yaml

types: venv
	$(BIN)/mypy

unit: venv
	$(BIN)/pytest -m "not integration and not compat and not slow"

integration: venv
	$(BIN)/pytest -m integration

compat: venv
	$(BIN)/pytest -m "compat and not slow"

## Regenerate the published JSON Schemas after a model change.
schemas: venv
	$(BIN)/archiver schema --output-dir schemas

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis

## Throughput and memory against the naive design and the copy limit (not part of `make test`).
bench: venv
	$(BIN)/python -m bench.run $(BENCH_ARGS)
