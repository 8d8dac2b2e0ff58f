"""Several worker processes on one queue; one killed mid-job, one stopped: no job is lost."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING

import pytest

from archiver.app.cli.dev import DevResources
from tests.conftest import worker_environment
from tests.faults import Fault, FaultProxy
from tests.integration.conftest import Drain
from tests.support import MIB, wait_until

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

pytestmark = pytest.mark.integration
JOBS = 30


@dataclass
class WorkerProcess:
    process: subprocess.Popen[str]
    events: list[dict[str, object]] = field(default_factory=list)

    def follow(self, stream: IO[str]) -> None:
        for line in stream:
            if line.startswith("{"):
                self.events.append(json.loads(line))

    def started_jobs(self) -> list[str]:
        return [str(e["job_id"]) for e in list(self.events) if e.get("event") == "job_started"]


def spawn(environment: dict[str, str]) -> WorkerProcess:
    process = subprocess.Popen(
        [sys.executable, "-m", "archiver", "worker"],
        env=environment,
        stderr=subprocess.PIPE,
        text=True,
    )
    worker = WorkerProcess(process)
    assert process.stderr is not None
    threading.Thread(target=worker.follow, args=(process.stderr,), daemon=True).start()
    return worker


def upload_started(proxy: FaultProxy, job_id: str) -> bool:
    with proxy.lock:
        return any(m == "POST" and job_id in p and "uploads" in q for m, p, q, _ in proxy.log)


def test_three_workers_one_killed_one_stopped_lose_nothing(
    resources: DevResources,
    proxy: FaultProxy,
    s3: S3Client,
    sqs: SQSClient,
    drain: Drain,
) -> None:
    s3.put_object(Bucket=resources.source_bucket, Key="w/a.bin", Body=random.randbytes(12 * MIB))
    s3.put_object(Bucket=resources.source_bucket, Key="w/b.bin", Body=b"b" * 1000)
    # After a.bin (multipart upload under way) each job waits on b.bin: a window to kill in.
    proxy.add(Fault("stall", method="GET", path="/w/b.bin", delay=0.5, times=-1))
    job_ids = set()
    for number in range(JOBS):
        body = {"files": [{"source": "w/a.bin"}, {"source": "w/b.bin", "destination": str(number)}]}
        job_ids.add(
            sqs.send_message(QueueUrl=resources.source_queue_url, MessageBody=json.dumps(body))[
                "MessageId"
            ]
        )
    environment = worker_environment(
        resources, AWS_ENDPOINT_URL=proxy.url, SQS_VISIBILITY_TIMEOUT=5, RETRY_DELAY_SECONDS=1
    )
    killed, stopped, survivor = (spawn(environment) for _ in range(3))

    wait_until(killed.started_jobs, timeout=30)
    interrupted = killed.started_jobs()[0]
    wait_until(lambda: upload_started(proxy, interrupted), timeout=30)
    killed.process.send_signal(signal.SIGKILL)  # mid-job: its upload stays open, its job returns
    wait_until(lambda: len(stopped.started_jobs()) >= 2, timeout=30)
    stopped.process.send_signal(signal.SIGTERM)  # finishes its job, then exits 0
    assert stopped.process.wait(timeout=30) == 0

    notifications: list[dict[str, object]] = []
    deadline = time.monotonic() + 90
    while {n["job_id"] for n in notifications} < job_ids and time.monotonic() < deadline:
        notifications += drain(resources.destination_queue_url, count=JOBS, timeout=2)
    survivor.process.send_signal(signal.SIGTERM)
    assert survivor.process.wait(timeout=30) == 0
    killed.process.wait(timeout=10)

    dead = sqs.receive_message(QueueUrl=resources.dead_letter_queue_url, MaxNumberOfMessages=10)
    dead_ids = {message["MessageId"] for message in dead.get("Messages", [])}
    succeeded = Counter(str(n["job_id"]) for n in notifications if n["status"] == "succeeded")
    failed = {str(n["job_id"]) for n in notifications if n["status"] == "failed"}
    listing = s3.list_objects_v2(Bucket=resources.destination_bucket).get("Contents", [])
    archives = Counter(
        item["Key"].split("/")[0] for item in listing if item["Key"].endswith(".zip")
    )

    assert {
        job for job in job_ids if not (succeeded[job] or job in failed or job in dead_ids)
    } == set()
    assert failed == set()
    assert dead_ids == set()
    assert all(archives[job] == 1 for job in job_ids)
    assert len(archives) == JOBS
    assert not s3.list_multipart_uploads(Bucket=resources.destination_bucket).get("Uploads")
    assert succeeded[interrupted] >= 1  # redelivered after its visibility ran out, then done
    print(
        f"\n{JOBS} jobs: {sum(succeeded.values())} success notifications "
        f"({sum(1 for c in succeeded.values() if c > 1)} duplicated), {len(failed)} failed, "
        f"{len(dead_ids)} dead-lettered, {len(archives)} archives; jobs per worker: "
        f"killed {len(killed.started_jobs())}, stopped {len(stopped.started_jobs())}, "
        f"survivor {len(survivor.started_jobs())}"
    )
