"""Start-up and shutdown of the worker process, as an operator meets them on a bad day."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from archiver.app.cli.dev import DevResources
from tests.conftest import worker_environment
from tests.faults import Fault, FaultProxy

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

pytestmark = pytest.mark.integration
ARCHIVER = [sys.executable, "-m", "archiver", "worker"]


def start_up(environment: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ARCHIVER, env=environment, capture_output=True, text=True, timeout=timeout, check=False
    )


def one_clear_line(result: subprocess.CompletedProcess[str]) -> str:
    """What the operator reads: exit 2 and a single `archiver: ...` line, no traceback."""
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    [line] = [line for line in result.stderr.splitlines() if line.startswith("archiver:")]
    return line


@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """Accepts connections (the kernel's backlog does) and never answers a byte."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


def test_a_queue_url_that_names_no_queue_stops_the_start_up(
    resources: DevResources, sqs: SQSClient
) -> None:
    url = sqs.create_queue(QueueName=f"{resources.source_queue_url.rsplit('/', 1)[1]}-gone")[
        "QueueUrl"
    ]
    sqs.delete_queue(QueueUrl=url)
    line = one_clear_line(start_up(worker_environment(resources, SQS_SOURCE_QUEUE=url)))
    assert line.startswith(f"archiver: SQS_SOURCE_QUEUE='{url}': ")


@pytest.mark.parametrize("variable", ["S3_DESTINATION_BUCKET", "S3_SOURCE_BUCKET"])
def test_a_bucket_that_does_not_exist_stops_the_start_up(
    resources: DevResources, variable: str
) -> None:
    environment = worker_environment(resources, **{variable: "no-such-bucket-here"})
    line = one_clear_line(start_up(environment))
    assert line.startswith(f"archiver: {variable}='no-such-bucket-here': ")


def test_a_destination_that_refuses_new_uploads_stops_the_start_up(
    resources: DevResources, proxy: FaultProxy
) -> None:
    """An SSE-KMS bucket whose key the task may not use (no kms:GenerateDataKey): S3 lists its
    uploads but refuses to create one (403). LocalStack checks no key policy, so the proxy
    refuses as AWS would; the worker must say so at start-up, not fail every job."""
    bucket = resources.destination_bucket
    refused = proxy.add(
        Fault("403", method="POST", path=f"^/{bucket}/", query="^uploads", times=-1)
    )
    environment = worker_environment(resources, AWS_ENDPOINT_URL=proxy.url)
    line = one_clear_line(start_up(environment))
    assert line.startswith(f"archiver: S3_DESTINATION_BUCKET='{bucket}': ")
    assert "AccessDenied" in line
    assert "kms:GenerateDataKey" in line  # where to look, for an encrypted bucket
    assert refused.hits >= 1


def test_an_endpoint_that_never_answers_ends_the_start_up_in_time(
    resources: DevResources, silent_endpoint: str
) -> None:
    environment = worker_environment(
        resources, AWS_ENDPOINT_URL=silent_endpoint, STARTUP_TIMEOUT_SECONDS=2
    )
    began = time.monotonic()
    line = one_clear_line(start_up(environment))
    assert time.monotonic() - began < 10  # interpreter and imports included
    assert f"talking to AWS_ENDPOINT_URL={silent_endpoint}" in line


def test_sigterm_during_a_hung_start_up_stops_the_worker_at_once(
    resources: DevResources, silent_endpoint: str
) -> None:
    environment = worker_environment(resources, AWS_ENDPOINT_URL=silent_endpoint)
    worker = subprocess.Popen(ARCHIVER, env=environment, stderr=subprocess.PIPE, text=True)
    try:
        assert worker.stderr is not None
        time.sleep(2)  # imports done, handler installed, checks hung on the silent endpoint
        assert worker.poll() is None
    finally:
        began = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        _, logs = worker.communicate(timeout=30)
    assert worker.returncode == 0, logs
    assert time.monotonic() - began < 2


def test_a_reply_cut_before_its_document_is_retried_then_reported_in_one_line(
    resources: DevResources, proxy: FaultProxy
) -> None:
    empty = proxy.add(Fault("empty", method="POST", target="GetQueueUrl", times=-1))
    environment = worker_environment(
        resources,
        AWS_ENDPOINT_URL=proxy.url,
        SQS_SOURCE_QUEUE=resources.source_queue_url.rsplit("/", 1)[1],  # a name: looked up
        STARTUP_TIMEOUT_SECONDS=3,
    )
    line = one_clear_line(start_up(environment))
    assert "the answer holds no QueueUrl" in line
    assert empty.hits >= 2  # retried, not a crash on the first


def events_until_started(environment: dict[str, str]) -> list[str]:
    """Start the worker, read its events until it runs, stop it; exit 0 asserted."""
    worker = subprocess.Popen(ARCHIVER, env=environment, stderr=subprocess.PIPE, text=True)
    events: list[str] = []
    read: list[str] = []
    try:
        assert worker.stderr is not None
        for line in worker.stderr:
            read.append(line)
            if line.startswith("{"):
                events.append(json.loads(line)["event"])
            if "worker_started" in events:
                break
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            _, rest = worker.communicate(timeout=30)
        except subprocess.TimeoutExpired:  # seen once under load: say what it was doing
            worker.kill()
            _, rest = worker.communicate()
            pytest.fail(f"no exit 30 s after SIGTERM; events {events}; then:\n{rest[-4000:]}")
    assert worker.returncode == 0, "".join(read)[-4000:] + rest[-4000:]
    return events


def test_a_reply_cut_once_is_retried_and_the_worker_starts(
    resources: DevResources, proxy: FaultProxy
) -> None:
    empty = proxy.add(Fault("empty", method="POST", target="GetQueueUrl", times=1))
    environment = worker_environment(
        resources,
        AWS_ENDPOINT_URL=proxy.url,
        SQS_SOURCE_QUEUE=resources.source_queue_url.rsplit("/", 1)[1],
    )
    events = events_until_started(environment)
    assert empty.hits == 1
    assert events[:3] == ["start_up_retry", "start_up_checked", "worker_started"]


def test_a_missing_key_reply_whose_error_body_is_cut_is_not_a_missing_bucket(
    resources: DevResources, proxy: FaultProxy
) -> None:
    """The source bucket's check reads a key that is not there: S3 answers 404 NoSuchKey. With
    that body cut mid-transfer the reply names no code, and says nothing of the bucket: the
    check must not call the bucket missing (exit 2), it retries or asks HeadBucket."""
    check = f"/{resources.source_bucket}/archiver-start-up-check"
    cut = proxy.add(Fault("cut", method="GET", path=check, times=1))
    events = events_until_started(worker_environment(resources, AWS_ENDPOINT_URL=proxy.url))
    assert cut.hits == 1
    assert events[-2:] == ["start_up_checked", "worker_started"]


def test_a_job_sent_just_after_sigterm_is_not_left_hidden(
    resources: DevResources, sqs: SQSClient
) -> None:
    """An idle worker is told to stop mid long poll, and a job arrives 1.5 s later. SQS hands
    it to the poll still under way, whether or not its caller still listens: the worker must
    finish that poll and hand the job back before it exits, not leave it hidden for the whole
    visibility timeout (60 s here)."""
    wait = 5
    environment = worker_environment(
        resources, SQS_WAIT_TIME_SECONDS=wait, SQS_VISIBILITY_TIMEOUT=60
    )
    worker = subprocess.Popen(ARCHIVER, env=environment, stderr=subprocess.PIPE, text=True)
    try:
        assert worker.stderr is not None
        for line in worker.stderr:
            if "worker_started" in line:
                break
        time.sleep(0.5)  # well into its long poll
    finally:
        began = time.monotonic()
        worker.send_signal(signal.SIGTERM)
    time.sleep(1.5)
    sqs.send_message(QueueUrl=resources.source_queue_url, MessageBody='{"files": []}')
    _, logs = worker.communicate(timeout=wait + 25)
    stopped = time.monotonic() - began
    assert worker.returncode == 0, logs
    assert stopped < wait + 5, logs  # the poll's own wait, not the visibility timeout
    events = [json.loads(line)["event"] for line in logs.splitlines() if line.startswith("{")]
    assert events[-1] == "worker_stopped"
    received = sqs.receive_message(
        QueueUrl=resources.source_queue_url, WaitTimeSeconds=2, AttributeNames=["All"]
    )
    [job] = received.get("Messages", [])  # visible at once: handed back, not hidden
    assert job["Body"] == '{"files": []}'
