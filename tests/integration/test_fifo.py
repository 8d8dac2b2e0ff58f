"""FIFO queues on a real SQS endpoint (LocalStack): jobs from `jobs.fifo` are answered on
`done.fifo` in the job's own message group, and the same notification sent twice (a redelivered
job answering again) is deduplicated by SQS."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from archiver.app.cli.dev import DevResources, create_resources
from archiver.app.composition.container import Container, build_container
from archiver.app.composition.settings import Settings
from archiver.app.worker.loop import Outcome
from archiver.domain.errors import ErrorCode
from archiver.domain.notifications import Failure, JobFailed
from tests.conftest import unique
from tests.support import drive

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

pytestmark = pytest.mark.integration


@pytest.fixture
def fifo(s3: S3Client, sqs: SQSClient) -> DevResources:
    return create_resources(
        s3,
        sqs,
        source_bucket=unique("src"),
        destination_bucket=unique("dst"),
        source_queue=f"{unique('jobs')}.fifo",
        destination_queue=f"{unique('done')}.fifo",
        visibility_timeout=5,
    )


def container_for(resources: DevResources) -> Container:
    return build_container(
        Settings(
            sqs_source_queue=resources.source_queue_url,
            sqs_destination_queue=resources.destination_queue_url,
            s3_source_bucket=resources.source_bucket,
            s3_destination_bucket=resources.destination_bucket,
            sqs_wait_time_seconds=1,
        )
    )


def received(sqs: SQSClient, url: str) -> list[dict[str, object]]:
    """Everything the queue holds now (a FIFO queue: one receive per group in flight)."""
    messages: list[dict[str, object]] = []
    for _ in range(5):
        response = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=1,
            MessageSystemAttributeNames=["MessageGroupId"],
        )
        for message in response.get("Messages", []):
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            group = message.get("Attributes", {}).get("MessageGroupId")
            messages.append({"group": group, **json.loads(message["Body"])})
    return messages


def test_a_job_from_a_fifo_queue_is_answered_on_a_fifo_queue_in_its_group(
    fifo: DevResources, s3: S3Client, sqs: SQSClient
) -> None:
    s3.put_object(Bucket=fifo.source_bucket, Key="a/photo.png", Body=b"png" * 1000)
    container = container_for(fifo)
    job_id = container.source_queue().send(json.dumps({"files": [{"source": "a/photo.png"}]}))
    [job] = sqs.receive_message(
        QueueUrl=fifo.source_queue_url,
        MessageSystemAttributeNames=["MessageGroupId"],
        VisibilityTimeout=0,  # looked at, not taken
    )["Messages"]
    group = job["Attributes"]["MessageGroupId"]
    assert drive(container.worker(max_receives=None)) == [Outcome.SUCCEEDED]
    [answer] = received(sqs, fifo.destination_queue_url)
    assert answer["status"] == "succeeded"
    assert answer["job_id"] == job_id
    assert answer["group"] == group  # the job's own group, not a new one


def test_the_same_notification_twice_reaches_the_consumer_once(
    fifo: DevResources, sqs: SQSClient
) -> None:
    notifier = container_for(fifo).notifier()
    answer = JobFailed(
        job_id="job-1",
        error=Failure(code=ErrorCode.INVALID_PAYLOAD, message="no files"),
        metadata={},
    )
    notifier.publish(answer)
    notifier.publish(answer)  # a redelivered job answering again
    answers = received(sqs, fifo.destination_queue_url)
    assert [(m["job_id"], m["group"]) for m in answers] == [("job-1", "job-1")]
