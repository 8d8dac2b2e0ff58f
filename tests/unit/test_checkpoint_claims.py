"""A checkpointed job whose next receipt fails, and the continuations that name it (issue #23):
what may be retried keeps the checkpoint's upload, what may not aborts it; a continuation is
one only with its checkpoint's token, and a store that cannot tell now is asked again later."""

import json
import random

import pytest
from structlog.testing import capture_logs

from archiver.adapters.memory import MemoryObjectStore
from archiver.adapters.memory_queue import MemoryNotifier, MemoryQueue
from archiver.app.jobs.checkpoints import Superseded
from archiver.app.jobs.service import ArchiveService
from archiver.app.worker import grace
from archiver.app.worker.outcomes import Outcome
from archiver.domain.checkpoint import Checkpoint, Continuation, checkpoint_ref, sent_ref
from archiver.domain.errors import PermanentError, TransientError
from archiver.domain.job import ObjectRef
from archiver.domain.multipart import staging_prefix
from archiver.domain.notifications import JobFailed, JobSucceeded
from archiver.domain.plan import manifest_ref
from archiver.domain.ports import Buffer, ObjectHeaders
from tests.slow_store import SlowStore
from tests.support import drive, make_worker
from tests.unit.conftest import DESTINATION, SENT, SOURCE
from tests.unit.test_checkpoint import (
    checkpointed,
    checkpointed_twice,
    plan_of,
    random_sources,
    service_on,
)
from tests.zipcheck import contents

MIB = 1024 * 1024


def failing_reads_of(
    store: MemoryObjectStore, monkeypatch: pytest.MonkeyPatch, key: str, error: Exception
) -> None:
    fetch = store.fetch

    def failing(ref: ObjectRef, start: int, length: int, etag: str | None = None) -> Buffer:
        if ref.key == key:
            raise error
        return fetch(ref, start, length, etag)

    monkeypatch.setattr(store, "fetch", failing)


def test_a_resumed_receipt_that_fails_keeps_the_upload_for_the_next(
    store: MemoryObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The attempt after a checkpoint sends a part, then S3 fails the next for now: the
    upload stays, and the next attempt resumes it from the checkpoint (that a part sent after
    it is not named at completion: tests/contract/test_object_store.py, on LocalStack too)."""
    files = random_sources(store, 7, 5 * MIB)
    service = service_on(store)
    plan = plan_of(service, "job-1", files)
    checkpoint = checkpointed_twice(service, plan)
    assert checkpoint.upload_id is not None
    upload = store.uploads[checkpoint.upload_id]
    upload_part = upload.upload_part

    def failing(number: int, data: Buffer) -> None:
        if number > checkpoint.parts_sent + 1:
            raise TransientError(f"UploadPart {number}: SlowDown")
        upload_part(number, data)

    monkeypatch.setattr(upload, "upload_part", failing)
    with pytest.raises(TransientError):
        service.build(plan, redelivered=True)
    assert store.uploads[checkpoint.upload_id] is upload  # kept
    assert max(upload.parts) == checkpoint.parts_sent + 1  # with what the failed attempt sent
    monkeypatch.undo()

    with capture_logs() as logs:
        service.build(plan, redelivered=True)

    [resumed] = [entry for entry in logs if entry["event"] == "job_resumed"]
    assert resumed["next_entry"] == checkpoint.next_entry
    assert archived(store, plan.archive.key) == files
    assert not store.uploads


def test_a_permanent_failure_after_a_checkpoint_aborts_its_upload_and_forgets_it(
    store: MemoryObjectStore,
) -> None:
    files = random_sources(store, 5, 5 * MIB)
    service = service_on(store)  # MISSING_FILES=fail
    plan = plan_of(service, "job-2", files)
    checkpoint = checkpointed_twice(service, plan)
    assert checkpoint.upload_id in store.uploads
    store.delete(ObjectRef(SOURCE, "f4.bin"))

    with pytest.raises(PermanentError):
        service.build(plan, redelivered=True)

    assert not store.uploads
    assert not [ref.key for ref in store.objects if ref.bucket == DESTINATION]


def test_a_copy_refused_after_a_checkpoint_goes_on_from_it_streaming(
    store: MemoryObjectStore,
) -> None:
    files = random_sources(store, 5, 12 * MIB)  # stored entries S3 may copy
    service = service_on(store)
    plan = plan_of(service, "job-3", files)
    checkpoint = checkpointed_twice(service, plan)
    store.refuse_copies = "AccessDenied"  # the source's policy changed meanwhile

    with capture_logs() as logs:
        service.build(plan, redelivered=True)

    events = [entry["event"] for entry in logs]
    assert "server_side_copy_refused" in events
    resumed = [entry for entry in logs if entry["event"] == "job_resumed"]
    assert [entry["next_entry"] for entry in resumed] == [checkpoint.next_entry] * 2
    assert archived(store, plan.archive.key) == files
    assert not store.uploads


def archived(store: MemoryObjectStore, key: str) -> dict[str, bytes]:
    """The entries of the archive at `key` in the destination bucket (every CRC-32 checked)."""
    data = store.objects[ObjectRef(DESTINATION, key)]
    assert isinstance(data, bytes)
    return contents(data)


def body(files: dict[str, bytes]) -> str:
    return json.dumps({"files": [{"source": key} for key in files]})


def test_a_continuation_that_cannot_be_checked_now_is_tried_again(
    store: MemoryObjectStore,
    queue: MemoryQueue,
    notifier: MemoryNotifier,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Not taken for a job of its own (whose original would then never be answered)."""
    files = random_sources(store, 4, 5 * MIB)
    service = service_on(store)
    checkpoint = checkpointed(service, plan_of(service, "job-4", files))
    ref = checkpoint_ref(DESTINATION, "job-4")
    failing_reads_of(store, monkeypatch, ref.key, TransientError(f"{ref}: InternalError"))
    continuation = Continuation("job-4", SENT, 1, checkpoint.token)
    queue.send(body(files), continuation, sent_at=SENT)

    assert drive(make_worker(queue, notifier, service, wait_seconds=0)) == [Outcome.DEFERRED]

    assert not notifier.published
    assert [message.continued for message in queue.in_flight.values()] == [continuation]
    assert ref in store.objects
    assert [ref.key for ref in store.objects if ref.key.endswith(".zip")] == []


def test_a_continuation_of_content_listed_anew_starts_over_under_its_job_id(
    store: MemoryObjectStore, queue: MemoryQueue, notifier: MemoryNotifier
) -> None:
    """A prefix listed again on the next receipt may list other files: the checkpoint is not
    resumed, but the job is still the one the continuation carries on."""
    files = random_sources(store, 4, 2 * MIB)
    service = service_on(store)
    checkpoint = checkpointed(service, plan_of(service, "job-5", files))
    fewer = dict(list(files.items())[1:])
    queue.send(body(fewer), Continuation("job-5", SENT, 1, checkpoint.token), sent_at=SENT)

    with capture_logs() as logs:
        outcomes = drive(make_worker(queue, notifier, service, wait_seconds=0))

    assert outcomes == [Outcome.SUCCEEDED]
    assert "checkpoint_of_other_content" in [entry["event"] for entry in logs]
    [notification] = notifier.published
    assert isinstance(notification, JobSucceeded)
    assert notification.job_id == "job-5"
    assert archived(store, "job-5/download-2026-11-27.zip") == fewer
    assert not store.uploads


def test_a_continuation_of_a_completed_job_is_answered_from_its_manifest(
    store: MemoryObjectStore, queue: MemoryQueue, notifier: MemoryNotifier
) -> None:
    """The job was finished by its original's redelivery (the continuation's delete had
    failed): the manifest keeps the token, so the continuation still belongs to the job."""
    files = random_sources(store, 3, 2 * MIB)
    service = service_on(store)
    plan = plan_of(service, "job-6", files)
    checkpoint = checkpointed(service, plan)
    service.build(plan, redelivered=True)
    assert checkpoint_ref(DESTINATION, "job-6") not in store.objects
    assert manifest_ref(DESTINATION, "job-6") in store.objects
    uploaded = store.uploaded_bytes
    queue.send(body(files), Continuation("job-6", SENT, 1, checkpoint.token), sent_at=SENT)

    assert drive(make_worker(queue, notifier, service, wait_seconds=0)) == [Outcome.SUCCEEDED]

    [notification] = notifier.published
    assert isinstance(notification, JobSucceeded)
    assert notification.job_id == "job-6"
    assert notification.archive.key == plan.archive.key
    assert store.uploaded_bytes == uploaded  # answered again, not built again


def test_a_message_whose_delete_failed_after_its_continuation_went_is_only_deleted(
    store: MemoryObjectStore, queue: MemoryQueue, notifier: MemoryNotifier
) -> None:
    """The continuation was sent, the original's delete failed: the original comes back
    while the job still has its checkpoint, finds the handover recorded and is deleted
    without resuming the job a second time beside its continuation."""
    files = random_sources(store, 6, 5 * MIB)
    service = service_on(store)
    worker = make_worker(queue, notifier, service, wait_seconds=0, max_hold_seconds=0)
    queue.fail_next("delete", 1, TransientError("DeleteMessage: ServiceUnavailable"))
    job_id = queue.send(body(files), sent_at=SENT)

    assert drive(worker) == [Outcome.DEFERRED]  # checkpointed, continued, not deleted

    [continuation] = queue.visible
    assert continuation.continued is not None
    assert sent_ref(DESTINATION, job_id, continuation.continued.holds) in store.objects
    queue.visible.clear()  # the continuation waits: the original comes back first
    queue.expire_visibility()
    uploads = set(store.uploads)
    archive_key = f"{job_id}/download-2026-11-27.zip"
    staged = ObjectRef(DESTINATION, f"{staging_prefix(archive_key)}part-9")
    store.put(staged, b"the continuation's, on another worker", ObjectHeaders())
    with capture_logs() as logs:
        assert drive(make_worker(queue, notifier, service, wait_seconds=0)) == [Outcome.CONTINUED]
    [continued] = [entry for entry in logs if entry["event"] == "job_continued"]
    assert continued["superseded"] is True
    assert not notifier.published
    assert not queue.visible
    assert not queue.in_flight
    assert set(store.uploads) == uploads  # the continuation's upload, untouched
    assert staged in store.objects  # and its staging objects
    store.delete(staged)

    queue.visible.append(continuation)
    assert drive(make_worker(queue, notifier, service, wait_seconds=0)) == [Outcome.SUCCEEDED]

    [notification] = notifier.published
    assert notification.job_id == job_id
    assert archived(store, f"{job_id}/download-2026-11-27.zip") == files
    assert not [ref.key for ref in store.objects if "checkpoint" in ref.key]


def test_an_entry_still_running_as_the_receipt_nears_12_hours_is_released_in_time(
    slow: SlowStore,
    queue: MemoryQueue,
    notifier: MemoryNotifier,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Checkpointed, then the next receipt's first entry outlasts the hold and nears SQS's
    cap: the job is stopped and its message released while SQS still takes a visibility
    change (not left to reappear at 12 h beside a live worker), the checkpoint's upload kept
    for the receipt after."""
    files, service, job_id, checkpoint = checkpointed_before_a_long_entry(slow, queue, notifier)
    monkeypatch.setattr(grace, "RECEIPT_CAP_SECONDS", 0.3)  # 12 h less the margin, scaled
    with capture_logs() as logs:
        assert drive(make_worker(queue, notifier, service, **HOLD)) == [Outcome.RELEASED]

    assert "job_released" in [entry["event"] for entry in logs]
    [released] = queue.visible  # at once, for the next worker
    assert released.continued is not None
    assert checkpoint.upload_id in slow.uploads
    monkeypatch.undo()
    slow.delay = 0.0

    assert drive(make_worker(queue, notifier, service, wait_seconds=0)) == [Outcome.SUCCEEDED]

    [notification] = notifier.published
    assert notification.job_id == job_id
    assert archived(slow, f"{job_id}/download-2026-11-27.zip") == files
    assert len({upload for upload, _, _ in slow.parts}) == 1


HOLD = {"wait_seconds": 0, "max_hold_seconds": 0.05}


def checkpointed_before_a_long_entry(
    slow: SlowStore, queue: MemoryQueue, notifier: MemoryNotifier
) -> tuple[dict[str, bytes], ArchiveService, str, Checkpoint]:
    """A job checkpointed after its first entry; its second, long, reads slowly from now on."""
    files = {"first.bin": random.Random(1).randbytes(12 * MIB)}
    files["long.bin"] = random.Random(2).randbytes(64 * MIB)
    for key, data in files.items():
        slow.add(ObjectRef(SOURCE, key), data)
    service = service_on(slow)
    job_id = queue.send(body(files), sent_at=SENT)
    assert drive(make_worker(queue, notifier, service, **HOLD)) == [Outcome.CONTINUED]
    checkpoint = checkpointed_now(slow, job_id)
    assert checkpoint.upload_id in slow.uploads
    slow.delay = 0.2
    return files, service, job_id, checkpoint


def test_a_job_out_of_time_on_its_last_delivery_is_answered_and_leaves_nothing(
    slow: SlowStore,
    queue: MemoryQueue,
    notifier: MemoryNotifier,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Released at the cap on the delivery before the dead-letter queue, it would go there
    unanswered: its consumer hears why instead, and its checkpoint and upload go."""
    _, service, job_id, _ = checkpointed_before_a_long_entry(slow, queue, notifier)
    monkeypatch.setattr(grace, "RECEIPT_CAP_SECONDS", 0.3)
    worker = make_worker(queue, notifier, service, max_receives=1, **HOLD)

    assert drive(worker) == [Outcome.FAILED]

    [notification] = notifier.published
    assert isinstance(notification, JobFailed)
    assert notification.job_id == job_id
    assert notification.error.code == "archive_too_large"
    assert "SQS_MAX_HOLD_SECONDS" in notification.error.message
    assert not queue.visible
    assert not queue.in_flight
    assert not slow.uploads
    assert not [ref.key for ref in slow.objects if ref.key.startswith(f"{job_id}/")]


def checkpointed_now(store: MemoryObjectStore, job_id: str) -> Checkpoint:
    data = store.objects[checkpoint_ref(DESTINATION, job_id)]
    assert isinstance(data, bytes)
    return Checkpoint.model_validate_json(data)


def test_a_message_is_superseded_once_the_continuation_after_its_own_was_sent(
    store: MemoryObjectStore,
) -> None:
    """Checkpoints 1 and 2 were continued; checkpoint 3 was saved by a worker killed before
    it sent its continuation. The job's own message and continuation 1 are superseded; the
    redelivered continuation 2 carries the job on, from checkpoint 3."""
    files = random_sources(store, 5, 5 * MIB)
    service = service_on(store)
    plan = plan_of(service, "job-7", files)
    first = checkpointed(service, plan)
    service.handed_over(first)
    second = checkpointed(service, plan, after=1)
    service.handed_over(second)
    third = checkpointed(service, plan, after=2)
    token = third.token
    assert first.token == second.token == token

    with pytest.raises(Superseded):
        service.admits("job-7", None)
    with pytest.raises(Superseded):
        service.admits("job-7", Continuation("job-7", SENT, 1, token))
    assert service.admits("job-7", Continuation("job-7", SENT, 2, token))
    assert not service.admits("job-7", Continuation("job-7", SENT, 2, "another job's token"))


def test_a_continuation_that_fails_before_it_is_built_leaves_nothing_behind(
    store: MemoryObjectStore, queue: MemoryQueue, notifier: MemoryNotifier
) -> None:
    """Its consumer hears the failure; its checkpoint and the upload it kept go with it."""
    files = random_sources(store, 4, 5 * MIB)
    service = service_on(store)
    plan = plan_of(service, "job-8", files)
    checkpoint = checkpointed_twice(service, plan)
    assert checkpoint.upload_id in store.uploads
    refused = json.dumps({"files": [{"source": "s3://not-allowed/x.bin"}]})
    queue.send(refused, Continuation("job-8", SENT, 2, checkpoint.token), sent_at=SENT)

    assert drive(make_worker(queue, notifier, service, wait_seconds=0)) == [Outcome.FAILED]

    [notification] = notifier.published
    assert isinstance(notification, JobFailed)
    assert notification.job_id == "job-8"
    assert not store.uploads
    assert not [ref.key for ref in store.objects if ref.key.startswith("job-8/")]
