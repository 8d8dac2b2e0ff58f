# Every target creates or reuses one virtual environment at .venv/ (no global installs), and
# installs exactly the versions pinned in requirements/ (hash-checked), then archiver itself.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip install --quiet --disable-pip-version-check
LOCKED := $(PIP) --require-hashes --no-deps -r

.PHONY: venv localstack lock demo test test-moto test-slow test-container lint types unit \
	integration compat schemas bench bench-localstack deploy clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# The runtime and the embedded endpoint only: what `make demo` needs.
$(VENV)/.demo-stamp: requirements/demo.txt requirements/build.txt pyproject.toml | $(BIN)/python
	$(LOCKED) requirements/build.txt
	$(LOCKED) requirements/demo.txt
	$(PIP) --no-deps --no-build-isolation -e .
	touch $@

# Everything: tests, linters, the type checker, uv for `make lock`.
$(VENV)/.dev-stamp: requirements/dev.txt $(VENV)/.demo-stamp
	$(LOCKED) requirements/dev.txt
	touch $@

venv: $(VENV)/.dev-stamp

# LocalStack, which the integration and contract suites start as a host process where no
# AWS_ENDPOINT_URL answers and no Docker socket does (tests/endpoint.py): a virtual environment
# of its own (it pins its own boto3 and moto), hash-checked like the project's.
LOCALSTACK_VENV := .localstack
$(LOCALSTACK_VENV)/.stamp: requirements/localstack.txt
	rm -rf $(LOCALSTACK_VENV)
	$(PYTHON) -m venv $(LOCALSTACK_VENV)
	$(LOCALSTACK_VENV)/bin/python -m pip install --quiet --disable-pip-version-check \
		--require-hashes --no-deps -r requirements/localstack.txt
	touch $@

localstack: $(LOCALSTACK_VENV)/.stamp

## Re-pin every dependency after a change to pyproject.toml (or to take newer releases): the
## toolchain first, then the runtime, demo and build sets held to the same versions; LocalStack's
## own set apart (requirements/localstack.in).
UV_COMPILE := UV_NATIVE_TLS=1 $(BIN)/uv pip compile --quiet --generate-hashes --universal \
	--python-version 3.11
lock: venv
	$(UV_COMPILE) pyproject.toml --extra dev -o requirements/dev.txt $(LOCK_ARGS)
	$(UV_COMPILE) pyproject.toml -c requirements/dev.txt -o requirements/runtime.txt
	$(UV_COMPILE) pyproject.toml --extra demo -c requirements/dev.txt -o requirements/demo.txt
	$(UV_COMPILE) requirements/build.in -c requirements/dev.txt -o requirements/build.txt
	$(UV_COMPILE) requirements/localstack.in -o requirements/localstack.txt $(LOCK_ARGS)

## A real job on the embedded endpoint: upload, submit, wait, print the URL and the listing.
demo: $(VENV)/.demo-stamp
	$(BIN)/archiver demo $(DEMO_ARGS)

## Lint, types, then every test but the slow ones in one run (unit, contract, integration on
## LocalStack, compatibility with every ZIP reader installed).
test: lint types localstack
	$(BIN)/pytest -m "not slow and not container"

## The same on a moto server instead of LocalStack: quicker to start, laxer than S3 (the tests
## that need a strict S3 say so and skip).
test-moto: venv
	ENDPOINT=moto $(BIN)/pytest -m "not slow and not container"

## Archives over 4 GiB and over 65,535 entries through every reader, and jobs of 50,000 and
## 100,000 files on the real endpoint (8 minutes on LocalStack here, GiB of disk).
test-slow: venv localstack
	$(BIN)/pytest -m slow

## The image built from the Dockerfile with podman (no Docker daemon needed; a stand-in base
## where python:3.11-slim cannot be pulled), then one job through it, health, user and stop.
IMAGE ?= archiver:test
test-container: venv localstack
	bash docker/podman/build.sh $(IMAGE)
	ARCHIVER_IMAGE=$(IMAGE) $(BIN)/pytest -m container

lint: venv
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/cfn-lint deploy/cloudformation/*.yaml

types: venv
	$(BIN)/mypy

unit: venv
	$(BIN)/pytest -m "not integration and not compat and not slow"

integration: venv localstack
	$(BIN)/pytest -m integration

compat: venv
	$(BIN)/pytest -m "compat and not slow"

## Regenerate the published JSON Schemas after a model change.
schemas: venv
	$(BIN)/archiver schema --output-dir schemas

## Build, push to ECR and deploy the CloudFormation stack, printing every command first
## (docs/deploy.md): AWS_REGION, VPC_ID, SUBNET_IDS, SOURCE_BUCKET; DRY_RUN=1 only prints.
deploy:
	bash deploy/deploy.sh

clean:
	rm -rf $(VENV) $(LOCALSTACK_VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis

## Throughput and memory against the naive design and the copy limit (not part of `make test`),
## on the embedded moto server; bench-localstack: the same on LocalStack (docs/benchmarks*.md).
bench: venv
	$(BIN)/python -m bench.run $(BENCH_ARGS)

bench-localstack: venv localstack
	$(BIN)/python -m bench.run --endpoint localstack $(BENCH_ARGS)
