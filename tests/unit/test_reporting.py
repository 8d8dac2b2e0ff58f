"""What a job tells while it runs (progress lines, `running` notifications) and the full report
an answer links to when its lists had to be cut."""

import json

import pytest
from structlog.testing import capture_logs

from archiver.adapters.memory import MemoryObjectStore
from archiver.adapters.memory_queue import MemoryNotifier, MemoryQueue
from archiver.app.worker.outcomes import Outcome
from archiver.app.worker.progress import ProgressTracker
from archiver.domain.errors import TransientError
from archiver.domain.job import ObjectRef
from archiver.domain.notifications import JobFailed, JobRunning, JobSucceeded, Progress
from archiver.domain.plan import ArchivePolicy, MissingFiles
from tests.support import MIB, drive, make_worker
from tests.unit.conftest import DESTINATION, SENT, SOURCE, ServiceFactory


def progress_of(files_done: int, files_total: int, bytes_done: int, bytes_total: int) -> Progress:
    return Progress(
        files_done=files_done,
        files_total=files_total,
        bytes_done=bytes_done,
        bytes_total=bytes_total,
    )


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_progress_is_logged_and_notified_at_most_as_often_as_configured() -> None:
    clock, beats = Clock(), []
    notifier = MemoryNotifier()
    tracker = ProgressTracker(15, 30, notifier, lambda: beats.append(1), clock)
    progress = tracker.job("job-1", {"m": 1}, notify=True)
    with capture_logs() as logs:
        for second in range(0, 61, 5):
            clock.now = 100.0 + second
            progress(progress_of(second, 60, second * MIB, 60 * MIB))
    lines = [entry for entry in logs if entry["event"] == "job_progress"]
    assert [line["files_done"] for line in lines] == [15, 30, 45, 60]
    assert lines[0]["rate_bytes_per_s"] == MIB
    assert lines[0]["eta_s"] == 45.0
    assert [n.progress.files_done for n in notifier.published if isinstance(n, JobRunning)] == [
        30,
        60,
    ]
    assert notifier.published[0].metadata == {"m": 1}  # type: ignore[union-attr]
    assert len(beats) == 13  # every call proves the job alive


def test_a_progress_notification_that_fails_does_not_stop_the_job() -> None:
    clock = Clock()
    notifier = MemoryNotifier()

    notifier.fail_next(1, TransientError("queue down"))
    progress = ProgressTracker(1000, 1, notifier, lambda: None, clock).job("job-1", {}, True)
    clock.now += 2
    with capture_logs() as logs:
        progress(progress_of(1, 2, 1, 2))
    assert [entry["event"] for entry in logs] == ["progress_notification_failed"]


@pytest.mark.parametrize("asked", [True, False])
def test_running_notifications_come_only_when_asked_and_never_after_the_answer(
    store: MemoryObjectStore,
    queue: MemoryQueue,
    notifier: MemoryNotifier,
    make_service: ServiceFactory,
    asked: bool,
) -> None:
    for number in range(5):
        store.add(ObjectRef(SOURCE, f"f/{number}.bin"), bytes(2 * MIB))
    job = {"files": [{"source": f"f/{n}.bin"} for n in range(5)], "notify": {"progress": asked}}
    worker = make_worker(
        queue,
        notifier,
        make_service(),
        wait_seconds=0,
        progress_log_seconds=0.001,
        progress_notify_seconds=0.001,
    )
    queue.send(json.dumps(job), sent_at=SENT)
    assert drive(worker) == [Outcome.SUCCEEDED]
    *running, answer = notifier.published
    assert isinstance(answer, JobSucceeded)
    assert all(isinstance(n, JobRunning) for n in running)
    assert bool(running) is asked
    if asked:
        assert running[-1].progress.files_total == 5  # type: ignore[union-attr]


@pytest.mark.parametrize("missing_files", [MissingFiles.SKIP, MissingFiles.FAIL])
def test_an_answer_whose_list_was_cut_links_to_the_full_report(
    store: MemoryObjectStore,
    queue: MemoryQueue,
    notifier: MemoryNotifier,
    make_service: ServiceFactory,
    missing_files: MissingFiles,
) -> None:
    store.add(ObjectRef(SOURCE, "here.txt"), b"here")
    gone = [f"gone/{'k' * 900}-{number}.txt" for number in range(400)]  # > 256 KiB of names
    job = {"files": [{"source": "here.txt"}, *({"source": key} for key in gone)]}
    policy = ArchivePolicy(SOURCE, DESTINATION, missing_files=missing_files)
    worker = make_worker(queue, notifier, make_service(policy=policy), wait_seconds=0)
    job_id = queue.send(json.dumps(job), sent_at=SENT)
    drive(worker)
    [answer] = notifier.published
    report_ref = ObjectRef(DESTINATION, f"{job_id}/report.json")
    assert answer.report_url == f"https://cdn.example.com/{job_id}/report.json"
    report = json.loads(store.objects[report_ref])  # type: ignore[arg-type]
    expected = [f"s3://{SOURCE}/{key}" for key in gone]
    if isinstance(answer, JobSucceeded):
        assert 0 < answer.archive.missing_omitted < 400
        assert report["archive"]["missing"] == expected
    else:
        assert isinstance(answer, JobFailed)
        assert 0 < answer.error.sources_omitted < 400
        assert sorted(report["error"]["sources"]) == sorted(expected)
    assert report["job_id"] == job_id


def test_an_answer_that_fits_writes_no_report(
    store: MemoryObjectStore,
    queue: MemoryQueue,
    notifier: MemoryNotifier,
    make_service: ServiceFactory,
) -> None:
    store.add(ObjectRef(SOURCE, "here.txt"), b"here")
    job_id = queue.send('{"files": [{"source": "here.txt"}]}', sent_at=SENT)
    drive(make_worker(queue, notifier, make_service(), wait_seconds=0))
    [answer] = notifier.published
    assert answer.report_url is None  # type: ignore[union-attr]
    assert ObjectRef(DESTINATION, f"{job_id}/report.json") not in store.objects
