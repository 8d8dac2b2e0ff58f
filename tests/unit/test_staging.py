"""Staging objects: what is written between two copied entries travels with the first one's
last part, so neither is read nor topped up; nothing of them outlives the job."""

import os
import threading
import time
import zlib

import pytest

from archiver.adapters.memory import Checksum, MemoryMultipartUpload, MemoryObjectStore
from archiver.app.engine.multipart_sink import MultipartSink
from archiver.app.engine.sizing import PROBE_BYTES
from archiver.app.engine.zipstream import ZipStream
from archiver.domain.checksum import crc32_text
from archiver.domain.errors import TransientError
from archiver.domain.job import FileSpec, JobRequest, ObjectRef
from archiver.domain.multipart import MIN_PART_BYTES, STAGING_PREFIX, staging_prefix
from archiver.domain.ports import ObjectHeaders
from tests.support import MIB, build_options, staging_left
from tests.unit.conftest import DESTINATION, SENT, SOURCE, ServiceFactory
from tests.zipcheck import check_layout, contents

ARCHIVE = ObjectRef(DESTINATION, "job-1/download-2026-11-27.zip")


def completed_staging(store: MemoryObjectStore, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The staging objects completed during the job (they are gone once it ends)."""
    completed: list[str] = []
    complete = MemoryMultipartUpload.complete

    def recorded(upload: MemoryMultipartUpload, crc32: int) -> None:
        complete(upload, crc32)
        if upload.ref.key.startswith(STAGING_PREFIX):
            completed.append(upload.ref.key)

    monkeypatch.setattr(MemoryMultipartUpload, "complete", recorded)
    return completed


def mixed_job(store: MemoryObjectStore, small: int = 10 * 1024, large: int = 4) -> dict[str, bytes]:
    """`large` large sources without a stored CRC-32, each after a small file."""
    bodies: dict[str, bytes] = {}
    for number in range(large):
        bodies[f"note-{number}.bin"] = os.urandom(small)
        bodies[f"clip-{number}.mp4"] = os.urandom(12 * MIB + number)
    for key, body in bodies.items():
        store.add(ObjectRef(SOURCE, key), body, Checksum.NONE)
    return bodies


def request(keys: list[str]) -> JobRequest:
    return JobRequest(files=[FileSpec(source=key) for key in keys])


def test_what_lies_between_copied_entries_goes_with_a_staging_object_and_is_never_read(
    store: MemoryObjectStore, make_service: ServiceFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    completed = completed_staging(store, monkeypatch)
    bodies = mixed_job(store)
    service = make_service()
    plan = service.plan("job-1", request(list(bodies)), SENT)
    archive = service.build(plan)
    data = store.objects[ARCHIVE]
    assert isinstance(data, bytes)
    assert contents(data) == bodies
    check_layout(data)
    assert archive.crc32 == crc32_text(zlib.crc32(data))
    small = sum(len(body) for key, body in bodies.items() if key.startswith("note"))
    # Read: the small files (their size checks), one top-up, what probing the large read.
    assert store.read_bytes <= small + MIN_PART_BYTES + 4 * PROBE_BYTES
    manifest = len(store.objects[plan.manifest])  # type: ignore[arg-type]
    assert store.uploaded_bytes - manifest <= small + MIN_PART_BYTES + 16 * 1024
    # The first three clips' last parts took the next note and clip header along; the last
    # clip is followed by the end of the archive, so it needed none.
    assert len(completed) == 3
    assert not staging_left(store)


def test_five_mib_written_after_a_copied_entry_need_no_staging(
    store: MemoryObjectStore, make_service: ServiceFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    completed = completed_staging(store, monkeypatch)
    photos = {f"photo-{number:02d}.jpg": os.urandom(200 * 1024) for number in range(30)}
    bodies = {"clip-0.mp4": os.urandom(12 * MIB), **photos, "clip-1.mp4": os.urandom(12 * MIB)}
    for key, body in bodies.items():
        store.add(ObjectRef(SOURCE, key), body, Checksum.NONE)
    service = make_service()
    service.build(service.plan("job-1", request(list(bodies)), SENT))
    data = store.objects[ARCHIVE]
    assert isinstance(data, bytes)
    assert contents(data) == bodies
    assert completed == []  # clip-0's last part was copied from its source after all
    assert not staging_left(store)


def test_a_failed_copy_into_a_staging_object_fails_the_attempt_and_leaves_nothing(
    store: MemoryObjectStore, make_service: ServiceFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    bodies = mixed_job(store)
    copy_part = MemoryMultipartUpload.copy_part
    into_staging: list[str] = []

    def failing(upload: MemoryMultipartUpload, number: int, *rest):  # type: ignore[no-untyped-def]
        if upload.ref.key.startswith(STAGING_PREFIX):
            into_staging.append(upload.ref.key)
            if len(into_staging) == 2:
                raise TransientError(f"{upload.ref}: SlowDown")
        return copy_part(upload, number, *rest)

    monkeypatch.setattr(MemoryMultipartUpload, "copy_part", failing)
    service = make_service()
    with pytest.raises(TransientError, match="SlowDown"):
        service.build(service.plan("job-1", request(list(bodies)), SENT))
    assert ARCHIVE not in store.objects
    assert not staging_left(store)


def test_a_redelivered_job_removes_the_staging_objects_a_killed_attempt_left(
    store: MemoryObjectStore, make_service: ServiceFactory
) -> None:
    bodies = mixed_job(store)
    service = make_service()
    plan = service.plan("job-1", request(list(bodies)), SENT)
    prefix = staging_prefix(plan.archive.key)
    store.put(ObjectRef(DESTINATION, f"{prefix}part-00003"), b"left", ObjectHeaders())
    store.start_upload(ObjectRef(DESTINATION, f"{prefix}part-00007"), ObjectHeaders())
    unrelated = ObjectRef(DESTINATION, f"{STAGING_PREFIX}another-job/part-00003")
    store.put(unrelated, b"not ours", ObjectHeaders())
    service.build(plan, redelivered=True)
    assert contents(store.objects[ARCHIVE]) == bodies  # type: ignore[arg-type]
    assert [ref.key for ref in store.objects if ref.key.startswith(STAGING_PREFIX)] == [
        unrelated.key
    ]
    assert not store.uploads


@pytest.mark.parametrize(("large", "crowd_size"), [(4, 6), (8, 14)])
def test_copies_run_copy_concurrency_at_once_whatever_the_upload_slots(
    store: MemoryObjectStore,
    make_service: ServiceFactory,
    monkeypatch: pytest.MonkeyPatch,
    large: int,
    crowd_size: int,
) -> None:
    """Copies hold no bytes in the worker: COPY_CONCURRENCY of them run beside one upload, and
    the writer goes on past copied entries whose CRC-32 S3 has not answered yet (8 here: their
    headers' parts hold only the small files between)."""
    bodies = mixed_job(store, large=large)
    copy_part = MemoryMultipartUpload.copy_part
    lock, running, peak, crowd = threading.Lock(), [0], [0], threading.Event()

    def counted(upload: MemoryMultipartUpload, *rest):  # type: ignore[no-untyped-def]
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
            if running[0] == crowd_size:
                crowd.set()
        crowd.wait(5)  # until that many copies run at once (never, were fewer allowed)
        try:
            return copy_part(upload, *rest)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(MemoryMultipartUpload, "copy_part", counted)
    build = build_options(upload_concurrency=1, copy_concurrency=crowd_size)
    service = make_service(build=build)
    service.build(service.plan("job-1", request(list(bodies)), SENT))
    assert contents(store.objects[ARCHIVE]) == bodies  # type: ignore[arg-type]
    assert crowd.is_set()
    assert peak[0] == crowd_size
    assert not staging_left(store)


def test_headers_waiting_for_s3s_crc_keep_at_most_a_parts_worth_of_memory(
    store: MemoryObjectStore, make_service: ServiceFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """3 MiB between copied entries whose copies answer slowly: the writer waits for the
    oldest before the parts kept for their headers pass one part (5 MiB here)."""
    bodies = mixed_job(store, small=3 * MIB, large=6)
    copy_part, patch = MemoryMultipartUpload.copy_part, ZipStream._patch
    held: list[int] = []

    def slow(upload: MemoryMultipartUpload, *rest):  # type: ignore[no-untyped-def]
        time.sleep(0.2)
        return copy_part(upload, *rest)

    def recorded(stream: ZipStream, keep: int) -> None:
        patch(stream, keep)
        sink = stream._sink
        assert isinstance(sink, MultipartSink)
        held.append(sink._layout.held_bytes(sink._parts))

    monkeypatch.setattr(MemoryMultipartUpload, "copy_part", slow)
    monkeypatch.setattr(ZipStream, "_patch", recorded)
    service = make_service(build=build_options(part_size=5 * MIB))
    service.build(service.plan("job-1", request(list(bodies)), SENT))
    assert contents(store.objects[ARCHIVE]) == bodies  # type: ignore[arg-type]
    assert 3 * MIB < max(held) <= 5 * MIB  # one small file's part kept, never two
    assert not staging_left(store)
