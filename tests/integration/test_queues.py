"""Queues as operators already have them, on a real SQS endpoint (LocalStack): FIFO queues (a job
from `jobs.fifo` answered on `done.fifo` in its own message group, the same notification sent
twice deduplicated by SQS) and a destination queue that keeps the old 256 KiB message size."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

from archiver.app.cli.dev import DevResources, create_resources
from archiver.app.composition.container import Container, build_container
from archiver.app.composition.settings import Settings
from archiver.app.worker.outcomes import Outcome
from archiver.domain.checkpoint import Continuation
from archiver.domain.errors import ConfigurationError, ErrorCode
from archiver.domain.notifications import Failure, JobFailed
from tests.conftest import unique
from tests.integration.conftest import Drain
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


def container_for(resources: DevResources, **overrides: object) -> Container:
    values: dict[str, object] = {
        "sqs_source_queue": resources.source_queue_url,
        "sqs_destination_queue": resources.destination_queue_url,
        "s3_source_bucket": resources.source_bucket,
        "s3_destination_bucket": resources.destination_bucket,
        "sqs_wait_time_seconds": 1,
        **overrides,
    }
    return build_container(Settings(**values))  # type: ignore[arg-type]


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


def test_a_continuations_attributes_count_towards_the_queues_largest_message(
    resources: DevResources, sqs: SQSClient
) -> None:
    """SQS counts message attributes in MaximumMessageSize: a body that fits alone may not
    as a continuation, which is then refused by name before it is sent."""
    sqs.set_queue_attributes(
        QueueUrl=resources.source_queue_url, Attributes={"MaximumMessageSize": "1024"}
    )
    queue = container_for(resources).source_queue()
    body = json.dumps({"files": [{"source": "x" * 960}]})
    assert len(body) < 1024
    continuation = Continuation("job-8", datetime(2026, 12, 8, tzinfo=UTC), 1, "t" * 32)

    with pytest.raises(ConfigurationError, match="MaximumMessageSize 1,024 bytes"):
        queue.send(body, continuation)
    queue.send(body)  # alone, it fits

    [message] = queue.receive(max_messages=1, wait_seconds=1, visibility_seconds=30)
    assert message.continued is None
    queue.delete(message)


def test_a_continuation_on_a_fifo_queue_goes_in_the_jobs_group_once_per_checkpoint(
    fifo: DevResources,
) -> None:
    """A checkpointed job's continuation, sent again (a hold whose delete failed, redone),
    is deduplicated; the next checkpoint's is not. Both in the job's own group."""
    queue = container_for(fifo).source_queue()
    created = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
    for holds in (1, 1, 2):
        queue.send('{"files": []}', Continuation("job-7", created, holds, "t" * 32), "group-7")
    continued = []
    for _ in range(4):
        for message in queue.receive(max_messages=10, wait_seconds=1, visibility_seconds=30):
            continued.append((message.job_id, message.group, message.continued))
            queue.delete(message)  # a FIFO group gives its next message once this one is gone
    assert continued == [
        ("job-7", "group-7", Continuation("job-7", created, 1, "t" * 32)),
        ("job-7", "group-7", Continuation("job-7", created, 2, "t" * 32)),
    ]


def test_a_256_kib_destination_queue_gets_every_answer_cut_to_fit_with_the_full_report(
    resources: DevResources, s3: S3Client, sqs: SQSClient, drain: Drain
) -> None:
    """3,000 missing sources of 120-byte keys skipped: listed in full, the answer would be
    some 370 KiB; the queue takes 256 KiB (the default before 2025, kept by many queues)."""
    sqs.set_queue_attributes(
        QueueUrl=resources.destination_queue_url,
        Attributes={"MaximumMessageSize": str(256 * 1024)},
    )
    s3.put_object(Bucket=resources.source_bucket, Key="here.txt", Body=b"present")
    missing = [f"gone/{number:05d}-{'x' * 108}.jpg" for number in range(3000)]
    container = container_for(resources, missing_files="skip")
    container.notifier().check()  # what start-up does: reads the queue's size
    body = {"files": [{"source": "here.txt"}, *({"source": key} for key in missing)]}
    container.source_queue().send(json.dumps(body))
    assert drive(container.worker(max_receives=None)) == [Outcome.SUCCEEDED]
    [answer] = drain(resources.destination_queue_url)
    assert len(json.dumps(answer).encode()) <= 256 * 1024
    listed = answer["archive"]["missing"]
    named = [f"s3://{resources.source_bucket}/{key}" for key in missing]
    assert 0 < len(listed) < len(missing)
    assert listed == named[: len(listed)]
    assert answer["archive"]["missing_omitted"] == len(missing) - len(listed)
    report_key = f"{answer['job_id']}/report.json"
    report = json.loads(
        s3.get_object(Bucket=resources.destination_bucket, Key=report_key)["Body"].read()
    )
    assert report["archive"]["missing"] == named


def test_metadata_a_small_destination_queue_cannot_carry_fails_the_job_before_any_byte_moves(
    resources: DevResources, s3: S3Client, sqs: SQSClient, drain: Drain
) -> None:
    """255 KiB of metadata is within the job's own limit (256 KiB) but every answer echoes it:
    on a 256 KiB queue none would fit. The job fails at once, its answer without the metadata,
    rather than being archived and then looping to the dead-letter queue unanswered."""
    sqs.set_queue_attributes(
        QueueUrl=resources.destination_queue_url,
        Attributes={"MaximumMessageSize": str(256 * 1024)},
    )
    s3.put_object(Bucket=resources.source_bucket, Key="here.txt", Body=b"present")
    container = container_for(resources)
    container.notifier().check()
    metadata = {"notes": "n" * (255 * 1024)}
    container.source_queue().send(
        json.dumps({"files": [{"source": "here.txt"}], "metadata": metadata})
    )
    assert drive(container.worker(max_receives=None)) == [Outcome.FAILED]
    [answer] = drain(resources.destination_queue_url)
    assert answer["error"]["code"] == "invalid_payload"
    assert "metadata" in answer["error"]["message"]
    assert "262,144" in answer["error"]["message"]  # the queue's size, named
    assert answer["metadata"] is None
    listed = s3.list_objects_v2(Bucket=resources.destination_bucket).get("Contents", [])
    assert listed == []  # nothing archived
