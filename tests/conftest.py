"""Fixtures shared by the contract and integration suites: one real endpoint per session."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.config import Config

from archiver.app.cli.dev import DevResources, create_resources
from archiver.app.composition.settings import Settings
from archiver.app.engine.aes import start_key_threads
from tests.endpoint import TEST_CREDENTIALS, Endpoint, endpoint

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sqs import SQSClient


def project_variables() -> set[str]:
    """The worker's own settings, as a shell with the project's `.envrc` exports them."""
    return {name.upper() for name in Settings.model_fields if not name.upper().startswith("AWS_")}


def pytest_configure(config: pytest.Config) -> None:
    """Tests ignore the shell's archiver settings (`.envrc`: DEV_MODE=1 makes a worker's logs
    console text, queue and bucket names would leak into every Settings()): each test sets what
    it needs, and worker processes inherit only that."""
    for name in project_variables():
        os.environ.pop(name, None)


def say(request: pytest.FixtureRequest, line: str) -> None:
    """A line in the test run's own output, past the output capture: what a test ran on."""
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(f"\n{line}")


@pytest.fixture(scope="session")
def aws_endpoint(request: pytest.FixtureRequest) -> Iterator[Endpoint]:
    with endpoint() as chosen, pytest.MonkeyPatch.context() as patch:
        say(request, f"integration endpoint: {chosen.why}")
        if chosen.kind != "environment":
            for name, value in TEST_CREDENTIALS.items():
                patch.setenv(name, value)
        patch.setenv("AWS_ENDPOINT_URL", chosen.url)
        yield chosen


def strict_only(request: pytest.FixtureRequest, moto_lacks: str) -> None:
    """Skip on moto (asked for by name: `make test-moto`), which lacks what the test needs."""
    chosen: Endpoint = request.getfixturevalue("aws_endpoint")
    if not chosen.strict:
        pytest.skip(f"needs a strict S3: {moto_lacks}")


@pytest.fixture(scope="session")
def s3(aws_endpoint: Endpoint) -> S3Client:
    return boto3.client("s3", config=Config(s3={"addressing_style": "path"}))


@pytest.fixture(scope="session")
def sqs(aws_endpoint: Endpoint) -> SQSClient:
    return boto3.client("sqs")


@pytest.fixture(scope="session")
def secretsmanager(aws_endpoint: Endpoint) -> SecretsManagerClient:
    return boto3.client("secretsmanager")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def resources(s3: S3Client, sqs: SQSClient) -> Iterator[DevResources]:
    """Fresh buckets and queues per test (source queue: 2 s visibility, DLQ after 3)."""
    created = create_resources(
        s3,
        sqs,
        source_bucket=unique("src"),
        destination_bucket=unique("dst"),
        source_queue=unique("in"),
        destination_queue=unique("out"),
        visibility_timeout=2,
    )
    yield created
    for url in (created.source_queue_url, created.dead_letter_queue_url):
        sqs.delete_queue(QueueUrl=url)
    sqs.delete_queue(QueueUrl=created.destination_queue_url)


def worker_environment(resources: DevResources, **extra: Any) -> dict[str, str]:
    """The variables a worker process needs for these resources."""
    values = {
        "SQS_SOURCE_QUEUE": resources.source_queue_url,
        "SQS_DESTINATION_QUEUE": resources.destination_queue_url,
        "S3_SOURCE_BUCKET": resources.source_bucket,
        "S3_DESTINATION_BUCKET": resources.destination_bucket,
        "SQS_WAIT_TIME_SECONDS": "1",
        "UPLOAD_PART_SIZE_MB": "5",
        **{name: str(value) for name, value in extra.items()},
    }
    return {**os.environ, **values}


@pytest.fixture(scope="session", autouse=True)
def key_threads() -> None:
    """The process's key threads start first, as the worker starts them (build_container):
    they live as long as the process, shared by every encrypted job."""
    start_key_threads()
