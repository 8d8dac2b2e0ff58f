"""The container image as ECS runs it: `make test-container` builds it with podman and names it
in ARCHIVER_IMAGE; the worker inside talks to the endpoint on 127.0.0.1 (host network)."""

from __future__ import annotations

import io
import json
import os
import random
import shutil
import subprocess
import time
import uuid
import zipfile
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from archiver.app.cli.dev import DevResources
from tests.conftest import say
from tests.integration.conftest import Drain
from tests.support import MIB, wait_until

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

IMAGE = os.environ.get("ARCHIVER_IMAGE", "")
pytestmark = [
    pytest.mark.integration,
    pytest.mark.container,
    pytest.mark.skipif(
        not IMAGE or shutil.which("podman") is None,
        reason="needs podman and ARCHIVER_IMAGE (make test-container builds and names it)",
    ),
]
PODMAN_CONF = os.path.join(os.path.dirname(__file__), "..", "..", "docker", "podman")


def podman(*arguments: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "CONTAINERS_CONF": os.path.join(PODMAN_CONF, "containers.conf")}
    return subprocess.run(
        ["podman", *arguments],
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def logged(name: str) -> list[dict[str, object]]:
    lines = podman("logs", name).stderr.splitlines() + podman("logs", name).stdout.splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]


def started(name: str) -> bool:
    return any(event.get("event") == "worker_started" for event in logged(name))


@pytest.fixture
def worker(resources: DevResources, request: pytest.FixtureRequest) -> Iterator[str]:
    """A worker container with production defaults (20 s long polls) but the test's endpoint."""
    label = '{{index .Config.Labels "org.archiver.stand-in"}}'
    stand_in = podman("image", "inspect", "--format", label, IMAGE).stdout.strip() == "true"
    base = "a STAND-IN base (debootstrap, docker/podman/base.sh)" if stand_in else "its base"
    say(request, f"container image: {IMAGE}, built on {base}")
    name = f"archiver-test-{uuid.uuid4().hex[:8]}"
    variables = {
        "AWS_ENDPOINT_URL": os.environ["AWS_ENDPOINT_URL"],
        "AWS_ACCESS_KEY_ID": os.environ["AWS_ACCESS_KEY_ID"],
        "AWS_SECRET_ACCESS_KEY": os.environ["AWS_SECRET_ACCESS_KEY"],
        "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        "SQS_SOURCE_QUEUE": resources.source_queue_url,
        "SQS_DESTINATION_QUEUE": resources.destination_queue_url,
        "S3_SOURCE_BUCKET": resources.source_bucket,
        "S3_DESTINATION_BUCKET": resources.destination_bucket,
        # A stop lets the poll under way finish (docs/reliability.md): a short wait keeps the
        # idle stop within podman's 10 s, as README advises for `docker stop`.
        "SQS_WAIT_TIME_SECONDS": "2",
    }
    run = podman(
        "run", "--detach", "--name", name, "--network", "host",
        "--health-interval", "disable",  # no systemd timer here; `healthcheck run` still works
        *[f"--env={key}={value}" for key, value in variables.items()],
        IMAGE,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    try:
        wait_until(lambda: started(name), timeout=60, interval=0.2)
        yield name
    finally:
        podman("rm", "--force", "--time", "0", name)


def test_the_image_runs_a_job_as_a_non_root_user_and_stops_at_once(
    worker: str, resources: DevResources, s3: S3Client, sqs: SQSClient, drain: Drain
) -> None:
    body = random.Random(3).randbytes(6 * MIB)
    s3.put_object(Bucket=resources.source_bucket, Key="in/photo.jpg", Body=body)
    job = {"files": [{"source": "in/photo.jpg", "destination": "album"}], "metadata": {"n": 1}}
    sqs.send_message(QueueUrl=resources.source_queue_url, MessageBody=json.dumps(job))

    [notification] = drain(resources.destination_queue_url, timeout=60)
    assert notification["status"] == "succeeded", notification
    assert notification["metadata"] == {"n": 1}
    archive = s3.get_object(
        Bucket=resources.destination_bucket, Key=notification["archive"]["key"]
    )["Body"].read()
    with zipfile.ZipFile(io.BytesIO(archive)) as opened:
        assert opened.namelist() == ["album/photo.jpg"]
        assert opened.read("album/photo.jpg") == body

    user = podman("exec", worker, "id", "-u")
    assert user.stdout.strip() == "10001", user
    assert podman("image", "inspect", "--format", "{{.Config.User}}", IMAGE).stdout.strip() == (
        "10001:10001"
    )
    direct = podman("exec", worker, "archiver", "healthcheck")
    assert direct.returncode == 0, direct
    assert direct.stdout.startswith("healthy: "), direct.stdout
    assert podman("healthcheck", "run", worker).returncode == 0  # the image's HEALTHCHECK

    began = time.monotonic()
    stop = podman("stop", "--time", "10", worker)
    took = time.monotonic() - began
    assert stop.returncode == 0, stop.stderr
    assert took < 2 + 5, f"podman stop took {took:.1f} s while idle"  # its poll's wait, slack
    state = podman("inspect", "--format", "{{.State.ExitCode}}", worker).stdout.strip()
    assert state == "0"
    assert any(event.get("event") == "worker_stopped" for event in logged(worker))
