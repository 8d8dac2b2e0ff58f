"""Jobs past what a queue message holds: a 50,000-object prefix and a 100,000-line `files_from`
list, through a worker process on the real endpoint, its peak memory reported."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

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


def test_a_50000_object_prefix_and_a_100000_line_list_build_correct_archives(
    resources: DevResources, s3: S3Client, drain: Drain
) -> None:
    source = resources.source_bucket
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
    sqs_send = [
        json.dumps({"files": [{"prefix": "many/", "destination": "all"}]}),
        json.dumps({"files_from": "lists/100k.jsonl"}),
    ]
    environment = worker_environment(resources, SQS_VISIBILITY_TIMEOUT="120", METRICS_ENABLED="0")
    worker = subprocess.Popen(
        ARCHIVER, env=environment, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL
    )
    peaks = []
    try:
        queue = SqsQueue(boto3.client("sqs"), resources.source_queue_url)
        for body, count in zip(sqs_send, (OBJECTS, 2 * OBJECTS), strict=True):
            started = time.monotonic()
            queue.send(body)
            [notification] = drain(resources.destination_queue_url, timeout=1800)
            took = time.monotonic() - started
            peaks.append(peak_rss_mib(worker.pid))
            assert notification["status"] == "succeeded", notification
            assert notification["archive"]["file_count"] == count
            archive = entries(s3, resources.destination_bucket, notification["archive"]["key"])
            names = archive.namelist()
            assert len(names) == count
            assert archive.read(names[0]) == b"00000"
            assert archive.read(names[-1]) == b"%05d" % (OBJECTS - 1)
            print(f"\n{count:,} entries: {took:.0f} s, worker peak RSS {peaks[-1]:.0f} MiB")
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)
    assert worker.returncode == 0
