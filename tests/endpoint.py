"""Pick the S3/SQS endpoint for integration tests, as DEVELOPERS.md says.

AWS_ENDPOINT_URL if set and it answers; else LocalStack through testcontainers if a Docker
daemon answers; else a moto server subprocess on a free 127.0.0.1 port. `why` says which and why,
in one line (a shell with the project's `.envrc` points AWS_ENDPOINT_URL at an `archiver dev` or
docker compose endpoint that may not be running).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

LOCALSTACK_IMAGE = "localstack/localstack:4.14.0"  # newer tags need LOCALSTACK_AUTH_TOKEN
START_TIMEOUT = 30.0
TEST_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


@dataclass(frozen=True)
class Endpoint:
    url: str
    kind: str  # "environment", "localstack" or "moto"
    why: str = ""


def answers(url: str, timeout: float = 2.0) -> bool:
    """Whether something accepts connections at the URL's host and port."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "", port), timeout=timeout):
            return True
    except OSError:
        return False


def _docker_answers() -> bool:
    try:
        import docker

        client = docker.from_env(timeout=3)
        return bool(client.ping())
    except Exception:
        return False


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def moto_server(module: str = "moto.server") -> Iterator[str]:
    """A moto server process on a free 127.0.0.1 port; `module` runs it (moto's, or a wrapper)."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile() as output:
        process = subprocess.Popen(
            [sys.executable, "-m", module, "-H", "127.0.0.1", "-p", str(port)],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + START_TIMEOUT
            while True:
                try:
                    with urllib.request.urlopen(f"{url}/moto-api/", timeout=1):
                        break
                except OSError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        output.seek(0)
                        raise RuntimeError(
                            f"moto server did not start: {output.read()!r}"
                        ) from None
                    time.sleep(0.05)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextmanager
def localstack() -> Iterator[str]:
    from testcontainers.localstack import LocalStackContainer

    container = LocalStackContainer(image=LOCALSTACK_IMAGE).with_services("s3", "sqs")
    token = os.environ.get("LOCALSTACK_AUTH_TOKEN")
    if token:
        container = container.with_env("LOCALSTACK_AUTH_TOKEN", token)
    with container:
        yield container.get_url()


@contextmanager
def endpoint() -> Iterator[Endpoint]:
    configured = os.environ.get("AWS_ENDPOINT_URL")
    if configured and answers(configured):
        yield Endpoint(configured, "environment", f"AWS_ENDPOINT_URL={configured}")
        return
    unset = f"AWS_ENDPOINT_URL={configured} does not answer, so " if configured else ""
    if _docker_answers():
        with localstack() as url:
            yield Endpoint(url, "localstack", f"{unset}LocalStack {LOCALSTACK_IMAGE} at {url}")
    else:
        with moto_server() as url:
            reason = "" if configured else " (no AWS_ENDPOINT_URL, no Docker daemon)"
            yield Endpoint(url, "moto", f"{unset}a moto server at {url}{reason}")
