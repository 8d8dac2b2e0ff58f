"""Jobs past what a queue message holds, each through a worker process of its own on the real
endpoint, its peak memory and cost per entry reported: a 50,000-object prefix, a 100,000-line
`files_from` list, and lists of 30,000 and 99,995 missing sources (with 5 present: 100,000 in
all, MAX_FILES). Peak RSS is reported, not asserted (memory targets are the benchmarks'); the
default budget promises 256 MiB."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from archiver.adapters.sqs import SqsQueue
from archiver.app.cli.dev import DevResources
from tests.conftest import worker_environment
from tests.integration.conftest import Drain

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

pytestmark = [pytest.mark.integration, pytest.mark.slow]

OBJECTS = 50_000
ARCHIVER = [sys.executable, "-m", "archiver", "worker"]


def peak_rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def entries(s3: S3Client, bucket: str, key: str) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))


def run_alone(
    resources: DevResources, drain: Drain, body: str, **settings: str
) -> tuple[dict[str, Any], float]:
    """One job on a worker process of its own (default settings otherwise): its answer and the
    worker's peak RSS, which is then this job's alone."""
    environment = worker_environment(
        resources, SQS_VISIBILITY_TIMEOUT="300", METRICS_ENABLED="0", **settings
    )
    worker = subprocess.Popen(
        ARCHIVER, env=environment, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL
    )
    try:
        SqsQueue(boto3.client("sqs"), resources.source_queue_url).send(body)
        [notification] = drain(resources.destination_queue_url, timeout=1800)
        peak = peak_rss_mib(worker.pid)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)
    assert worker.returncode == 0
    return notification, peak


def baseline_rss_mib(resources: DevResources, s3: S3Client, drain: Drain) -> float:
    """The peak RSS of a worker that answered a one-file job: what a large job adds is the rest."""
    s3.put_object(Bucket=resources.source_bucket, Key="baseline.txt", Body=b"one")
    notification, peak = run_alone(
        resources, drain, json.dumps({"files": [{"source": "baseline.txt"}]})
    )
    assert notification["status"] == "succeeded", notification
    return peak


def report(what: str, entries: int, took: float, peak: float, baseline: float) -> None:
    """Printed (run with -s to see them): the figures the README's memory section quotes."""
    print(
        f"\n{what}: {entries:,} entries, {took:.0f} s, worker peak RSS {peak:.0f} MiB, "
        f"{(peak - baseline) * 1024 / entries:.2f} KiB per entry above a one-file job's "
        f"{baseline:.0f} MiB"
    )


def test_a_50000_object_prefix_and_a_100000_line_list_build_correct_archives(
    resources: DevResources, s3: S3Client, drain: Drain
) -> None:
    source = resources.source_bucket
    baseline = baseline_rss_mib(resources, s3, drain)
    with ThreadPoolExecutor(32) as pool:
        list(
            pool.map(
                lambda n: s3.put_object(Bucket=source, Key=f"many/{n:05d}.txt", Body=b"%05d" % n),
                range(OBJECTS),
            )
        )
    lines = [
        json.dumps({"source": f"many/{n:05d}.txt", "destination": half})
        for half in ("a", "b")
        for n in range(OBJECTS)
    ]
    s3.put_object(Bucket=source, Key="lists/100k.jsonl", Body="\n".join(lines).encode())
    jobs = [
        ("prefix", json.dumps({"files": [{"prefix": "many/", "destination": "all"}]}), OBJECTS),
        ("files_from", json.dumps({"files_from": "lists/100k.jsonl"}), 2 * OBJECTS),
    ]
    for what, body, count in jobs:
        started = time.monotonic()
        notification, peak = run_alone(resources, drain, body)
        took = time.monotonic() - started
        assert notification["status"] == "succeeded", notification
        assert notification["archive"]["file_count"] == count
        archive = entries(s3, resources.destination_bucket, notification["archive"]["key"])
        names = archive.namelist()
        assert len(names) == count
        assert archive.read(names[0]) == b"00000"
        assert archive.read(names[-1]) == b"%05d" % (OBJECTS - 1)
        report(f"{what}, present", count, took, peak, baseline)


@pytest.mark.parametrize("missing", [30_000, 99_995])
def test_a_list_of_mostly_missing_sources_is_answered_with_every_missing_key(
    resources: DevResources, s3: S3Client, drain: Drain, missing: int
) -> None:
    """MISSING_FILES=skip with long keys (~190 bytes): the archive holds the 5 present files,
    the notification is cut to fit a message, the report lists every missing key in job order."""
    source = resources.source_bucket
    baseline = baseline_rss_mib(resources, s3, drain)
    present = [f"present/{n}.txt" for n in range(5)]
    for key in present:
        s3.put_object(Bucket=source, Key=key, Body=key.encode())
    pad = "p" * 170
    gone = [f"missing/{pad}/{n:08d}.bin" for n in range(missing)]
    lines = [json.dumps({"source": key}) for key in [*gone, *present]]
    s3.put_object(Bucket=source, Key="lists/missing.jsonl", Body="\n".join(lines).encode())
    started = time.monotonic()
    notification, peak = run_alone(
        resources, drain, json.dumps({"files_from": "lists/missing.jsonl"}), MISSING_FILES="skip"
    )
    took = time.monotonic() - started
    assert notification["status"] == "succeeded", notification
    assert notification["archive"]["file_count"] == len(present)
    shown = notification["archive"]["missing"]
    assert len(shown) + notification["archive"]["missing_omitted"] == missing
    assert notification["report_url"]
    report_key = f"{notification['job_id']}/report.json"
    whole = json.loads(
        s3.get_object(Bucket=resources.destination_bucket, Key=report_key)["Body"].read()
    )
    assert whole["archive"]["missing"] == [f"s3://{source}/{key}" for key in gone]
    assert shown == whole["archive"]["missing"][: len(shown)]
    report(f"files_from, {missing:,} missing", missing + len(present), took, peak, baseline)
