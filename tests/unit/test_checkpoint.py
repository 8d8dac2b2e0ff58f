"""Jobs longer than one receipt may be held: checkpointed, carried on, resumed (issue #23)."""

import json
import random
import threading
import time
from datetime import UTC, datetime

import pytest
from structlog.testing import capture_logs

from archiver.adapters.memory import MemoryObjectStore
from archiver.adapters.memory_queue import MemoryNotifier, MemoryQueue
from archiver.adapters.memory_secrets import ACCOUNT_PREFIX, MemorySecretStore
from archiver.app.jobs.checkpoints import Checkpointed
from archiver.app.jobs.service import ArchiveService
from archiver.app.worker.outcomes import Outcome
from archiver.domain.checkpoint import (
    Checkpoint,
    Continuation,
    checkpoint_ref,
    continuation_attributes,
    continuation_of,
    tail_ref,
)
from archiver.domain.errors import TransientError
from archiver.domain.job import JobRequest, ObjectRef
from archiver.domain.notifications import JobSucceeded
from archiver.domain.plan import ArchivePlan, ArchivePolicy, MissingFiles
from archiver.domain.ports import ObjectHeaders
from tests.aes import decrypted
from tests.slow_store import SlowStore
from tests.support import build_options, drive, link_options, make_worker
from tests.unit.conftest import DESTINATION, SENT, SOURCE
from tests.zipcheck import contents

MIB = 1024 * 1024


def bodies() -> dict[str, bytes]:
    """Streamed, deflated, copied (stored, 12 MiB) and small entries, in one job."""
    rng = random.Random(23)
    files = {}
    for index in range(14):
        if index % 5 == 2:
            files[f"photos/{index:02d}.png"] = rng.randbytes(12 * MIB)  # stored: copied
        elif index % 3 == 0:
            files[f"text/{index:02d}.txt"] = b"checkpoint %d " % index * 300_000  # deflated
        else:
            files[f"raw/{index:02d}.bin"] = rng.randbytes(rng.choice([40_000, 3 * MIB, 7 * MIB]))
    return files


def service_on(store: MemoryObjectStore, **policy: object) -> ArchiveService:
    return ArchiveService(
        store,
        MemorySecretStore(),
        ArchivePolicy(SOURCE, DESTINATION, **policy),  # type: ignore[arg-type]
        build_options(download_concurrency=2),
        link_options(base_url="https://cdn.example.com/"),
    )


def test_a_job_outlives_several_holds_and_is_answered_once(
    slow: SlowStore, queue: MemoryQueue, notifier: MemoryNotifier
) -> None:
    files = bodies()
    for key, data in files.items():
        slow.add(ObjectRef(SOURCE, key), data)
    worker = make_worker(queue, notifier, service_on(slow), wait_seconds=0, max_hold_seconds=0.2)
    job_id = queue.send(json.dumps({"files": [{"source": key} for key in files]}), sent_at=SENT)

    outcomes = drive(worker, polls=40)

    holds = outcomes.count(Outcome.CONTINUED)
    assert holds >= 3, outcomes
    assert outcomes.count(Outcome.SUCCEEDED) == 1, outcomes
    assert set(outcomes) == {Outcome.CONTINUED, Outcome.SUCCEEDED}
    [notification] = notifier.published
    assert isinstance(notification, JobSucceeded)
    assert notification.job_id == job_id
    assert notification.archive.file_count == len(files)
    key = f"{job_id}/download-2026-11-27.zip"  # the first message's date, every hold
    archive = slow.objects[ObjectRef(DESTINATION, key)]
    assert isinstance(archive, bytes)
    assert len(archive) == notification.archive.size_bytes
    leaves = {key.rsplit("/", 1)[-1]: data for key, data in files.items()}
    assert contents(archive) == leaves  # every CRC-32 checked by zipfile
    # One upload all along; no part sent twice; what each hold kept back went once as its tail.
    assert len({upload for upload, _, _ in slow.parts}) == 1
    numbers = [number for _, number, _ in slow.parts]
    assert len(numbers) == len(set(numbers))
    tails = [size for name, size in slow.puts if name.endswith(".tail")]
    assert len(tails) <= holds
    assert all(size < build_options().part_size for size in tails)
    assert sum(size for _, _, size in slow.parts) <= len(archive)  # no byte sent twice
    # Nothing is left: no checkpoint, no open upload, no message.
    assert not [ref for ref in slow.objects if "checkpoint" in ref.key]
    assert not slow.uploads
    assert not queue.visible
    assert not queue.in_flight
    assert len(queue.deleted) == holds + 1


def random_sources(store: MemoryObjectStore, count: int, size: int) -> dict[str, bytes]:
    files = {f"f{index}.bin": random.Random(index).randbytes(size) for index in range(count)}
    for key, data in files.items():
        store.add(ObjectRef(SOURCE, key), data)
    return files


def plan_of(service: ArchiveService, job_id: str, files: dict[str, bytes]) -> ArchivePlan:
    request = JobRequest.model_validate({"files": [{"source": key} for key in files]})
    return service.plan(job_id, request, SENT)


def checkpointed(service: ArchiveService, plan: ArchivePlan, after: int = 0) -> Checkpoint:
    """Build with the hold already over: the build stops at its first entry's end."""
    due = threading.Event()
    due.set()
    with pytest.raises(Checkpointed) as stopped:
        service.build(plan, due=due, redelivered=after > 0)
    return stopped.value.checkpoint


def checkpointed_twice(service: ArchiveService, plan: ArchivePlan) -> Checkpoint:
    """Checkpointed by a first receipt, then by a redelivery that resumed it: the second
    checkpoint, whose upload has parts when the entries are large enough."""
    checkpointed(service, plan)
    return checkpointed(service, plan, after=1)


def test_a_redelivery_finding_a_checkpoint_resumes_its_upload(store: MemoryObjectStore) -> None:
    files = random_sources(store, 6, 5 * MIB)
    service = service_on(store)
    plan = plan_of(service, "job-1", files)
    first = checkpointed(service, plan)
    assert first.next_entry == 1
    assert first.holds == 1
    assert first.parts_sent == 0
    second = checkpointed(service, plan, after=1)  # a crash after it: resumed, cut again
    assert (second.next_entry, second.holds) == (2, 2)
    assert second.upload_id is not None
    assert second.parts_sent == 1
    sent_before = store.uploaded_bytes

    archive = service.build(plan, redelivered=True)  # a plain redelivery, to the end

    data = store.objects[ObjectRef(DESTINATION, plan.archive.key)]
    assert isinstance(data, bytes)
    assert contents(data) == files
    assert archive.file_count == 6
    assert archive.size_bytes == len(data)
    # Only what came after the second checkpoint was sent again: its tail, once.
    assert store.uploaded_bytes - sent_before < len(data) - second.sent_bytes + 64 * 1024
    assert ObjectRef(DESTINATION, "job-1/checkpoint.json") not in store.objects
    assert not [ref.key for ref in store.objects if ref.key.endswith(".tail")]


def test_a_checkpoint_whose_upload_is_gone_starts_over(store: MemoryObjectStore) -> None:
    files = random_sources(store, 5, 4 * MIB)
    service = service_on(store)
    plan = plan_of(service, "job-2", files)
    checkpoint = checkpointed_twice(service, plan)
    assert checkpoint.upload_id is not None
    store.uploads[checkpoint.upload_id].abort()  # a lifecycle rule, or another worker

    service.build(plan, redelivered=True)

    data = store.objects[ObjectRef(DESTINATION, plan.archive.key)]
    assert isinstance(data, bytes)
    assert contents(data) == files
    assert not store.uploads


def test_a_checkpoint_of_other_content_is_never_resumed(store: MemoryObjectStore) -> None:
    files = random_sources(store, 4, 2 * MIB)
    service = service_on(store)
    checkpointed(service, plan_of(service, "job-3", files))
    fewer = dict(list(files.items())[1:])  # the same job id, other files: not the same job

    service.build(plan_of(service, "job-3", fewer), redelivered=True)

    data = store.objects[ObjectRef(DESTINATION, "job-3/download-2026-11-27.zip")]
    assert isinstance(data, bytes)
    assert contents(data) == fewer


def test_a_missing_file_found_after_a_checkpoint_is_listed_with_those_before(
    store: MemoryObjectStore,
) -> None:
    files = random_sources(store, 4, MIB)
    service = service_on(store, missing_files=MissingFiles.SKIP)
    request = JobRequest.model_validate(
        {"files": [{"source": "gone-first.bin"}] + [{"source": key} for key in files]}
    )
    plan = service.plan("job-4", request, SENT)
    checkpoint = checkpointed(service, plan)
    assert checkpoint.missing == ["s3://source-images/gone-first.bin"]
    store.delete(ObjectRef(SOURCE, "f3.bin"))  # gone while the job waited for its next hold

    archive = service.build(plan, redelivered=True)

    assert archive.missing == ["s3://source-images/gone-first.bin", "s3://source-images/f3.bin"]
    assert archive.file_count == 3
    data = store.objects[ObjectRef(DESTINATION, plan.archive.key)]
    assert isinstance(data, bytes)
    assert set(contents(data)) == {"f0.bin", "f1.bin", "f2.bin"}


def test_continuation_attributes_round_trip_and_bad_ones_make_none() -> None:
    continuation = Continuation("job-9", datetime(2026, 12, 7, 20, 0, 1, tzinfo=UTC), 3, "t" * 32)
    assert continuation_of(continuation_attributes(continuation)) == continuation
    assert continuation_of({}) is None
    attributes = continuation_attributes(continuation)
    assert continuation_of({**attributes, "archiver-job-created": "yesterday"}) is None
    assert continuation_of({**attributes, "archiver-job-created": "2026-12-07T20:00"}) is None
    assert continuation_of({**attributes, "archiver-job-holds": "x"}) is None
    assert continuation_of({**attributes, "archiver-job-token": ""}) is None


def test_checkpoint_objects_live_beside_the_archive() -> None:
    assert checkpoint_ref(DESTINATION, "j") == ObjectRef(DESTINATION, "j/checkpoint.json")
    assert tail_ref(DESTINATION, "j", 3) == ObjectRef(DESTINATION, "j/checkpoint.3.tail")


def test_the_hold_must_stay_under_sqs_cap() -> None:
    from archiver.app.composition.settings import load_settings
    from archiver.domain.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="SQS_MAX_HOLD_SECONDS"):
        load_settings(sqs_max_hold_seconds=43_080)  # the receipt's cap: it would never hand over
    assert load_settings(sqs_max_hold_seconds=43_079).worker_options().max_hold_seconds == 43_079


def test_a_message_claiming_another_jobs_id_is_a_job_of_its_own(
    store: MemoryObjectStore, queue: MemoryQueue, notifier: MemoryNotifier
) -> None:
    """Continuation attributes a producer made up cannot write into another job's key."""
    store.add(ObjectRef(SOURCE, "mine.txt"), b"mine")
    victim = ObjectRef(DESTINATION, "victim/download-2026-11-27.zip")
    store.put(victim, b"the victim's archive", ObjectHeaders())
    worker = make_worker(queue, notifier, service_on(store), wait_seconds=0)
    claimed = Continuation("victim", SENT, 1, "a guess" * 5)
    message_id = queue.send('{"files": [{"source": "mine.txt"}]}', claimed, sent_at=SENT)

    assert drive(worker) == [Outcome.SUCCEEDED]

    [notification] = notifier.published
    assert isinstance(notification, JobSucceeded)
    assert notification.job_id == message_id
    assert notification.archive.key.startswith(f"{message_id}/")
    assert store.objects[victim] == b"the victim's archive"


def test_an_encrypted_job_resumes_with_the_password_read_again(store: MemoryObjectStore) -> None:
    """Every entry has its own salt and key: those after a checkpoint are encrypted by the
    next receipt, the password read from the secret again, never kept in the checkpoint."""
    files = random_sources(store, 4, 4 * MIB)
    files["notes.txt"] = b"deflated, then encrypted\n" * 40_000
    store.add(ObjectRef(SOURCE, "notes.txt"), files["notes.txt"])
    secrets = MemorySecretStore()
    secrets.add("archiver/job", "a passphrase")
    service = ArchiveService(
        store,
        secrets,
        ArchivePolicy(SOURCE, DESTINATION, encryption_secrets=(ACCOUNT_PREFIX,)),
        build_options(),
        link_options(base_url="https://cdn.example.com/"),
    )
    job = {
        "files": [{"source": k} for k in files],
        "archive": {"encryption": {"secret": "archiver/job"}},
    }
    plan = service.plan("job-5", JobRequest.model_validate(job), SENT)
    checkpointed(service, plan)
    checkpointed(service, plan, after=1)
    checkpoint = store.objects[ObjectRef(DESTINATION, "job-5/checkpoint.json")]
    assert isinstance(checkpoint, bytes)
    assert b"a passphrase" not in checkpoint

    service.build(plan, redelivered=True)

    data = store.objects[ObjectRef(DESTINATION, plan.archive.key)]
    assert isinstance(data, bytes)
    assert decrypted(data, "a passphrase") == files
    assert secrets.reads == 3


def test_a_checkpoint_that_could_not_be_replaced_is_resumed_as_it_was(
    store: MemoryObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hold whose new checkpoint could not be written: the one before still names its own
    tail and parts (the new tail went under a name of its own), and the job resumes there."""
    files = random_sources(store, 6, 3 * MIB)
    service = service_on(store)
    plan = plan_of(service, "job-6", files)
    first = checkpointed(service, plan)
    put = store.put

    def refused(ref: ObjectRef, data: bytes, headers: ObjectHeaders) -> None:
        if ref.key.endswith("checkpoint.json"):
            raise TransientError(f"{ref}: SlowDown")
        put(ref, data, headers)

    monkeypatch.setattr(store, "put", refused)
    due = threading.Event()
    due.set()
    with pytest.raises(TransientError):
        service.build(plan, due=due, redelivered=True)
    monkeypatch.setattr(store, "put", put)

    with capture_logs() as logs:
        service.build(plan, redelivered=True)

    [resumed] = [entry for entry in logs if entry["event"] == "job_resumed"]
    assert resumed["next_entry"] == first.next_entry
    data = store.objects[ObjectRef(DESTINATION, plan.archive.key)]
    assert isinstance(data, bytes)
    assert contents(data) == files
    assert not [ref.key for ref in store.objects if "checkpoint" in ref.key]


def test_a_stop_hands_a_long_job_over_instead_of_losing_its_work(
    slow: SlowStore, queue: MemoryQueue, notifier: MemoryNotifier
) -> None:
    """SIGTERM mid-job: halfway through the grace the job stops at its next entry's end,
    checkpoints and goes back on the queue as a continuation, at once (nothing hidden); the
    next worker finishes it from there."""
    files = bodies()
    for key, data in files.items():
        slow.add(ObjectRef(SOURCE, key), data)
    service = service_on(slow)
    stopping = make_worker(queue, notifier, service, wait_seconds=0, shutdown_grace=0.6)
    job_id = queue.send(json.dumps({"files": [{"source": key} for key in files]}), sent_at=SENT)
    stop = threading.Event()
    runner = threading.Thread(target=lambda: stopping.run(stop))
    runner.start()
    time.sleep(0.3)  # mid-job
    stop.set()
    runner.join(timeout=10)
    assert not runner.is_alive()
    assert not notifier.published
    [continuation] = list(queue.visible)  # visible now, not after a visibility timeout
    assert continuation.job_id == job_id
    sent = len(slow.parts)
    assert sent > 0

    assert drive(make_worker(queue, notifier, service, wait_seconds=0)) == [Outcome.SUCCEEDED]

    [notification] = notifier.published
    assert notification.job_id == job_id
    numbers = [number for _, number, _ in slow.parts]
    assert len(numbers) == len(set(numbers))  # the first worker's parts were kept
    assert len({upload for upload, _, _ in slow.parts}) == 1
