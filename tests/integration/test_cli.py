"""The entry points as an operator runs them: separate processes on the real endpoint."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from archiver.app.cli.dev import DevResources
from tests.conftest import worker_environment
from tests.integration.conftest import Drain
from tests.zipcheck import check_layout, contents

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

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
