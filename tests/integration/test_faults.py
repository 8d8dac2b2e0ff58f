"""Transient faults are absorbed, persistent ones end in the DLQ; no upload is left open."""

from __future__ import annotations

import json
import random
import threading
import time
from typing import TYPE_CHECKING

import pytest

from archiver.app.cli.dev import DevResources
from archiver.app.composition.container import Container, build_container
from archiver.app.composition.settings import Settings
from archiver.app.worker.outcomes import Outcome
from tests.faults import Fault, FaultProxy
from tests.integration.conftest import Drain
from tests.support import MIB, drive
from tests.zipcheck import contents

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

pytestmark = pytest.mark.integration
UPLOAD_PART = r"uploadId=.*partNumber=|partNumber=.*uploadId="


@pytest.fixture
def proxy(proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch) -> FaultProxy:
    """The shared proxy, and the clients of the containers built here go through it."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
    return proxy


def proxied_container(resources: DevResources, proxy: FaultProxy, **overrides: object) -> Container:
    values: dict[str, object] = {
        "sqs_source_queue": resources.source_queue_url,
        "sqs_destination_queue": resources.destination_queue_url,
        "s3_source_bucket": resources.source_bucket,
        "s3_destination_bucket": resources.destination_bucket,
        "aws_endpoint_url": proxy.url,
        "sqs_wait_time_seconds": 1,
        "upload_part_size_mb": 5,
        "retry_delay_seconds": 0,
        "aws_max_attempts": 2,
        **overrides,
    }
    return build_container(Settings(**values))  # type: ignore[arg-type]


def open_uploads(s3: S3Client, bucket: str) -> list[object]:
    return list(s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []))


def poll_until_done(container: Container, limit: int = 8) -> list[Outcome]:
    worker = container.worker(max_receives=None)
    outcomes: list[Outcome] = []
    deadline = time.monotonic() + 60
    while len(outcomes) < limit and time.monotonic() < deadline:
        outcomes += drive(worker)
        if outcomes and outcomes[-1] in (Outcome.SUCCEEDED, Outcome.FAILED):
            break
    return outcomes


@pytest.fixture
def sources(resources: DevResources, s3: S3Client) -> dict[str, bytes]:
    rng = random.Random(21)
    bodies = {"f/big.bin": rng.randbytes(11 * MIB), "f/small.txt": b"small " * 1000}
    for key, body in bodies.items():
        s3.put_object(Bucket=resources.source_bucket, Key=key, Body=body)
    return bodies


JOB = json.dumps({"files": [{"source": "f/big.bin"}, {"source": "f/small.txt"}]})


def test_transient_faults_are_absorbed_and_the_job_completes(
    resources: DevResources,
    proxy: FaultProxy,
    s3: S3Client,
    drain: Drain,
    sources: dict[str, bytes],
) -> None:
    container = proxied_container(resources, proxy)
    faults = [
        proxy.add(Fault("503", method="PUT", query=UPLOAD_PART)),  # retried by botocore
        proxy.add(Fault("500", method="GET", path="/f/small.txt")),  # retried by botocore
        proxy.add(Fault("stall", method="GET", path="/f/small.txt", delay=0.5)),
        proxy.add(Fault("cut", method="GET", path="/f/big.bin")),  # mid-body: resumed
    ]
    container.source_queue().send(JOB)

    outcomes = poll_until_done(container)

    assert outcomes == [Outcome.SUCCEEDED]
    assert [fault.hits for fault in faults] == [1, 1, 1, 1]
    [notification] = drain(resources.destination_queue_url)
    assert notification["status"] == "succeeded"
    data = s3.get_object(Bucket=resources.destination_bucket, Key=notification["archive"]["key"])
    assert contents(data["Body"].read()) == {
        "big.bin": sources["f/big.bin"],
        "small.txt": sources["f/small.txt"],
    }
    assert open_uploads(s3, resources.destination_bucket) == []


def test_bodies_cut_mid_transfer_resume_and_the_job_completes_on_its_first_delivery(
    resources: DevResources, proxy: FaultProxy, s3: S3Client, drain: Drain
) -> None:
    rng = random.Random(7)
    bodies = {f"v/{number}.bin": rng.randbytes(7 * MIB) for number in range(3)}
    for key, body in bodies.items():
        s3.put_object(Bucket=resources.source_bucket, Key=key, Body=body)
    # Four cuts cannot exhaust one fetch's four resumes, wherever they land.
    cuts = proxy.add(Fault("cut", method="GET", path="/v/", times=4))
    container = proxied_container(resources, proxy)
    container.source_queue().send(json.dumps({"files": [{"source": key} for key in bodies]}))

    outcomes = poll_until_done(container)

    assert outcomes == [Outcome.SUCCEEDED]  # no redelivery: nothing restarted from scratch
    assert cuts.hits == 4
    [notification] = drain(resources.destination_queue_url)
    assert notification["archive"]["size_bytes"] > 21 * MIB  # multipart: parts of 5 MiB
    data = s3.get_object(Bucket=resources.destination_bucket, Key=notification["archive"]["key"])
    assert contents(data["Body"].read()) == {
        key.split("/")[1]: body for key, body in bodies.items()
    }
    assert open_uploads(s3, resources.destination_bucket) == []


def test_persistent_faults_end_in_the_dead_letter_queue_and_leave_nothing(
    resources: DevResources,
    proxy: FaultProxy,
    s3: S3Client,
    sqs: SQSClient,
    drain: Drain,
    sources: dict[str, bytes],
) -> None:
    container = proxied_container(resources, proxy)
    proxy.add(Fault("503", method="PUT", query=UPLOAD_PART, times=-1))
    job_id = container.source_queue().send(JOB)
    worker = container.worker(max_receives=None)

    outcomes: list[Outcome] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(outcomes) < 6:
        polled = drive(worker)
        if not polled and len(outcomes) >= 3:
            break  # after maxReceiveCount (3) deliveries SQS moves it to the DLQ
        outcomes += polled

    assert outcomes == [Outcome.DEFERRED] * 3
    dead = sqs.receive_message(QueueUrl=resources.dead_letter_queue_url, WaitTimeSeconds=2)
    assert [message["MessageId"] for message in dead.get("Messages", [])] == [job_id]
    assert drain(resources.destination_queue_url, timeout=1) == []
    assert open_uploads(s3, resources.destination_bucket) == []
    assert s3.list_objects_v2(Bucket=resources.destination_bucket).get("KeyCount", 0) == 0


def test_heartbeat_keeps_a_job_longer_than_its_visibility_from_a_second_worker(
    resources: DevResources,
    proxy: FaultProxy,
    s3: S3Client,
    sqs: SQSClient,
    drain: Drain,
    sources: dict[str, bytes],
) -> None:
    container = proxied_container(resources, proxy, sqs_visibility_timeout=5)
    proxy.add(Fault("stall", method="GET", path="/f/", delay=4.0, times=2))  # job: over 8 s
    job_id = container.source_queue().send(JOB)
    outcomes: list[Outcome] = []
    worker = threading.Thread(
        target=lambda: outcomes.extend(drive(container.worker(max_receives=None)))
    )
    worker.start()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not proxy_saw_get(proxy):
        time.sleep(0.05)  # the worker holds the message once it fetches sources

    stolen: list[str] = []
    while worker.is_alive() and time.monotonic() < deadline + 30:  # the job runs over 8 s
        response = sqs.receive_message(
            QueueUrl=resources.source_queue_url, WaitTimeSeconds=1, VisibilityTimeout=1
        )
        stolen.extend(message["MessageId"] for message in response.get("Messages", []))
    worker.join(timeout=30)

    assert outcomes == [Outcome.SUCCEEDED]
    assert stolen == []
    [notification] = drain(resources.destination_queue_url)
    assert notification["job_id"] == job_id


def proxy_saw_get(proxy: FaultProxy) -> bool:
    with proxy.lock:
        return any(
            method == "GET" and path.startswith("/") and "/f/" in path
            for method, path, _, _ in proxy.log
        )
