"""LocalStack as a host process: no Docker, its own virtual environment (`make localstack`).

Started on a free 127.0.0.1 port, in a scratch folder of its own (state, cache and log), in a
process group of its own that is stopped as a whole; it also dies with the process that started
it (Linux), so neither Ctrl-C nor a killed test run leaves it behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON = ROOT / ".localstack" / "bin" / "python"
SERVICES = ("s3", "sqs", "secretsmanager")
START_TIMEOUT = 90.0  # about 3 s here; a cold first import on a loaded machine takes longer
STOP_TIMEOUT = 10.0
PORT_ATTEMPTS = 3
PORT_TAKEN = ("Address already in use", "Errno 98")


class LocalStackError(RuntimeError):
    """LocalStack is not installed, or did not start: the message says where to look."""


def python() -> Path:
    configured = os.environ.get("LOCALSTACK_PYTHON")
    return Path(configured) if configured else PYTHON


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def environment(port: int, root: Path, services: Sequence[str]) -> dict[str, str]:
    """LocalStack's settings for one run: loopback only, everything under `root`."""
    address = f"127.0.0.1:{port}"
    return {
        **os.environ,
        "GATEWAY_LISTEN": address,
        "LOCALSTACK_HOST": address,
        "SERVICES": ",".join(services),
        "DNS_ADDRESS": "0",  # no DNS server of its own
        "OVERRIDE_IN_DOCKER": "0",  # a container-looking cgroup would put its files in /var/lib
        "FILESYSTEM_ROOT": str(root),
        "SQS_ENDPOINT_STRATEGY": "path",  # queue URLs on 127.0.0.1, not sqs.<region>.127.0.0.1
        "DISABLE_EVENTS": "1",  # no analytics calls home
        "SKIP_SSL_CERT_DOWNLOAD": "1",
    }


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the test run that started us ends."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _stop(process: subprocess.Popen[bytes]) -> None:
    """The whole process group: SIGTERM, then SIGKILL after STOP_TIMEOUT."""
    for sent, wait in ((signal.SIGTERM, STOP_TIMEOUT), (signal.SIGKILL, STOP_TIMEOUT)):
        try:
            os.killpg(process.pid, sent)
        except ProcessLookupError:
            break
        try:
            process.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # anything it left in its group
    # A signal is delivered asynchronously: return once the group has really gone.
    deadline = time.monotonic() + STOP_TIMEOUT
    while _group_members(process.pid) and time.monotonic() < deadline:
        time.sleep(0.02)


def _group_members(group: int) -> list[int]:
    """The live (not zombie) processes of a process group, read from /proc."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text(encoding="ascii").rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z" and int(fields[2]) == group:
            members.append(int(stat.parent.name))
    return members


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_localstack/health", timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _rerun(port: int, root: Path, services: Sequence[str]) -> str:
    ours = {
        name: value
        for name, value in environment(port, root, services).items()
        if os.environ.get(name) != value
    }
    assignments = " ".join(f"{name}={shlex.quote(value)}" for name, value in ours.items())
    return f"{assignments} {python()} -m localstack.runtime.main"


@contextmanager
def _started(port: int, root: Path, services: Sequence[str]) -> Iterator[str | None]:
    """LocalStack's URL once it answers, or None if the port was taken; stopped on exit."""
    url = f"http://127.0.0.1:{port}"
    log_path = root / "localstack.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(python()), "-m", "localstack.runtime.main"],
            env=environment(port, root, services),
            cwd=root,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: Ctrl-C reaches us, we stop it
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - the only way to set PDEATHSIG
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not _ready(url):
            exited = process.poll() is not None
            if exited or time.monotonic() > deadline:
                output = log_path.read_text(encoding="utf-8", errors="replace")
                if exited and any(sign in output for sign in PORT_TAKEN):
                    yield None
                    return
                state = f"exited with {process.returncode}" if exited else "did not answer"
                raise LocalStackError(
                    f"LocalStack {state} within {START_TIMEOUT:.0f} s; its log: {log_path}; "
                    f"to rerun it by hand: {_rerun(port, root, services)}"
                )
            time.sleep(0.2)
        yield url
    finally:
        _stop(process)


@contextmanager
def localstack_process(services: Sequence[str] = SERVICES) -> Iterator[str]:
    """A running LocalStack's URL; a port taken before it binds is retried on another."""
    if not python().exists():
        raise LocalStackError(
            f"LocalStack is not installed at {python().parent.parent}: run `make localstack` "
            "(or ENDPOINT=moto for a quick run on moto)"
        )
    for _ in range(PORT_ATTEMPTS):
        root = Path(tempfile.mkdtemp(prefix="archiver-localstack-"))
        failed = False
        try:
            with _started(free_port(), root, services) as url:
                if url is not None:
                    yield url
                    return
        except LocalStackError:
            failed = True  # its log stays in `root`, named in the message
            raise
        finally:
            if not failed:
                shutil.rmtree(root, ignore_errors=True)
    raise LocalStackError(f"LocalStack found no free port in {PORT_ATTEMPTS} attempts")
