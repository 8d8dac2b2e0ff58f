"""The entry points as an operator runs them: separate processes on the real endpoint."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from archiver.app.cli.dev import DevResources
from tests.conftest import worker_environment
from tests.integration.conftest import Drain
from tests.zipcheck import check_layout, contents

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

pytestmark = pytest.mark.integration
ARCHIVER = [sys.executable, "-m", "archiver"]


def test_submit_then_worker_process_then_sigterm(
    resources: DevResources, s3: S3Client, drain: Drain
) -> None:
    environment = worker_environment(resources)
    s3.put_object(Bucket=resources.source_bucket, Key="in/a.txt", Body=b"from the cli")
    submitted = subprocess.run(
        [*ARCHIVER, "submit", "--source", "in/a.txt:folder", "--metadata", '{"n": 1}'],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    job_id = submitted.stdout.strip()

    worker = subprocess.Popen(ARCHIVER, env=environment, stderr=subprocess.PIPE, text=True)
    try:
        [notification] = drain(resources.destination_queue_url, timeout=30)
    finally:
        worker.send_signal(signal.SIGTERM)
        _, logs = worker.communicate(timeout=30)
    assert worker.returncode == 0, logs
    assert notification["job_id"] == job_id
    assert notification["metadata"] == {"n": 1}
    key = notification["archive"]["key"]
    data = s3.get_object(Bucket=resources.destination_bucket, Key=key)["Body"].read()
    assert contents(data) == {"folder/a.txt": b"from the cli"}
    events = [json.loads(line)["event"] for line in logs.splitlines() if line.startswith("{")]
    assert events[:2] == ["start_up_checked", "worker_started"]
    assert "job_succeeded" in events
    assert events[-1] == "worker_stopped"


def build(resources: DevResources, job: Path, output: Path) -> subprocess.CompletedProcess[str]:
    """`archiver build JOB --output OUTPUT` as a user runs it."""
    return subprocess.run(
        [*ARCHIVER, "build", str(job), "--output", str(output)],
        env=worker_environment(resources),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_build_to_a_local_file(resources: DevResources, s3: S3Client, tmp_path: Path) -> None:
    s3.put_object(Bucket=resources.source_bucket, Key="x/1.txt", Body=b"one")
    s3.put_object(Bucket=resources.source_bucket, Key="x/2.txt", Body=b"two")
    job = tmp_path / "job.json"
    job.write_text(
        json.dumps({"files": [{"source": "x/1.txt"}, {"source": "x/2.txt", "destination": "d"}]})
    )
    output = tmp_path / "out.zip"
    result = build(resources, job, output)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    data = output.read_bytes()
    assert summary["size_bytes"] == len(data)
    assert summary["file_count"] == 2
    assert contents(data) == {"1.txt": b"one", "d/2.txt": b"two"}
    check_layout(data)
    assert "2/2 files" in result.stderr  # the progress line


def test_worker_refuses_to_start_without_its_settings(tmp_path: Path) -> None:
    result = subprocess.run(
        [*ARCHIVER, "worker"],
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    for name in (
        "SQS_SOURCE_QUEUE",
        "SQS_DESTINATION_QUEUE",
        "S3_SOURCE_BUCKET",
        "S3_DESTINATION_BUCKET",
    ):
        assert f"{name} is required" in result.stderr


def test_worker_refuses_to_start_with_a_misspelt_queue(resources: DevResources) -> None:
    environment = worker_environment(resources, SQS_SOURCE_QUEUE="no-such-queue")
    result = subprocess.run(
        [*ARCHIVER, "worker"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "SQS_SOURCE_QUEUE='no-such-queue'" in result.stderr
    assert "NonExistentQueue" in result.stderr or "does not exist" in result.stderr


def test_a_failed_build_leaves_no_file_behind(
    resources: DevResources, s3: S3Client, tmp_path: Path
) -> None:
    s3.put_object(Bucket=resources.source_bucket, Key="x/1.txt", Body=b"one" * 100_000)
    job = tmp_path / "job.json"
    job.write_text(json.dumps({"files": [{"source": "x/1.txt"}, {"source": "x/missing.txt"}]}))
    output = tmp_path / "out.zip"
    output.write_bytes(b"an earlier archive")
    result = build(resources, job, output)
    assert result.returncode == 1
    assert "cannot be read" in result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["job.json", "out.zip"]
    assert output.read_bytes() == b"an earlier archive"  # never half-overwritten


def submit(environment: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ARCHIVER, "submit", *argv],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_submit_a_job_file_and_wait_for_its_answer(
    resources: DevResources, s3: S3Client, drain: Drain, tmp_path: Path
) -> None:
    environment = worker_environment(resources)
    s3.put_object(Bucket=resources.source_bucket, Key="in/a.txt", Body=b"waited for")
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(json.dumps({"files": [{"source": "in/a.txt"}], "metadata": {"n": 1}}))
    bad.write_text(json.dumps({"files": [{"source": "in/missing.txt"}]}))
    worker = subprocess.Popen(
        [*ARCHIVER, "worker"], env=environment, stderr=subprocess.DEVNULL, text=True
    )
    try:
        succeeded = submit(environment, str(good), "--name", "Holiday", "--wait")
        failed = submit(environment, str(bad), "--wait", "--timeout", "60")
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)

    assert succeeded.returncode == 0, succeeded.stderr
    job_id, printed = succeeded.stdout.split("\n", 1)
    answer = json.loads(printed)
    assert answer["job_id"] == job_id
    assert answer["status"] == "succeeded"
    assert answer["metadata"] == {"n": 1}
    assert answer["archive"]["key"] == f"{job_id}/Holiday.zip"
    data = s3.get_object(Bucket=resources.destination_bucket, Key=answer["archive"]["key"])
    assert contents(data["Body"].read()) == {"a.txt": b"waited for"}

    assert failed.returncode == 1, failed.stderr
    failure = json.loads(failed.stdout.split("\n", 1)[1])
    assert failure["status"] == "failed"
    assert failure["error"]["code"] == "source_not_found"
    # --wait only looked: the downstream consumer still receives both answers.
    delivered = drain(resources.destination_queue_url, count=2, timeout=30)
    assert sorted(body["status"] for body in delivered) == ["failed", "succeeded"]


def test_submit_wait_without_a_worker_gives_up_with_exit_3(resources: DevResources) -> None:
    result = submit(
        worker_environment(resources), "--source", "in/a.txt", "--wait", "--timeout", "2"
    )
    assert result.returncode == 3
    job_id = result.stdout.strip()
    assert result.stderr == f"archiver: no answer to job {job_id} within 2 s\n"


def test_dev_stops_within_its_one_second_poll_of_ctrl_c() -> None:
    """A stop lets the long poll under way finish (`archiver dev` polls for 1 s)."""
    from archiver.app.cli.dev import free_port

    environment = {**os.environ, "PYTHONUNBUFFERED": "1"}
    dev = subprocess.Popen(
        [*ARCHIVER, "dev", "--port", str(free_port())],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert dev.stderr is not None
    try:
        lines = iter(dev.stderr.readline, "")
        assert any("worker_started" in line for line in lines), "dev never started its worker"
        dev.send_signal(signal.SIGINT)
        began = time.monotonic()
        dev.wait(timeout=30)
        took = time.monotonic() - began
    finally:
        dev.kill()
    assert dev.returncode == 0
    assert took < 2.5, f"archiver dev took {took:.2f} s to stop after Ctrl-C"  # 0.3–1.3 s here


def test_ctrl_c_while_waiting_exits_130_without_a_traceback(resources: DevResources) -> None:
    waiting = subprocess.Popen(
        [*ARCHIVER, "submit", "--source", "in/a.txt", "--wait"],
        env={**worker_environment(resources), "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert waiting.stdout is not None
    job_id = waiting.stdout.readline().strip()  # sent: now it waits for the answer
    waiting.send_signal(signal.SIGINT)
    out, err = waiting.communicate(timeout=30)
    assert job_id
    assert waiting.returncode == 130
    assert "Traceback" not in err
    assert out == ""


@pytest.mark.parametrize("queues", [[], ["--fifo"]], ids=["standard", "fifo"])
def test_the_demo_runs_a_job_end_to_end(queues: list[str]) -> None:
    """`make demo` (and `make demo DEMO_ARGS=--fifo`): a job on the embedded endpoint, its
    answer received, its archive downloaded and every entry checked."""
    demo = subprocess.run(
        [*ARCHIVER, "demo", *queues],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert demo.returncode == 0, demo.stderr[-3000:]
    assert "5 entries:" in demo.stdout
    assert demo.stdout.count("  ok  ") == 5, demo.stdout[-2000:]
    suffix = ".fifo" if queues else ""
    assert re.search(rf"^jobs \S+/input-queue{re.escape(suffix)}$", demo.stdout, re.M)
    assert re.search(rf"^answers \S+/output-queue{re.escape(suffix)}$", demo.stdout, re.M)


def test_submit_refuses_a_job_larger_than_the_source_queue_takes(
    resources: DevResources, sqs: SQSClient
) -> None:
    """A source queue made with a small MaximumMessageSize (1 KiB here; 256 KiB on many older
    queues): the job is refused before it is sent, naming the queue, both sizes and the way
    out (`files_from`), not with SQS's error from the middle of a send."""
    sqs.set_queue_attributes(
        QueueUrl=resources.source_queue_url, Attributes={"MaximumMessageSize": "1024"}
    )
    sources = [f"--source=albums/2026/wedding/{n:04}-{'x' * 40}.jpg" for n in range(30)]
    submitted = subprocess.run(
        [*ARCHIVER, "submit", *sources],
        env=worker_environment(resources),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert submitted.returncode == 2, submitted.stderr
    [line] = submitted.stderr.splitlines()
    assert line.startswith(f"archiver: SQS_SOURCE_QUEUE='{resources.source_queue_url}': ")
    assert "MaximumMessageSize 1,024 bytes" in line
    assert "files_from" in line
    visible = sqs.get_queue_attributes(
        QueueUrl=resources.source_queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )
    assert visible["Attributes"]["ApproximateNumberOfMessages"] == "0"
