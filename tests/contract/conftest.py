"""One parametrised fixture per port: the fake and the real adapter run the same suite."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest

from archiver.adapters.memory import MemoryObjectStore
from archiver.adapters.memory_queue import MemoryNotifier, MemoryQueue
from archiver.adapters.s3 import S3ObjectStore
from archiver.adapters.sqs import SqsNotifier, SqsQueue
from archiver.domain.notifications import NOTIFICATION_ADAPTER, JobFailed, JobSucceeded
from archiver.domain.ports import Notifier, ObjectStore, Queue
from tests.conftest import unique

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

IMPLEMENTATIONS = ["memory", pytest.param("real", marks=pytest.mark.integration)]


@pytest.fixture(params=IMPLEMENTATIONS)
def store_and_bucket(request: pytest.FixtureRequest) -> tuple[ObjectStore, str]:
    bucket = unique("contract")
    if request.param == "memory":
        memory = MemoryObjectStore()
        memory.create_bucket(bucket)
        return memory, bucket
    s3: S3Client = request.getfixturevalue("s3")
    s3.create_bucket(Bucket=bucket)
    return S3ObjectStore(s3), bucket


REDRIVE_LIMIT = 4


@pytest.fixture(params=IMPLEMENTATIONS)
def queue(request: pytest.FixtureRequest) -> Iterator[Queue]:
    """A queue whose redrive policy sends a job to a DLQ after REDRIVE_LIMIT deliveries."""
    if request.param == "memory":
        yield MemoryQueue(redrive_limit=REDRIVE_LIMIT)
        return
    sqs: SQSClient = request.getfixturevalue("sqs")
    name = unique("contract")
    dead = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=dead, AttributeNames=["QueueArn"])["Attributes"]
    policy = {"deadLetterTargetArn": arn["QueueArn"], "maxReceiveCount": REDRIVE_LIMIT}
    url = sqs.create_queue(
        QueueName=name,
        Attributes={"VisibilityTimeout": "30", "RedrivePolicy": json.dumps(policy)},
    )["QueueUrl"]
    yield SqsQueue(sqs, name)  # by name: resolution is part of the contract
    sqs.delete_queue(QueueUrl=url)
    sqs.delete_queue(QueueUrl=dead)


@pytest.fixture(params=IMPLEMENTATIONS)
def missing_queue(request: pytest.FixtureRequest) -> Queue:
    """A queue given by a URL that names no queue (deleted, or a typo)."""
    if request.param == "memory":
        memory = MemoryQueue()
        memory.exists = False
        return memory
    sqs: SQSClient = request.getfixturevalue("sqs")
    url = sqs.create_queue(QueueName=unique("gone"))["QueueUrl"]
    sqs.delete_queue(QueueUrl=url)
    return SqsQueue(sqs, url)


Published = Callable[[], list[JobSucceeded | JobFailed]]


@pytest.fixture(params=IMPLEMENTATIONS)
def notifier_and_reader(request: pytest.FixtureRequest) -> Iterator[tuple[Notifier, Published]]:
    if request.param == "memory":
        memory = MemoryNotifier()
        yield memory, lambda: list(memory.published)
        return
    sqs: SQSClient = request.getfixturevalue("sqs")
    url = sqs.create_queue(QueueName=unique("notify"))["QueueUrl"]

    def read() -> list[JobSucceeded | JobFailed]:
        response = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        return [
            NOTIFICATION_ADAPTER.validate_python(json.loads(message["Body"]))
            for message in response.get("Messages", [])
        ]

    yield SqsNotifier(sqs, url), read
    sqs.delete_queue(QueueUrl=url)
