"""A producer using the real Amazon SQS Extended Client library (Python) offloads its job to S3;
the worker reads it from the pointer, archives, answers, and deletes the payload."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from archiver.app.cli.dev import DevResources
from archiver.app.composition.container import build_container
from archiver.app.composition.settings import Settings
from archiver.app.worker.outcomes import Outcome
from tests.integration.conftest import Drain
from tests.support import drive
from tests.zipcheck import contents

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

pytestmark = pytest.mark.integration

# In a process of its own: importing the library replaces boto3's Session class everywhere.
PRODUCER = """
import sys
import boto3
import sqs_extended_client  # noqa: F401  (patches boto3.session.Session)

sqs = boto3.session.Session().client("sqs")
sqs.large_payload_support = sys.argv[1]
sqs.always_through_s3 = True
print(sqs.send_message(QueueUrl=sys.argv[2], MessageBody=sys.stdin.read())["MessageId"])
"""


def test_a_job_sent_through_the_extended_client_is_archived_and_its_payload_deleted(
    resources: DevResources, s3: S3Client, drain: Drain
) -> None:
    payloads = f"{resources.source_bucket}-payloads"
    s3.create_bucket(Bucket=payloads)
    for number in range(300):
        s3.put_object(Bucket=resources.source_bucket, Key=f"f/{number}.txt", Body=b"%d" % number)
    job = {
        "files": [{"source": f"f/{number}.txt", "destination": "all"} for number in range(300)],
        "metadata": {"ticket": "T-1"},
    }
    sent = subprocess.run(
        [sys.executable, "-c", PRODUCER, payloads, resources.source_queue_url],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=60,
        check=True,
    )
    job_id = sent.stdout.strip()
    [offloaded] = s3.list_objects_v2(Bucket=payloads)["Contents"]
    container = build_container(
        Settings(
            sqs_source_queue=resources.source_queue_url,
            sqs_destination_queue=resources.destination_queue_url,
            s3_source_bucket=resources.source_bucket,
            s3_destination_bucket=resources.destination_bucket,
            s3_allowed_source_buckets=payloads,  # type: ignore[arg-type]
            delete_offloaded_payloads=True,
            sqs_wait_time_seconds=1,
        )
    )
    assert drive(container.worker(max_receives=None)) == [Outcome.SUCCEEDED]
    [notification] = drain(resources.destination_queue_url)
    assert notification["status"] == "succeeded"
    assert notification["job_id"] == job_id
    assert notification["metadata"] == {"ticket": "T-1"}
    archive = s3.get_object(Bucket=resources.destination_bucket, Key=notification["archive"]["key"])
    assert contents(archive["Body"].read()) == {
        f"all/{number}.txt": b"%d" % number for number in range(300)
    }
    assert offloaded["Size"] == len(json.dumps(job))
    assert not s3.list_objects_v2(Bucket=payloads).get("Contents")  # deleted once answered
