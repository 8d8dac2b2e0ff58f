"""A job outliving several holds on LocalStack (issue #23): each hold ends in a checkpoint
and a continuation message (real message attributes); each next receipt resumes the same
multipart upload from ListParts; S3 checks the whole archive's CRC-32 at completion, over
parts sent by four receipts, copied parts among them."""

from __future__ import annotations

import json
import random
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest
from structlog.testing import capture_logs

from archiver.adapters.s3 import S3ObjectStore
from archiver.app.cli.dev import DevResources
from archiver.app.composition.container import build_container
from archiver.app.jobs.checkpoints import Checkpointed, Superseded
from archiver.app.worker.outcomes import Outcome
from archiver.domain.checkpoint import Continuation
from archiver.domain.job import JobRequest, ObjectRef
from archiver.domain.ports import Buffer
from tests.conftest import unique
from tests.integration.conftest import Drain, worker_settings
from tests.support import MIB, drive
from tests.zipcheck import contents

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

pytestmark = pytest.mark.integration

rng = random.Random(23)
SOURCES = {
    "long/a.bin": rng.randbytes(3 * MIB),
    "long/b.png": rng.randbytes(11 * MIB),  # stored: copied by S3
    "long/c.txt": b"a long job, deflated\n" * 150_000,
    "long/d.bin": rng.randbytes(6 * MIB),
    "long/e.png": rng.randbytes(12 * MIB),  # copied
    "long/f.bin": rng.randbytes(2 * MIB),
    "long/g.txt": b"the last one\n" * 100_000,
}


class SlowSources(S3ObjectStore):
    """Reads of the sources take a while, so the job outlives a hold of one second."""

    def __init__(self, store: S3ObjectStore, bucket: str, delay: float) -> None:
        super().__init__(store._client)
        self._bucket = bucket
        self._delay = delay

    def fetch(self, ref: ObjectRef, start: int, length: int, etag: str | None = None) -> Buffer:
        if ref.bucket == self._bucket:
            time.sleep(self._delay)
        return super().fetch(ref, start, length, etag)


def test_a_job_outlives_several_holds_and_is_answered_once(
    resources: DevResources, s3: S3Client, drain: Drain
) -> None:
    container = build_container(
        worker_settings(resources, sqs_max_hold_seconds=1, download_concurrency=1)
    )
    container.object_store.override(
        SlowSources(container.object_store(), resources.source_bucket, delay=0.6)
    )
    for key, body in SOURCES.items():
        s3.put_object(Bucket=resources.source_bucket, Key=key, Body=body, ChecksumAlgorithm="CRC32")
    job_id = container.source_queue().send(json.dumps({"files": [{"prefix": "long/"}]}))

    with capture_logs() as logs:
        outcomes = drive(container.worker(max_receives=None), polls=10)

    holds = outcomes.count(Outcome.CONTINUED)
    assert holds >= 2, outcomes
    assert outcomes.count(Outcome.SUCCEEDED) == 1, outcomes
    [answer] = drain(resources.destination_queue_url, timeout=5)
    assert answer["status"] == "succeeded"
    assert answer["job_id"] == job_id
    assert answer["archive"]["file_count"] == len(SOURCES)
    resumed = [entry for entry in logs if entry["event"] == "job_resumed"]
    assert len(resumed) == holds
    [uploaded] = [entry for entry in logs if entry["event"] == "archive_uploaded"]
    assert uploaded["copied_bytes"] >= 16 * MIB  # both copied, across the holds
    key = answer["archive"]["key"]
    assert key.startswith(f"{job_id}/")
    archive = s3.get_object(Bucket=resources.destination_bucket, Key=key)["Body"].read()
    assert contents(archive) == {name.removeprefix("long/"): body for name, body in SOURCES.items()}
    listed = s3.list_objects_v2(Bucket=resources.destination_bucket, Prefix=f"{job_id}/")
    assert sorted(item["Key"] for item in listed["Contents"]) == [
        key,
        f"{job_id}/manifest.json",
    ]  # no checkpoint left
    uploads = s3.list_multipart_uploads(Bucket=resources.destination_bucket)
    assert uploads.get("Uploads", []) == []


def test_a_message_is_superseded_once_its_continuation_is_recorded_on_s3(
    resources: DevResources, s3: S3Client
) -> None:
    """The handover record is an object of its own on S3: until it is written, the job's own
    message still carries the job on (a worker killed before sending the continuation); once
    it is, only the continuation (with its token) does. Then every record is removed."""
    service = build_container(worker_settings(resources)).service()
    for key in ("short/a.bin", "short/b.bin"):
        s3.put_object(Bucket=resources.source_bucket, Key=key, Body=rng.randbytes(6 * MIB))
    job_id = unique("job")
    request = JobRequest.model_validate(
        {"files": [{"source": "short/a.bin"}, {"source": "short/b.bin"}]}
    )
    plan = service.plan(job_id, request, datetime.now(UTC))
    due = threading.Event()
    due.set()
    with pytest.raises(Checkpointed) as stopped:
        service.build(plan, due=due)
    checkpoint = stopped.value.checkpoint
    continuation = Continuation(job_id, plan.created_at, checkpoint.holds, checkpoint.token)

    assert service.admits(job_id, None)  # checkpointed, not yet continued
    service.handed_over(checkpoint)
    with pytest.raises(Superseded):
        service.admits(job_id, None)
    assert service.admits(job_id, continuation)
    assert not service.admits(job_id, replace(continuation, token="a guess" * 5))

    service.build(plan, redelivered=True)
    listed = s3.list_objects_v2(Bucket=resources.destination_bucket, Prefix=f"{job_id}/")
    assert sorted(item["Key"] for item in listed["Contents"]) == [
        plan.archive.key,
        f"{job_id}/manifest.json",
    ]
