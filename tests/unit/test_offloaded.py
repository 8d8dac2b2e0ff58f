"""Jobs whose body an Amazon SQS Extended Client offloaded to S3 (a pointer on the queue)."""

import json

import pytest

from archiver.adapters.memory import MemoryObjectStore
from archiver.adapters.memory_queue import MemoryNotifier, MemoryQueue
from archiver.adapters.memory_secrets import MemorySecretStore
from archiver.app.jobs import resolve as resolve_module
from archiver.app.jobs.service import ArchiveService
from archiver.app.worker.loop import Worker
from archiver.app.worker.outcomes import Outcome
from archiver.domain.errors import InvalidPayload
from archiver.domain.job import ObjectRef
from archiver.domain.notifications import JobFailed, JobSucceeded
from archiver.domain.offload import offloaded_payload
from archiver.domain.plan import ArchivePolicy
from tests.support import build_options, drive, link_options, make_worker
from tests.unit.conftest import DESTINATION, SENT, SOURCE
from tests.zipcheck import contents

POINTER = "software.amazon.payloadoffloading.PayloadS3Pointer"
PAYLOADS = "payloads"
JOB = {"files": [{"source": "a.png"}], "metadata": {"ticket": 42}}


def pointer(bucket: str, key: str, kind: str = POINTER) -> str:
    return json.dumps([kind, {"s3BucketName": bucket, "s3Key": key}])


def worker(
    store: MemoryObjectStore, queue: MemoryQueue, notifier: MemoryNotifier, delete: bool
) -> Worker:
    policy = ArchivePolicy(SOURCE, DESTINATION, allowed_source_buckets=frozenset({PAYLOADS}))
    service = ArchiveService(
        store, MemorySecretStore(), policy, build_options(), link_options(base_url="https://cdn")
    )
    return make_worker(queue, notifier, service, wait_seconds=0, delete_offloaded=delete)


@pytest.fixture
def offloaded(store: MemoryObjectStore) -> ObjectRef:
    store.add(ObjectRef(SOURCE, "a.png"), b"a")
    ref = ObjectRef(PAYLOADS, "0f1e2d3c-job")
    store.add(ref, json.dumps(JOB).encode())
    return ref


@pytest.mark.parametrize("kind", [POINTER, "com.amazon.sqs.javamessaging.MessageS3Pointer"])
@pytest.mark.parametrize("delete", [False, True])
def test_an_offloaded_body_is_read_from_s3_and_deleted_only_when_asked(
    store: MemoryObjectStore,
    queue: MemoryQueue,
    notifier: MemoryNotifier,
    offloaded: ObjectRef,
    kind: str,
    delete: bool,
) -> None:
    job_id = queue.send(pointer(offloaded.bucket, offloaded.key, kind), sent_at=SENT)
    assert drive(worker(store, queue, notifier, delete)) == [Outcome.SUCCEEDED]
    [notification] = notifier.published
    assert isinstance(notification, JobSucceeded)
    assert notification.metadata == JOB["metadata"]
    data = store.objects[ObjectRef(DESTINATION, notification.archive.key)]
    assert isinstance(data, bytes)
    assert contents(data) == {"a.png": b"a"}
    assert [message.message_id for message in queue.deleted] == [job_id]
    assert (offloaded in store.objects) is not delete


@pytest.mark.parametrize(
    ("body", "code", "reason"),
    [
        (pointer(PAYLOADS, "missing"), "source_not_found", "cannot be read"),
        (pointer("foreign-bucket", "job"), "source_bucket_not_allowed", "may not read"),
        (json.dumps([POINTER, {"s3Key": "job"}]), "invalid_payload", "no s3BucketName"),
        (pointer(PAYLOADS, "a/../b"), "invalid_payload", "unusable"),
        (pointer(PAYLOADS, "huge"), "invalid_payload", "the limit is 100"),
        (pointer(PAYLOADS, "not-a-job"), "invalid_payload", "the offloaded body"),
    ],
)
def test_a_bad_pointer_or_payload_is_answered_and_deleted(
    store: MemoryObjectStore,
    queue: MemoryQueue,
    notifier: MemoryNotifier,
    monkeypatch: pytest.MonkeyPatch,
    body: str,
    code: str,
    reason: str,
) -> None:
    monkeypatch.setattr(resolve_module, "MAX_OFFLOADED_BYTES", 100)
    store.add(ObjectRef(PAYLOADS, "huge"), b" " * 101)
    store.add(ObjectRef(PAYLOADS, "not-a-job"), b'{"files": 3}')
    job_id = queue.send(body, sent_at=SENT)
    assert drive(worker(store, queue, notifier, delete=True)) == [Outcome.FAILED]
    [notification] = notifier.published
    assert isinstance(notification, JobFailed)
    assert notification.error.code == code
    assert reason in notification.error.message
    assert [message.message_id for message in queue.deleted] == [job_id]


def test_only_a_pointer_is_taken_for_one() -> None:
    assert offloaded_payload(json.dumps(JOB)) is None
    assert offloaded_payload('["something.else", {"s3BucketName": "b", "s3Key": "k"}]') is None
    assert offloaded_payload("not json") is None
    assert offloaded_payload(pointer("bucket-a", "k/1")) == ObjectRef("bucket-a", "k/1")
    with pytest.raises(InvalidPayload):
        offloaded_payload(json.dumps([POINTER, "not an object"]))
