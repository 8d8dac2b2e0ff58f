"""At-least-once behaviour: heartbeat, shutdown, idempotent redelivery, missing files, limits."""

import json
import threading
import time

import pytest
from structlog.testing import capture_logs

from archiver.adapters.memory import MemoryObjectStore
from archiver.adapters.memory_queue import MemoryNotifier, MemoryQueue
from archiver.app.worker.outcomes import Outcome
from archiver.domain.errors import TransientError
from archiver.domain.job import ObjectRef, parse_job
from archiver.domain.notifications import JobFailed, JobSucceeded
from archiver.domain.plan import ArchivePolicy, MissingFiles
from archiver.domain.ports import ObjectHeaders
from tests.support import MIB, build_options, drive, make_worker
from tests.unit.conftest import DESTINATION, SOURCE, ServiceFactory
from tests.zipcheck import contents


class SlowStore(MemoryObjectStore):
    """Every fetch takes `seconds`, or, with a `gate`, waits until the test opens it."""

    seconds = 0.0
    gate: threading.Event | None = None

    def __init__(self) -> None:
        super().__init__()
        self.fetching = threading.Event()

    def fetch(self, ref: ObjectRef, start: int, length: int, etag: str | None = None) -> bytes:
        self.fetching.set()
        if self.gate is not None:
            assert self.gate.wait(timeout=10)
        time.sleep(self.seconds)
        return super().fetch(ref, start, length, etag)


@pytest.fixture
def store() -> SlowStore:
    store = SlowStore()
    store.create_bucket(SOURCE)
    store.create_bucket(DESTINATION)
    store.add(ObjectRef(SOURCE, "a.txt"), b"a" * 1000)
    store.add(ObjectRef(SOURCE, "b.txt"), b"b" * 1000)
    return store


JOB = json.dumps({"files": [{"source": "a.txt"}, {"source": "b.txt"}], "metadata": {"k": 1}})


def beats(queue: MemoryQueue, job_id: str, seconds: int) -> int:
    return sum(1 for changed in queue.visibility_changes if changed == (job_id, seconds))


def test_heartbeat_keeps_a_long_job_hidden_and_stops_with_it(
    store: SlowStore, queue: MemoryQueue, notifier: MemoryNotifier, make_service: ServiceFactory
) -> None:
    store.seconds = 1.6  # per fetch, and both sources are fetched at once: a 1.6 s job
    worker = make_worker(queue, notifier, make_service(), wait_seconds=0, visibility_seconds=1)
    job_id = queue.send(JOB)
    assert drive(worker) == [Outcome.SUCCEEDED]
    during = beats(queue, job_id, 1)
    assert during >= 3  # the receive itself, then a beat every 0.5 s
    # The heartbeat ended with the job (joined before the answer was carried out): no beat after.
    assert "heartbeat" not in [thread.name for thread in threading.enumerate()]
    assert beats(queue, job_id, 1) == during


def test_sigterm_lets_a_short_job_finish(
    store: SlowStore, queue: MemoryQueue, notifier: MemoryNotifier, make_service: ServiceFactory
) -> None:
    store.gate = threading.Event()
    worker = make_worker(queue, notifier, make_service(), wait_seconds=0, shutdown_grace=10)
    queue.send(JOB)
    stop = threading.Event()
    runner = threading.Thread(target=worker.run, args=(stop,))
    runner.start()
    assert store.fetching.wait(timeout=10)
    stop.set()  # mid-job: a fetch is under way
    store.gate.set()
    runner.join(timeout=10)
    assert not runner.is_alive()
    assert [n.status for n in notifier.published] == ["succeeded"]
    assert len(queue.deleted) == 1


def test_job_past_the_grace_period_is_aborted_and_handed_back(
    store: SlowStore, queue: MemoryQueue, notifier: MemoryNotifier, make_service: ServiceFactory
) -> None:
    store.add(ObjectRef(SOURCE, "big.bin"), b"x" * (12 * MIB))
    store.seconds = 1.0  # per fetch: cancellation is seen between two chunks
    service = make_service(build=build_options(part_size=5 * MIB))
    worker = make_worker(queue, notifier, service, wait_seconds=0, shutdown_grace=0.3)
    job_id = queue.send(json.dumps({"files": [{"source": "big.bin"}, {"source": "a.txt"}]}))
    stop = threading.Event()
    runner = threading.Thread(target=worker.run, args=(stop,))
    with capture_logs() as logs:
        runner.start()
        time.sleep(0.5)
        stop.set()
        runner.join(timeout=10)
    assert not runner.is_alive()
    assert not notifier.published
    assert not store.uploads  # the multipart upload was aborted
    assert all(ref.bucket != DESTINATION for ref in store.objects)
    assert [message.message_id for message in queue.visible] == [job_id]  # released at once
    assert queue.visibility_changes[-1] == (job_id, 0)
    assert "job_released" in [entry["event"] for entry in logs]


def test_transient_errors_back_off_by_delivery_count(
    store: SlowStore, queue: MemoryQueue, notifier: MemoryNotifier, make_service: ServiceFactory
) -> None:
    worker = make_worker(queue, notifier, make_service(), wait_seconds=0, retry_delay_seconds=30)
    job_id = queue.send(JOB)
    delays = []
    for _ in range(3):
        store.faults[ObjectRef(SOURCE, "a.txt")] = TransientError("503 SlowDown")
        assert drive(worker) == [Outcome.DEFERRED]
        delays.append(queue.visibility_changes[-1])
        queue.expire_visibility()
    assert delays == [(job_id, 30), (job_id, 60), (job_id, 120)]
    assert not notifier.published


def test_redelivered_job_reuses_the_completed_archive(
    store: SlowStore, queue: MemoryQueue, make_service: ServiceFactory
) -> None:
    """The archive was uploaded but the notification never left: re-notify, do not rebuild."""

    notifier = MemoryNotifier()
    notifier.fail_next(1, TransientError("output queue down"))
    worker = make_worker(queue, notifier, make_service(), wait_seconds=0, retry_delay_seconds=0)
    job_id = queue.send(JOB)
    assert drive(worker) == [Outcome.DEFERRED]
    [archive_ref] = [ref for ref in store.objects if ref.key.endswith(".zip")]
    first_bytes = store.objects[archive_ref]

    for key in ("a.txt", "b.txt"):  # a rebuild would now fail: the sources are gone
        del store.objects[ObjectRef(SOURCE, key)]
    queue.expire_visibility()
    with capture_logs() as logs:
        assert drive(worker) == [Outcome.SUCCEEDED]
    assert "archive_reused" in [entry["event"] for entry in logs]
    [notification] = notifier.published
    assert isinstance(notification, JobSucceeded)
    assert notification.job_id == job_id
    assert notification.metadata == {"k": 1}
    assert notification.archive.size_bytes == len(first_bytes)
    assert notification.archive.file_count == 2
    assert store.objects[archive_ref] == first_bytes


def test_redelivery_aborts_uploads_a_killed_worker_left_behind(
    store: SlowStore, queue: MemoryQueue, notifier: MemoryNotifier, make_service: ServiceFactory
) -> None:
    service = make_service()
    worker = make_worker(queue, notifier, service, wait_seconds=0)
    job_id = queue.send(JOB)
    [first] = queue.receive(1, 0)  # the first worker took it, started an upload, and died
    plan = service.plan(job_id, parse_job(JOB), first.sent_at)
    store.start_upload(plan.archive, ObjectHeaders())
    queue.expire_visibility()
    assert drive(worker) == [Outcome.SUCCEEDED]
    assert not store.uploads


def test_a_changed_request_is_rebuilt_not_reused(
    store: SlowStore, make_service: ServiceFactory
) -> None:
    from datetime import UTC, datetime

    from archiver.domain.job import FileSpec, JobRequest

    service = make_service()
    sent = datetime(2026, 1, 1, tzinfo=UTC)
    first = service.plan("job", JobRequest(files=[FileSpec(source="a.txt")]), sent)
    service.build(first)
    second = service.plan("job", JobRequest(files=[FileSpec(source="b.txt")]), sent)
    archive = service.build(second, redelivered=True)
    data = store.objects[second.archive]
    assert isinstance(data, bytes)
    assert contents(data) == {"b.txt": b"b" * 1000}
    assert archive.size_bytes == len(data)


def test_missing_files_skip_archives_the_rest_and_lists_them(
    store: SlowStore, queue: MemoryQueue, notifier: MemoryNotifier, make_service: ServiceFactory
) -> None:
    policy = ArchivePolicy(SOURCE, DESTINATION, missing_files=MissingFiles.SKIP)
    worker = make_worker(queue, notifier, make_service(policy=policy), wait_seconds=0)
    queue.send(
        json.dumps(
            {
                "files": [
                    {"source": "gone.txt"},
                    {"source": "a.txt"},
                    {"source": "gone.txt", "destination": "again"},
                    {"source": "b.txt", "destination": "d"},
                ]
            }
        )
    )
    assert drive(worker) == [Outcome.SUCCEEDED]
    [notification] = notifier.published
    assert isinstance(notification, JobSucceeded)
    assert notification.archive.missing == ["s3://source-images/gone.txt"]
    assert notification.archive.file_count == 2
    data = store.objects[ObjectRef(DESTINATION, notification.archive.key)]
    assert isinstance(data, bytes)
    assert contents(data) == {"a.txt": b"a" * 1000, "d/b.txt": b"b" * 1000}


def test_missing_files_skip_still_fails_when_nothing_is_left(
    queue: MemoryQueue, notifier: MemoryNotifier, make_service: ServiceFactory
) -> None:
    policy = ArchivePolicy(SOURCE, DESTINATION, missing_files=MissingFiles.SKIP)
    worker = make_worker(queue, notifier, make_service(policy=policy), wait_seconds=0)
    queue.send('{"files": [{"source": "gone-1"}, {"source": "gone-2"}]}')
    assert drive(worker) == [Outcome.FAILED]
    [notification] = notifier.published
    assert isinstance(notification, JobFailed)
    assert notification.error.code == "source_not_found"
    assert len(notification.error.sources) == 2


def test_archive_size_limit_is_checked_before_writing(
    store: SlowStore, queue: MemoryQueue, notifier: MemoryNotifier, make_service: ServiceFactory
) -> None:
    policy = ArchivePolicy(SOURCE, DESTINATION, max_archive_bytes=1500)
    worker = make_worker(queue, notifier, make_service(policy=policy), wait_seconds=0)
    queue.send(JOB)
    assert drive(worker) == [Outcome.FAILED]
    [notification] = notifier.published
    assert isinstance(notification, JobFailed)
    assert notification.error.code == "archive_too_large"
    assert "2,000 bytes; the limit is 1,500" in notification.error.message
    assert all(ref.bucket != DESTINATION for ref in store.objects)
    assert not store.uploads
