"""Running inside a task: health check, EMF metric lines, scale-in protection."""

from __future__ import annotations

import io
import json
import os
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from archiver.adapters.memory_queue import MemoryNotifier, MemoryQueue
from archiver.app.cli import main
from archiver.app.worker.ops import Liveness, Metrics, ScaleInProtection, healthy
from archiver.app.worker.outcomes import Outcome
from archiver.domain.job import ObjectRef
from tests.support import drive, make_worker
from tests.unit.conftest import SOURCE, ServiceFactory

EMF_UNITS = {"Seconds", "Bytes", "Count", "Bytes/Second"}


def test_health_follows_the_liveness_file(tmp_path: Path) -> None:
    path = tmp_path / "alive"
    assert healthy(path, 120) == (False, f"no liveness file at {path}: the worker has not started")
    Liveness(path).beat()
    assert healthy(path, 120)[0]
    stale = time.time() - 300
    os.utime(path, (stale, stale))
    ok, reason = healthy(path, 120)
    assert not ok
    assert "no progress for 300 s" in reason


def test_healthcheck_command_exit_codes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "alive"
    monkeypatch.setenv("HEALTH_FILE", str(path))
    assert main(["healthcheck"]) == 1
    path.touch()
    assert main(["healthcheck"]) == 0
    assert "healthy: progress" in capsys.readouterr().out


def test_the_worker_marks_progress_when_it_polls(
    tmp_path: Path, queue: MemoryQueue, notifier: MemoryNotifier, make_service: ServiceFactory
) -> None:
    path = tmp_path / "alive"
    worker = make_worker(queue, notifier, make_service(), wait_seconds=0, liveness=Liveness(path))
    worker.run(threading.Event(), max_polls=1)
    assert healthy(path, 120)[0]


def emf_lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def check_emf(document: dict[str, object]) -> None:
    """The fields the CloudWatch embedded metric format specification requires."""
    meta = document["_aws"]
    assert isinstance(meta, dict)
    assert isinstance(meta["Timestamp"], int)
    assert abs(meta["Timestamp"] / 1000 - time.time()) < 60
    for directive in meta["CloudWatchMetrics"]:
        assert isinstance(directive["Namespace"], str)
        assert 1 <= len(directive["Namespace"]) <= 255
        for dimension_set in directive["Dimensions"]:
            assert len(dimension_set) <= 30
            for key in dimension_set:
                assert isinstance(document[key], str)
        assert 1 <= len(directive["Metrics"]) <= 100
        for metric in directive["Metrics"]:
            assert metric["Unit"] in EMF_UNITS
            assert isinstance(document[metric["Name"]], int | float)


def test_one_emf_line_per_job_outcome(
    store: object, queue: MemoryQueue, notifier: MemoryNotifier, make_service: ServiceFactory
) -> None:
    store.add(ObjectRef(SOURCE, "a.txt"), b"hello")  # type: ignore[attr-defined]
    stream = io.StringIO()
    worker = make_worker(
        queue, notifier, make_service(), wait_seconds=0, metrics=Metrics(True, stream)
    )
    queue.send('{"files": [{"source": "a.txt"}]}')
    queue.send('{"files": [{"source": "missing.txt"}]}')
    assert drive(worker) + drive(worker) == [Outcome.SUCCEEDED, Outcome.FAILED]
    success, failure = emf_lines(stream)
    for document in (success, failure):
        check_emf(document)
    assert success["Outcome"] == "succeeded"
    assert success["Jobs"] == 1
    assert success["FileCount"] == 1
    assert success["ArchiveBytes"] > 0
    assert success["QueueWait"] >= 0
    assert failure["Outcome"] == "failed"
    assert failure["Code"] == "source_not_found"
    assert "ArchiveBytes" not in failure
    # What the template's alarms and dashboard read: failures by outcome alone, and by code.
    [directive] = failure["_aws"]["CloudWatchMetrics"]  # type: ignore[index]
    assert directive["Dimensions"] == [[], ["Outcome"], ["Outcome", "Code"]]
    [directive] = success["_aws"]["CloudWatchMetrics"]  # type: ignore[index]
    assert directive["Dimensions"] == [[], ["Outcome"]]


class FakeAgent:
    """The ECS agent's task-protection endpoint, on 127.0.0.1."""

    def __init__(self) -> None:
        self.requests: list[dict[str, object]] = []
        agent = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                assert self.path == "/task-protection/v1/state"
                length = int(self.headers["Content-Length"])
                agent.requests.append(json.loads(self.rfile.read(length)))
                body = b'{"protection": {"ProtectionEnabled": true}}'
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                """Quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.uri = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def agent() -> Iterator[FakeAgent]:
    fake = FakeAgent()
    thread = threading.Thread(target=fake.server.serve_forever, daemon=True)
    thread.start()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


def test_busy_task_is_protected_from_scale_in(
    agent: FakeAgent,
    store: object,
    queue: MemoryQueue,
    notifier: MemoryNotifier,
    make_service: ServiceFactory,
) -> None:
    store.add(ObjectRef(SOURCE, "a.txt"), b"hello")  # type: ignore[attr-defined]
    protection = ScaleInProtection(agent.uri, expires_minutes=30)
    worker = make_worker(queue, notifier, make_service(), wait_seconds=0, protection=protection)
    queue.send('{"files": [{"source": "a.txt"}]}')
    assert drive(worker) == [Outcome.SUCCEEDED]
    assert agent.requests == [
        {"ProtectionEnabled": True, "ExpiresInMinutes": 30},
        {"ProtectionEnabled": False},
    ]


def test_overlapping_jobs_protect_once_and_release_after_the_last(agent: FakeAgent) -> None:
    protection = ScaleInProtection(agent.uri)
    protection.job_started()
    protection.job_started()
    protection.job_ended()
    assert agent.requests == [{"ProtectionEnabled": True, "ExpiresInMinutes": 60}]
    protection.job_ended()
    assert agent.requests[-1] == {"ProtectionEnabled": False}


def test_protection_is_skipped_outside_ecs_and_survives_an_absent_agent() -> None:
    with capture_logs() as logs:
        ScaleInProtection(None).job_started()  # no ECS_AGENT_URI: nothing to call
    assert logs == []
    unreachable = ScaleInProtection("http://127.0.0.1:9", timeout=0.5)
    with capture_logs() as logs:
        unreachable.job_started()  # logged, not raised: the job's safety rests on SQS
        unreachable.job_ended()
    assert [(entry["event"], entry["enabled"]) for entry in logs] == [
        ("scale_in_protection_failed", True),
        ("scale_in_protection_failed", False),
    ]
