"""Pick the S3/SQS endpoint for integration tests, as DEVELOPERS.md says.

AWS_ENDPOINT_URL if set and it answers; else LocalStack through testcontainers if a Docker (or
podman) socket answers; else LocalStack as a host process (`tests/localstack.py`). moto only when
asked for by name (`ENDPOINT=moto`, `make test-moto`): it is laxer than S3, so the tests that
need a strict S3 skip there, saying why. `why` says which endpoint and why, in one line (a shell
with the project's `.envrc` points AWS_ENDPOINT_URL at an `archiver dev` or docker compose
endpoint that may not be running).
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

from tests.localstack import SERVICES, free_port, localstack_process

LOCALSTACK_IMAGE = "localstack/localstack:4.14.0"  # newer tags need LOCALSTACK_AUTH_TOKEN
START_TIMEOUT = 30.0
CHOICES = ("moto", "localstack")  # what ENDPOINT may name; localstack: the host process
PODMAN_SOCKET = "/run/podman/podman.sock"
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

    @property
    def strict(self) -> bool:
        """Whether it plays S3 as AWS does where moto does not (checksums, preconditions)."""
        return self.kind != "moto"


def answers(url: str, timeout: float = 2.0) -> bool:
    """Whether something accepts connections at the URL's host and port."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "", port), timeout=timeout):
            return True
    except OSError:
        return False


def _docker_socket() -> str | None:
    """DOCKER_HOST (or Docker's default socket), else podman's: the first that answers a ping."""
    import docker

    candidates: list[str | None] = [os.environ.get("DOCKER_HOST") or None]
    if os.path.exists(PODMAN_SOCKET):
        candidates.append(f"unix://{PODMAN_SOCKET}")
    for candidate in candidates:
        try:
            client = (
                docker.DockerClient(base_url=candidate, timeout=3)
                if candidate
                else docker.from_env(timeout=3)
            )
            if client.ping():
                return str(candidate or client.api.base_url)
        except Exception:
            continue
    return None


@contextmanager
def moto_server(module: str = "moto.server") -> Iterator[str]:
    """A moto server process on a free 127.0.0.1 port; `module` runs it (moto's, or a wrapper)."""
    port = free_port()
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
def localstack_container(socket_url: str) -> Iterator[str]:
    """LocalStack's image through testcontainers, on the socket that answered."""
    from testcontainers.localstack import LocalStackContainer

    container = LocalStackContainer(image=LOCALSTACK_IMAGE).with_services(*SERVICES)
    token = os.environ.get("LOCALSTACK_AUTH_TOKEN")
    if token:
        container = container.with_env("LOCALSTACK_AUTH_TOKEN", token)
    previous = os.environ.get("DOCKER_HOST")
    os.environ["DOCKER_HOST"] = socket_url
    try:
        with container:
            yield container.get_url()
    finally:
        if previous is None:
            os.environ.pop("DOCKER_HOST", None)
        else:
            os.environ["DOCKER_HOST"] = previous


@contextmanager
def endpoint() -> Iterator[Endpoint]:
    asked = os.environ.get("ENDPOINT", "").strip().lower()
    if asked and asked not in CHOICES:
        raise RuntimeError(f"ENDPOINT={asked!r}: expected one of {', '.join(CHOICES)}, or unset")
    if asked == "moto":
        with moto_server() as url:
            yield Endpoint(url, "moto", f"a moto server at {url} (ENDPOINT=moto)")
        return
    configured = os.environ.get("AWS_ENDPOINT_URL")
    if not asked and configured and answers(configured):
        yield Endpoint(configured, "environment", f"AWS_ENDPOINT_URL={configured}")
        return
    unset = f"AWS_ENDPOINT_URL={configured} does not answer, so " if configured else ""
    socket_url = None if asked else _docker_socket()
    if socket_url:
        with localstack_container(socket_url) as url:
            why = f"{unset}LocalStack {LOCALSTACK_IMAGE} at {url} (testcontainers, {socket_url})"
            yield Endpoint(url, "localstack", why)
        return
    reason = "ENDPOINT=localstack" if asked else "no AWS_ENDPOINT_URL, no Docker socket answers"
    if unset:
        reason = "no Docker socket answers"
    with localstack_process() as url:
        yield Endpoint(
            url, "localstack", f"{unset}LocalStack as a host process at {url} ({reason})"
        )
