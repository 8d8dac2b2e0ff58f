"""A job through the real worker on a real S3/SQS endpoint."""

from __future__ import annotations

import json
import random
import time
import urllib.request
import zlib
from typing import TYPE_CHECKING

import pytest

from archiver.app.cli.dev import DevResources
from archiver.app.composition.container import Container
from archiver.app.worker.outcomes import Outcome
from archiver.domain.checksum import crc32_text
from tests.integration.conftest import Drain
from tests.support import MIB, drive
from tests.zipcheck import check_layout, contents

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

pytestmark = pytest.mark.integration


def queue_is_empty(sqs: SQSClient, url: str) -> bool:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return all(value == "0" for value in attributes.values())


def test_full_job_produces_the_archive_and_notification(
    container: Container, resources: DevResources, s3: S3Client, sqs: SQSClient, drain: Drain
) -> None:
    rng = random.Random(11)
    sources = {
        "photos/big.jpg": rng.randbytes(12 * MIB),  # several upload parts
        "photos/small.png": rng.randbytes(1000),
        "docs/readme.txt": b"read me\n" * 10_000,
        "docs/ünïcødé 日本.txt": b"ok",
    }
    for key, body in sources.items():
        s3.put_object(Bucket=resources.source_bucket, Key=key, Body=body)
    job = {
        "files": [
            {"source": "photos/big.jpg", "destination": "album_1"},
            {
                "source": f"s3://{resources.source_bucket}/photos/small.png",
                "destination": "album_1",
            },
            {"source": "docs/readme.txt", "destination": "a/b", "name": "README.txt"},
            {"source": "docs/ünïcødé 日本.txt"},
        ],
        "metadata": {"user_email": "someone@example.com"},
    }
    job_id = container.source_queue().send(json.dumps(job))

    assert drive(container.worker(max_receives=None)) == [Outcome.SUCCEEDED]

    [notification] = drain(resources.destination_queue_url)
    key = notification["archive"]["key"]
    assert notification["status"] == "succeeded"
    assert notification["job_id"] == job_id
    assert key.startswith(f"{job_id}/download-")
    assert key.endswith(".zip")
    assert notification["metadata"] == job["metadata"]
    assert notification["substitutions"]["archiver_URL"] == notification["url"]
    with urllib.request.urlopen(notification["url"], timeout=30) as response:
        data = response.read()
    assert contents(data) == {
        "album_1/big.jpg": sources["photos/big.jpg"],
        "album_1/small.png": sources["photos/small.png"],
        "a/b/README.txt": sources["docs/readme.txt"],
        "ünïcødé 日本.txt": sources["docs/ünïcødé 日本.txt"],
    }
    check_layout(data)
    assert notification["archive"]["size_bytes"] == len(data)
    assert notification["archive"]["file_count"] == 4
    head = s3.head_object(Bucket=resources.destination_bucket, Key=key, ChecksumMode="ENABLED")
    assert notification["archive"]["crc32"] == head["ChecksumCRC32"]  # the store's own figure
    assert head.get("ChecksumType") == "FULL_OBJECT"
    assert notification["archive"]["crc32"] == crc32_text(zlib.crc32(data))
    assert head["ContentType"] == "application/zip"
    assert head["ContentDisposition"].startswith('attachment; filename="download-')
    assert head["Metadata"]["archiver-job-id"] == job_id
    uploads = s3.list_multipart_uploads(Bucket=resources.destination_bucket)
    assert not uploads.get("Uploads")
    assert queue_is_empty(sqs, resources.source_queue_url)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (
            '{"files": [{"source": "nowhere/missing.png"}], "metadata": {"id": 7}}',
            "source_not_found",
        ),
        ("definitely not json", "invalid_payload"),
    ],
)
def test_permanent_failures_are_notified_and_acknowledged(
    container: Container,
    resources: DevResources,
    s3: S3Client,
    sqs: SQSClient,
    drain: Drain,
    body: str,
    code: str,
) -> None:
    job_id = container.source_queue().send(body)
    assert drive(container.worker(max_receives=None)) == [Outcome.FAILED]
    [notification] = drain(resources.destination_queue_url)
    assert notification["status"] == "failed"
    assert notification["job_id"] == job_id
    assert notification["error"]["code"] == code
    if code == "source_not_found":
        expected = f"s3://{resources.source_bucket}/nowhere/missing.png"
        assert notification["error"]["sources"] == [expected]
        assert notification["metadata"] == {"id": 7}
    else:
        assert notification["metadata"] is None
    assert queue_is_empty(sqs, resources.source_queue_url)
    assert s3.list_objects_v2(Bucket=resources.destination_bucket).get("KeyCount", 0) == 0


def test_job_is_redelivered_after_a_transient_error(
    container: Container, resources: DevResources, s3: S3Client, sqs: SQSClient, drain: Drain
) -> None:
    """The archive bucket is missing at first (a deploy race): the job waits, then succeeds."""
    s3.put_object(Bucket=resources.source_bucket, Key="a.txt", Body=b"alpha")
    s3.delete_bucket(Bucket=resources.destination_bucket)
    job_id = container.source_queue().send('{"files": [{"source": "a.txt"}]}')
    worker = container.worker(max_receives=None)

    assert drive(worker) == [Outcome.DEFERRED]
    assert drain(resources.destination_queue_url, timeout=1) == []
    assert not queue_is_empty(sqs, resources.source_queue_url)

    s3.create_bucket(Bucket=resources.destination_bucket)
    deadline = time.monotonic() + 15  # the queue's visibility timeout is 2 s
    outcomes: list[Outcome] = []
    while not outcomes and time.monotonic() < deadline:
        outcomes = drive(worker)
    assert outcomes == [Outcome.SUCCEEDED]
    [notification] = drain(resources.destination_queue_url)
    assert notification["job_id"] == job_id
    assert notification["status"] == "succeeded"
    assert queue_is_empty(sqs, resources.source_queue_url)
