import json
import threading
import time

import pytest
from structlog.testing import capture_logs

from archiver.adapters.memory import MemoryObjectStore
from archiver.adapters.memory_queue import MemoryNotifier, MemoryQueue
from archiver.adapters.memory_secrets import MemorySecretStore
from archiver.app.jobs.service import ArchiveService
from archiver.app.worker.loop import Worker
from archiver.app.worker.outcomes import Outcome
from archiver.domain.errors import TransientError
from archiver.domain.job import ObjectRef
from archiver.domain.notifications import JobFailed, JobSucceeded
from archiver.domain.plan import ArchivePolicy
from archiver.domain.ports import Buffer, ObjectInfo, ReceivedMessage
from tests.support import build_options, drive, link_options, make_worker
from tests.unit.conftest import DESTINATION, SENT, SOURCE, ServiceFactory
from tests.zipcheck import contents

JOB = {
    "files": [
        {"source": "dir/uuid1.png", "destination": "album_1"},
        {"source": "dir/uuid2.png"},
    ],
    "metadata": {"user_email": "someone@example.com"},
}


@pytest.fixture
def worker(queue: MemoryQueue, notifier: MemoryNotifier, make_service: ServiceFactory) -> Worker:
    return make_worker(queue, notifier, make_service(), wait_seconds=0)


@pytest.fixture
def sources(store: MemoryObjectStore) -> MemoryObjectStore:
    store.add(ObjectRef(SOURCE, "dir/uuid1.png"), b"one")
    store.add(ObjectRef(SOURCE, "dir/uuid2.png"), b"two")
    return store


def test_success_archives_notifies_then_deletes(
    worker: Worker, queue: MemoryQueue, notifier: MemoryNotifier, sources: MemoryObjectStore
) -> None:
    job_id = queue.send(json.dumps(JOB), sent_at=SENT)
    assert drive(worker) == [Outcome.SUCCEEDED]

    key = f"{job_id}/download-2026-11-27.zip"
    data = sources.objects[ObjectRef(DESTINATION, key)]
    assert isinstance(data, bytes)
    assert contents(data) == {"album_1/uuid1.png": b"one", "uuid2.png": b"two"}
    [notification] = notifier.published
    assert isinstance(notification, JobSucceeded)
    assert notification.job_id == job_id
    assert notification.url == f"https://cdn.example.com/{key}"
    assert notification.substitutions.archiver_URL == notification.url
    assert notification.metadata == JOB["metadata"]
    assert notification.archive.key == key
    assert notification.archive.file_count == 2
    assert notification.archive.size_bytes == len(data)
    assert [message.message_id for message in queue.deleted] == [job_id]
    assert not queue.in_flight
    assert not queue.visible


def test_missing_source_is_a_failure_notification_and_the_job_is_deleted(
    worker: Worker, queue: MemoryQueue, notifier: MemoryNotifier, store: MemoryObjectStore
) -> None:
    store.add(ObjectRef(SOURCE, "dir/uuid1.png"), b"one")
    job_id = queue.send(json.dumps(JOB))
    assert drive(worker) == [Outcome.FAILED]
    [notification] = notifier.published
    assert isinstance(notification, JobFailed)
    assert notification.job_id == job_id
    assert notification.error.code == "source_not_found"
    assert notification.error.sources == ["s3://source-images/dir/uuid2.png"]
    assert notification.metadata == JOB["metadata"]
    assert [message.message_id for message in queue.deleted] == [job_id]
    assert all(ref.bucket != DESTINATION for ref in store.objects)


@pytest.mark.parametrize(
    ("body", "metadata"),
    [
        ("this is not json", None),
        ('{"files": [], "metadata": {"user_email": "x@y.z"}}', {"user_email": "x@y.z"}),
        ('{"files": [{"source": "s3://not-allowed/k"}]}', {}),
    ],
)
def test_bad_payloads_are_answered_and_never_block_the_queue(
    worker: Worker,
    queue: MemoryQueue,
    notifier: MemoryNotifier,
    body: str,
    metadata: dict[str, str] | None,
) -> None:
    queue.send(body)
    assert drive(worker)[0] is Outcome.FAILED
    [notification] = notifier.published
    assert isinstance(notification, JobFailed)
    assert notification.metadata == metadata
    assert notification.error.code in {"invalid_payload", "source_bucket_not_allowed"}
    assert queue.deleted
    assert not queue.in_flight


def test_transient_error_leaves_the_job_for_redelivery_which_succeeds(
    worker: Worker, queue: MemoryQueue, notifier: MemoryNotifier, sources: MemoryObjectStore
) -> None:
    ref = ObjectRef(SOURCE, "dir/uuid2.png")
    sources.faults[ref] = TransientError("503 SlowDown")
    job_id = queue.send(json.dumps(JOB))

    assert drive(worker) == [Outcome.DEFERRED]
    assert not notifier.published
    assert not queue.deleted
    assert not sources.uploads
    assert job_id in {message.message_id for message in queue.in_flight.values()}

    queue.expire_visibility()  # SQS hands the message out again
    assert drive(worker) == [Outcome.SUCCEEDED]
    assert [n.status for n in notifier.published] == ["succeeded"]
    assert queue.deleted[0].receive_count == 2


def test_notification_failure_keeps_the_job(
    queue: MemoryQueue, make_service: ServiceFactory, sources: MemoryObjectStore
) -> None:
    down = MemoryNotifier()
    down.fail_next(1, TransientError("output queue unreachable"))
    worker = make_worker(queue, down, make_service(), wait_seconds=0)
    queue.send(json.dumps(JOB))
    assert drive(worker) == [Outcome.DEFERRED]
    assert not queue.deleted
    assert queue.in_flight


def test_unexpected_errors_defer_instead_of_crashing(
    queue: MemoryQueue, notifier: MemoryNotifier, make_service: ServiceFactory
) -> None:
    service = make_service()

    def broken(*args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("bug")

    service.build = broken  # type: ignore[method-assign]
    worker = make_worker(queue, notifier, service, wait_seconds=0)
    queue.send(json.dumps(JOB))
    with capture_logs() as logs:
        assert drive(worker) == [Outcome.DEFERRED]
    assert not notifier.published
    assert queue.in_flight  # will be redelivered, then dead-lettered by the redrive policy
    crash = next(entry for entry in logs if entry["event"] == "job_crashed")
    assert crash["log_level"] == "error"
    assert crash["decision"] == "redeliver"


def test_logs_carry_job_context_but_never_metadata_values(
    worker: Worker, queue: MemoryQueue, sources: MemoryObjectStore
) -> None:
    job_id = queue.send(json.dumps(JOB))
    with capture_logs() as logs:
        drive(worker)
    done = next(entry for entry in logs if entry["event"] == "job_succeeded")
    assert done["file_count"] == 2
    assert done["bytes"] > 0
    assert done["duration_s"] >= 0
    assert "someone@example.com" not in repr(logs)
    started = next(entry for entry in logs if entry["event"] == "job_started")
    assert started["metadata_keys"] == ["user_email"]
    assert started["archive_key"] == f"{job_id}/download-" + started["archive_key"][-14:]


def test_run_stops_when_asked(
    worker: Worker, queue: MemoryQueue, notifier: MemoryNotifier, sources: MemoryObjectStore
) -> None:
    job_id = queue.send(json.dumps(JOB))
    stop = threading.Event()
    stop.set()
    worker.run(stop)  # stopped before it starts: takes nothing
    assert [message.message_id for message in queue.visible] == [job_id]
    assert not notifier.published

    worker.run(threading.Event(), max_polls=2)  # bounded: returns after its polls
    assert [message.message_id for message in queue.deleted] == [job_id]
    assert [n.status for n in notifier.published] == ["succeeded"]


def test_run_survives_queue_outages(notifier: MemoryNotifier, make_service: ServiceFactory) -> None:
    queue = MemoryQueue()
    queue.fail_next("receive", 2, TransientError("connection reset"))
    queue.send("not json")
    worker = make_worker(queue, notifier, make_service(), wait_seconds=0, poll_retry_seconds=0.01)
    stop = threading.Event()
    with capture_logs() as logs:
        worker.run(stop, max_polls=3)
    assert [entry["event"] for entry in logs].count("receive_failed") == 2
    assert [n.status for n in notifier.published] == ["failed"]


class CrashingStore(MemoryObjectStore):
    """A bug below the service, the same on every delivery."""

    def probe(self, ref: ObjectRef, length: int) -> tuple[ObjectInfo, Buffer]:
        raise ZeroDivisionError("division by zero in a place nobody planned for")


def test_a_job_that_keeps_crashing_is_answered_once_on_its_last_delivery(
    notifier: MemoryNotifier,
) -> None:
    store = CrashingStore()
    store.add(ObjectRef(SOURCE, "dir/uuid1.png"), b"one")
    store.create_bucket(DESTINATION)
    service = ArchiveService(
        store,
        MemorySecretStore(),
        ArchivePolicy(SOURCE, DESTINATION),
        build_options(),
        link_options(),
    )
    queue = MemoryQueue("input-queue", redrive_limit=3)
    job = {"files": [{"source": "dir/uuid1.png"}], "metadata": {"order": 7}}
    job_id = queue.send(json.dumps(job))
    worker = make_worker(queue, notifier, service, wait_seconds=0, max_receives=3)

    outcomes = []
    for _ in range(3):
        outcomes += drive(worker)
        assert not queue.visible
        queue.expire_visibility()

    assert outcomes == [Outcome.DEFERRED, Outcome.DEFERRED, Outcome.FAILED]
    [notification] = notifier.published
    assert isinstance(notification, JobFailed)
    assert notification.job_id == job_id
    assert notification.error.code == "internal_error"
    assert notification.error.message.startswith("ZeroDivisionError: ")
    assert "Traceback" not in notification.error.message
    assert "nobody planned" not in notification.error.message  # the class only, no details
    assert notification.metadata == {"order": 7}
    assert [message.receive_count for message in queue.deleted] == [3]
    assert not queue.visible
    assert not queue.in_flight


def test_a_transient_failure_on_the_last_delivery_still_goes_to_the_dead_letter_queue(
    queue: MemoryQueue,
    notifier: MemoryNotifier,
    make_service: ServiceFactory,
    sources: MemoryObjectStore,
) -> None:
    """An outage is the deployment's to fix and redrive, not the consumer's to hear about."""
    sources.faults[ObjectRef(SOURCE, "dir/uuid2.png")] = TransientError("503 SlowDown")
    worker = make_worker(queue, notifier, make_service(), wait_seconds=0, max_receives=1)
    queue.send(json.dumps(JOB))
    assert drive(worker) == [Outcome.DEFERRED]
    assert not notifier.published
    assert queue.in_flight


def test_a_stop_lets_the_poll_under_way_finish_and_hands_back_what_it_brings(
    queue: MemoryQueue, notifier: MemoryNotifier, make_service: ServiceFactory
) -> None:
    """SQS hands a message to a poll under way whether or not its caller still listens: the
    worker waits for the poll (here 1.5 s after the stop), then releases what it brought before
    its run returns (the process exits next); the release takes 0.3 s here."""

    class LatePoll(MemoryQueue):
        """Its poll returns a message 1.5 s after the worker was told to stop."""

        def set_visibility(self, message: ReceivedMessage, seconds: int) -> None:
            time.sleep(0.3)  # a round trip to SQS
            super().set_visibility(message, seconds)

        def __init__(self, stop: threading.Event) -> None:
            super().__init__()
            self.stop = stop
            self.entered = threading.Event()

        def receive(
            self, max_messages: int, wait_seconds: int, visibility_seconds: int = 30
        ) -> list[ReceivedMessage]:
            self.entered.set()
            self.stop.wait()
            time.sleep(1.5)
            self.send('{"files": [{"source": "a"}]}')
            return super().receive(max_messages, 0, visibility_seconds)

    stop = threading.Event()
    late = LatePoll(stop)
    worker = make_worker(late, notifier, make_service(), wait_seconds=20)
    running = threading.Thread(target=worker.run, args=(stop,))
    running.start()
    assert late.entered.wait(timeout=5)
    stop.set()
    running.join(timeout=10)

    assert not running.is_alive()
    assert [message.receive_count for message in late.visible] == [1]  # released, not hidden
    assert not late.in_flight
    assert not notifier.published
