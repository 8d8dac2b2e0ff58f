from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from archiver.app.cli.dev import DevResources
from archiver.app.composition.container import Container, build_container
from archiver.app.composition.settings import Settings
from tests.endpoint import Endpoint
from tests.faults import FaultProxy, fault_proxy

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

pytestmark = pytest.mark.integration


def worker_settings(resources: DevResources, **overrides: Any) -> Settings:
    """A worker's settings on the test's resources: short polls, small parts, quick retries."""
    return Settings(
        sqs_source_queue=resources.source_queue_url,
        sqs_destination_queue=resources.destination_queue_url,
        s3_source_bucket=resources.source_bucket,
        s3_destination_bucket=resources.destination_bucket,
        sqs_wait_time_seconds=1,
        upload_part_size_mb=5,
        retry_delay_seconds=1,
        **overrides,
    )


@pytest.fixture
def container(resources: DevResources) -> Container:
    return build_container(worker_settings(resources))


@pytest.fixture
def proxy(aws_endpoint: Endpoint) -> Iterator[FaultProxy]:
    """A fault-injecting proxy in front of the endpoint, for the clients a test points at it."""
    with fault_proxy(aws_endpoint.url) as running:
        yield running


Drain = Callable[..., list[dict[str, Any]]]


@pytest.fixture
def drain(sqs: SQSClient) -> Drain:
    """Receive (and delete) what a queue holds, waiting up to `timeout` for `count` messages."""

    def read(url: str, count: int = 1, timeout: float = 10.0) -> list[dict[str, Any]]:
        bodies: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while len(bodies) < count and time.monotonic() < deadline:
            response = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
            for message in response.get("Messages", []):
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
                bodies.append(json.loads(message["Body"]))
        return bodies

    return read
