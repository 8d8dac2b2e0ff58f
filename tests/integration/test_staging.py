"""Staging objects on a strict S3 endpoint (LocalStack): a shutdown between parts, a source
replaced mid-job and a killed worker's redelivery each leave no staging object and no upload
behind, and the archive that finally lands is exact.

The sources carry no CRC-32 (sent without a checksum: LocalStack stamps CRC64NVME, as S3 does),
so every copied entry's header waits for S3's answers, and each copied range's last part goes
through a staging object under `archiver-staging/`."""

from __future__ import annotations

import json
import random
import signal
import threading
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

from archiver.adapters.s3_multipart import S3MultipartUpload
from archiver.app.cli.dev import DevResources
from archiver.app.composition.container import Container
from archiver.app.worker.outcomes import Outcome
from archiver.domain.errors import JobCancelled, TransientError
from archiver.domain.job import FileSpec, JobRequest, ObjectRef
from archiver.domain.multipart import STAGING_PREFIX
from archiver.domain.notifications import Progress
from tests.conftest import worker_environment
from tests.faults import Fault, FaultProxy
from tests.integration.conftest import Drain
from tests.integration.test_copy import plain_client
from tests.integration.test_faults import proxied_container
from tests.integration.test_workers import spawn
from tests.support import MIB, drive, wait_until
from tests.zipcheck import check_layout, contents

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

pytestmark = pytest.mark.integration

# Two large entries, each followed by a small one: both large ranges end in staging objects.
ORDER = ("big/0.mp4", "small/0.jpg", "big/1.mp4", "small/1.jpg")


def upload(s3: S3Client, bucket: str) -> dict[str, bytes]:
    sources = {
        key: random.Random(key).randbytes(12 * MIB if key.startswith("big") else 20_000)
        for key in ORDER
    }
    plain = plain_client(s3)  # no checksum sent: stamped CRC64NVME, no CRC-32 to look up
    for key, body in sources.items():
        plain.put_object(Bucket=bucket, Key=key, Body=body)
    return sources


def request() -> JobRequest:
    return JobRequest(files=[FileSpec(source=key) for key in ORDER])


def staging_left(s3: S3Client, bucket: str) -> list[str]:
    """Staging objects and open uploads (the archive's too) in the bucket."""
    objects = s3.list_objects_v2(Bucket=bucket, Prefix=STAGING_PREFIX).get("Contents", [])
    uploads = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    return [item["Key"] for item in objects] + [item["Key"] for item in uploads]


def staging_begun(s3: S3Client, bucket: str) -> bool:
    uploads = s3.list_multipart_uploads(Bucket=bucket, Prefix=STAGING_PREFIX)
    objects = s3.list_objects_v2(Bucket=bucket, Prefix=STAGING_PREFIX)
    return bool(uploads.get("Uploads") or objects.get("Contents"))


def archived(s3: S3Client, bucket: str, key: str) -> dict[str, bytes]:
    data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    check_layout(data)
    return contents(data)


def named(sources: dict[str, bytes]) -> dict[str, bytes]:
    return {key.rsplit("/", 1)[1]: body for key, body in sources.items()}


def test_a_shutdown_between_parts_leaves_no_staging_object_and_no_upload(
    resources: DevResources, s3: S3Client, proxy: FaultProxy
) -> None:
    upload(s3, resources.source_bucket)
    # The first small file arrives late: big/0's staging object is under way meanwhile.
    proxy.add(Fault("stall", method="GET", path="/small/0.jpg", delay=1.0, times=-1))
    service = proxied_container(resources, proxy).service()
    bucket = resources.destination_bucket
    cancel, seen = threading.Event(), []

    def progress(done: Progress) -> None:
        if done.files_done >= 1 and not cancel.is_set() and staging_begun(s3, bucket):
            seen.append(done.files_done)
            cancel.set()  # what the worker does when SIGTERM's grace runs out

    plan = service.plan("job-shutdown", request(), datetime.now(UTC))
    with pytest.raises(JobCancelled):
        service.build(plan, progress, cancel=cancel)
    assert seen  # stopped while a staging object existed
    assert staging_left(s3, bucket) == []
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix=plan.archive.key)


def test_a_source_replaced_mid_job_fails_the_attempt_and_the_retry_archives_the_new_version(
    container: Container,
    resources: DevResources,
    s3: S3Client,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """CopySourceIfMatch pins each copy, the staging objects' too, to the version sized: a
    source replaced between its size check and its copies is PreconditionFailed there."""
    sources = upload(s3, resources.source_bucket)
    replacement = random.Random("new").randbytes(len(sources["big/1.mp4"]))
    copy_part = S3MultipartUpload.copy_part
    replaced = []

    def replace_first(upload: S3MultipartUpload, number: int, source: ObjectRef, *rest):  # type: ignore[no-untyped-def]
        if source.key == "big/1.mp4" and not replaced:
            replaced.append(number)
            s3.put_object(Bucket=resources.source_bucket, Key=source.key, Body=replacement)
        return copy_part(upload, number, source, *rest)

    monkeypatch.setattr(S3MultipartUpload, "copy_part", replace_first)
    service = container.service()
    bucket = resources.destination_bucket
    plan = service.plan("job-replaced", request(), datetime.now(UTC))
    with pytest.raises(TransientError, match="changed"):
        service.build(plan)
    assert replaced
    assert staging_left(s3, bucket) == []
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix=plan.archive.key)

    retry = service.plan("job-replaced", request(), datetime.now(UTC))
    archive = service.build(retry, redelivered=True)
    assert archived(s3, bucket, archive.key) == named({**sources, "big/1.mp4": replacement})
    assert staging_left(s3, bucket) == []


def test_a_killed_workers_staging_objects_are_removed_by_the_redelivered_job(
    container: Container,
    resources: DevResources,
    s3: S3Client,
    proxy: FaultProxy,
    drain: Drain,
) -> None:
    sources = upload(s3, resources.source_bucket)
    bucket = resources.destination_bucket
    # The killed worker waits on the first small file: big/0's staging upload is open then.
    proxy.add(Fault("stall", method="GET", path="/small/0.jpg", delay=3.0, times=-1))
    container.source_queue().send(json.dumps({"files": [{"source": key} for key in ORDER]}))
    environment = worker_environment(
        resources, AWS_ENDPOINT_URL=proxy.url, SQS_VISIBILITY_TIMEOUT=5, RETRY_DELAY_SECONDS=1
    )
    killed = spawn(environment)
    try:
        wait_until(lambda: staging_begun(s3, bucket), timeout=30)
    finally:
        killed.process.send_signal(signal.SIGKILL)
        killed.process.wait(timeout=10)
    left = staging_left(s3, bucket)
    assert any(key.startswith(STAGING_PREFIX) for key in left)  # what the kill left

    outcomes: list[Outcome] = []
    deadline = time.monotonic() + 60
    while not outcomes and time.monotonic() < deadline:  # visible again once its 5 s run out
        outcomes = drive(container.worker(max_receives=None))
    assert outcomes == [Outcome.SUCCEEDED]
    [notification] = drain(resources.destination_queue_url)
    assert archived(s3, bucket, notification["archive"]["key"]) == named(sources)
    assert staging_left(s3, bucket) == []
