"""Server-side copy: large stored entries placed by the store (UploadPartCopy), not the worker."""

import io
import itertools
import os
import threading
import zipfile
import zlib
from collections.abc import Callable

import pytest
from structlog.testing import capture_logs

from archiver.adapters.memory import Checksum, MemoryMultipartUpload, MemoryObjectStore
from archiver.app.engine.multipart_sink import MultipartSink
from archiver.app.engine.sizing import PROBE_BYTES
from archiver.domain import multipart
from archiver.domain.checksum import combine, crc32_of_rest, crc32_text, crc32_value
from archiver.domain.errors import ErrorCode, JobCancelled, PermanentError, TransientError
from archiver.domain.job import FileSpec, JobRequest, ObjectRef
from archiver.domain.multipart import (
    COPY_PART_BYTES,
    MAX_PART_BYTES,
    MIN_COPIED_ENTRY_BYTES,
    MIN_PART_BYTES,
    STAGED_BYTES,
    Copies,
    copy_parts,
    parts_for_copy,
    top_up,
)
from archiver.domain.notifications import Progress
from archiver.domain.ports import ObjectHeaders
from tests.support import MIB, build_options, staging_left
from tests.unit.conftest import DESTINATION, SENT, SOURCE, ServiceFactory
from tests.zipcheck import check_layout, contents

ARCHIVE = ObjectRef(DESTINATION, "job-1/download-2026-11-27.zip")


@pytest.mark.parametrize(
    "length",
    [MIN_PART_BYTES, 2 * MIN_PART_BYTES - 1, 2 * MIN_PART_BYTES, 100 * MIB, COPY_PART_BYTES,
     COPY_PART_BYTES + 1, 5 * 1024**3 + 7],
)  # fmt: skip
def test_a_copied_range_is_cut_into_parts_within_s3_limits_its_last_5_mib_apart(
    length: int,
) -> None:
    parts = copy_parts(1000, length)
    assert parts[0][0] == 1000
    assert all(a + n == b for (a, n), (b, _) in itertools.pairwise(parts))
    assert sum(n for _, n in parts) == length
    assert all(MIN_PART_BYTES <= n <= min(COPY_PART_BYTES, MAX_PART_BYTES) for _, n in parts)
    if length >= STAGED_BYTES + MIN_PART_BYTES:
        assert parts[-1][1] == STAGED_BYTES  # the part a staging object copies first
        body = [n for _, n in parts[:-1]]
        assert max(body) - min(body) <= 1
    else:
        assert parts == [(1000, length)]
    assert len(parts) + 1 <= parts_for_copy(length + MIN_PART_BYTES)


def unknown_size(wait: bool) -> None:
    """A sink's expected size while no source is sized."""


def test_a_range_under_the_part_minimum_is_never_copied() -> None:
    with pytest.raises(ValueError, match="5 MiB"):
        copy_parts(0, MIN_PART_BYTES - 1)
    assert top_up(0) == MIN_PART_BYTES
    assert top_up(MIN_PART_BYTES - 10) == 10
    assert top_up(8 * MIB) == 0


def test_crc32_pieces_combine_and_a_head_comes_off_a_whole() -> None:
    data = os.urandom(300_000)
    for cut in (0, 1, 65_536, 299_999, 300_000):
        whole, head, rest = zlib.crc32(data), zlib.crc32(data[:cut]), zlib.crc32(data[cut:])
        assert crc32_of_rest(whole, head, len(data) - cut) == rest
        assert combine([(head, cut), (rest, len(data) - cut)]) == whole
    assert crc32_value(crc32_text(0xDEADBEEF)) == 0xDEADBEEF
    assert crc32_value("GNhC+Q==-2") is None  # a composite value is not a CRC-32


def test_copies_stop_at_their_share_of_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(multipart, "COPY_PARTS_SHARE", 2 * parts_for_copy(20 * MIB))
    copies = Copies()
    assert not copies.chooses(MIN_COPIED_ENTRY_BYTES - 1, True, 100)
    assert copies.chooses(20 * MIB, True, 100)
    assert copies.chooses(20 * MIB, True, 100)
    assert not copies.chooses(20 * MIB, True, 100)  # the rest of the archive keeps its parts


def test_an_entry_under_10_mib_is_copied_only_where_it_needs_no_top_up() -> None:
    """Copied whole after a copied entry (what lies between goes with its staging object);
    elsewhere a top-up would leave under 5 MiB to copy, so it streams, prefetched."""
    copies = Copies()
    assert not copies.chooses(8 * MIB, True, 100)  # first of the job: would need a top-up
    assert not copies.chooses(8 * MIB, True, 100)  # still nothing copied before it
    assert copies.chooses(12 * MIB, True, 100)  # topped up, 7 MiB or more left to copy
    assert copies.chooses(8 * MIB, True, 100)  # chained: copied whole
    assert not copies.chooses(3 * MIB, False, 100)  # deflated, written between
    assert copies.chooses(MIN_COPIED_ENTRY_BYTES, True, 100)  # 3 MiB + headers: chained
    assert not copies.chooses(6 * MIB, False, 100)  # 6 MiB deflated between: no chain now
    assert not copies.chooses(8 * MIB, True, 100)
    assert not copies.chooses(8 * MIB, False, 100)  # not stored: never copied
    assert copies.chooses(10 * MIB, True, 100)
    assert not copies.chooses(8 * MIB, True, MIN_PART_BYTES)  # a header bound of 5 MiB


def test_the_sink_closes_a_part_at_5_mib_before_a_copy_and_combines_the_crcs(
    store: MemoryObjectStore,
) -> None:
    source = ObjectRef(SOURCE, "big.mp4")
    body = os.urandom(12 * MIB)
    store.add(source, body)
    sink = MultipartSink(
        store, ARCHIVE, ObjectHeaders(), 8 * MIB, 4, unknown_size, lambda: None, copy_concurrency=4
    )
    sink.write(b"h" * 100)
    assert sink.top_up() == MIN_PART_BYTES - 100
    sink.write(body[: MIN_PART_BYTES - 100])
    assert sink.top_up() == 0
    rest = body[MIN_PART_BYTES - 100 :]
    sink.copy(source, MIN_PART_BYTES - 100, len(rest), store.stat(source).etag, zlib.crc32(rest))
    sink.write(b"tail")
    result = sink.close()

    expected = b"h" * 100 + body + b"tail"
    assert store.objects[ARCHIVE] == expected
    assert result.crc32 == zlib.crc32(expected)
    assert result.copied_bytes == len(rest)
    # Its last part went into a staging object first; with only the end after it, the
    # archive copied it from the source, and the staging object was dropped.
    assert store.copied_bytes == 2 * len(rest)
    assert store.uploaded_bytes == MIN_PART_BYTES + 4
    assert not staging_left(store)


def test_a_copy_after_a_short_part_is_a_bug_not_an_archive(store: MemoryObjectStore) -> None:
    source = ObjectRef(SOURCE, "big.mp4")
    store.add(source, os.urandom(12 * MIB))
    sink = MultipartSink(
        store, ARCHIVE, ObjectHeaders(), 8 * MIB, 4, unknown_size, lambda: None, copy_concurrency=4
    )
    sink.write(b"h" * 100)
    with pytest.raises(RuntimeError, match="under 5 MiB"):
        sink.copy(source, 0, 12 * MIB, None, 0)
    sink.abort()


def _sources(store: MemoryObjectStore) -> dict[str, bytes]:
    """A mixed job: copied (each kind of checksum), streamed-stored and deflated entries."""
    text = b"a line of text that deflates well\n" * 400_000  # ~13 MiB
    bodies = {
        "full.mp4": (os.urandom(12 * MIB), Checksum.FULL_OBJECT),
        "composite.mov": (os.urandom(21 * MIB + 5), Checksum.COMPOSITE),
        "none.mkv": (os.urandom(30 * MIB + 1), Checksum.NONE),
        "small.jpg": (os.urandom(7 * MIB), Checksum.FULL_OBJECT),  # one copied part
        "random.bin": (os.urandom(15 * MIB), Checksum.FULL_OBJECT),  # sampled, does not shrink
        "notes.txt": (text, Checksum.FULL_OBJECT),  # deflated: never copied
    }
    for key, (body, checksum) in bodies.items():
        store.add(ObjectRef(SOURCE, key), body, checksum)
    return {key: body for key, (body, _) in bodies.items()}


COPIED = ("full.mp4", "composite.mov", "none.mkv", "small.jpg", "random.bin")


def _request(keys: list[str]) -> JobRequest:
    return JobRequest(files=[FileSpec(source=key, destination="media") for key in keys])


def test_large_stored_entries_are_copied_by_the_store_and_the_archive_is_exact(
    store: MemoryObjectStore, make_service: ServiceFactory
) -> None:
    bodies = _sources(store)
    service = make_service()
    plan = service.plan("job-1", _request(list(bodies)), SENT)
    seen: list[Progress] = []
    with capture_logs() as logs:
        archive = service.build(plan, seen.append)

    data = store.objects[ARCHIVE]
    assert isinstance(data, bytes)
    assert contents(data) == {f"media/{key}": body for key, body in bodies.items()}
    check_layout(data)
    methods = {i.filename: i.compress_type for i in zipfile.ZipFile(io.BytesIO(data)).infolist()}
    assert methods["media/notes.txt"] == zipfile.ZIP_DEFLATED
    assert archive.crc32 == crc32_text(zlib.crc32(data))
    copied = sum(len(bodies[key]) for key in COPIED)
    # Only the first copied entry tops up the part before it (at most 5 MiB): the others'
    # headers go with the previous entry's staging object.
    uploaded = [e for e in logs if e["event"] == "archive_uploaded"]
    assert copied - MIN_PART_BYTES <= uploaded[0]["copied_bytes"] < copied
    # The worker read the deflated entry, that one top-up, and what probing read; it sent
    # the deflated entry, the top-up, headers and the central directory.
    deflated = zipfile.ZipFile(io.BytesIO(data)).getinfo("media/notes.txt").compress_size
    assert store.read_bytes <= len(bodies["notes.txt"]) + MIN_PART_BYTES + 6 * PROBE_BYTES
    manifest = len(store.objects[plan.manifest])  # type: ignore[arg-type]
    assert store.uploaded_bytes - manifest <= deflated + MIN_PART_BYTES + 64 * 1024
    assert not staging_left(store)
    assert seen[-1].bytes_done == seen[-1].bytes_total == sum(map(len, bodies.values()))
    assert seen[-1].files_done == len(bodies)
    assert not store.uploads


@pytest.mark.parametrize("store_says", [True, False], ids=["copy-answers-crc", "moto-like"])
def test_a_source_without_a_stored_crc_is_read_no_further_than_its_top_up(
    store: MemoryObjectStore, make_service: ServiceFactory, store_says: bool
) -> None:
    """Its CRC-32 is what the store computed of each part it copied (S3 into a CRC32 upload):
    the worker reads the top-up only. A store that does not say has the copied range read."""
    store.copy_checksums = store_says
    bodies = {f"{n}.mkv": os.urandom(12 * MIB + n) for n in range(3)}
    for key, body in bodies.items():
        store.add(ObjectRef(SOURCE, key), body, Checksum.NONE)
    service = make_service()
    plan = service.plan("job-1", _request(list(bodies)), SENT)
    archive = service.build(plan)
    data = store.objects[ARCHIVE]
    assert isinstance(data, bytes)
    assert contents(data) == {f"media/{key}": body for key, body in bodies.items()}
    check_layout(data)
    assert archive.crc32 == crc32_text(zlib.crc32(data))
    total = sum(map(len, bodies.values()))
    if store_says:
        assert store.read_bytes <= len(bodies) * MIN_PART_BYTES
    else:
        assert store.read_bytes >= total
    assert not store.uploads


def test_off_streams_every_byte_into_the_same_archive(
    store: MemoryObjectStore, make_service: ServiceFactory
) -> None:
    bodies = _sources(store)
    service = make_service(build=build_options(server_side_copy=False))
    plan = service.plan("job-1", _request(list(bodies)), SENT)
    service.build(plan)
    data = store.objects[ARCHIVE]
    assert isinstance(data, bytes)
    assert contents(data) == {f"media/{key}": body for key, body in bodies.items()}
    assert store.copied_bytes == 0
    assert store.uploaded_bytes == len(data) + len(store.objects[plan.manifest])  # type: ignore[arg-type]


def test_a_store_that_refuses_copies_gets_the_job_streamed(
    store: MemoryObjectStore, make_service: ServiceFactory
) -> None:
    bodies = _sources(store)
    store.refuse_copies = "NotImplemented"
    service = make_service()
    with capture_logs() as logs:
        archive = service.build(service.plan("job-1", _request(list(bodies)), SENT))
    data = store.objects[ARCHIVE]
    assert isinstance(data, bytes)
    assert contents(data) == {f"media/{key}": body for key, body in bodies.items()}
    assert archive.crc32 == crc32_text(zlib.crc32(data))
    refused = [e for e in logs if e["event"] == "server_side_copy_refused"]
    assert len(refused) == 1
    assert "NotImplemented" in refused[0]["reason"]
    assert store.copied_bytes == 0
    assert not store.uploads  # the refused attempt's upload was aborted


def before_each_copy(monkeypatch: pytest.MonkeyPatch, change: Callable[[ObjectRef], None]) -> None:
    """Change the source just before the store copies from it (after it was sized)."""
    copy_part = MemoryMultipartUpload.copy_part

    def changed_first(upload: MemoryMultipartUpload, number: int, source: ObjectRef, *rest):  # type: ignore[no-untyped-def]
        change(source)
        return copy_part(upload, number, source, *rest)

    monkeypatch.setattr(MemoryMultipartUpload, "copy_part", changed_first)


def test_a_source_replaced_mid_job_fails_the_attempt_and_leaves_no_upload(
    store: MemoryObjectStore, make_service: ServiceFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    bodies = _sources(store)
    before_each_copy(
        monkeypatch,
        lambda source: store.add(source, os.urandom(len(bodies[source.key])), Checksum.FULL_OBJECT),
    )
    service = make_service()
    with pytest.raises(TransientError, match="changed"):
        service.build(service.plan("job-1", _request(list(bodies)), SENT))
    assert ARCHIVE not in store.objects
    assert not store.uploads


def test_a_source_deleted_before_its_copy_fails_the_job_by_name(
    store: MemoryObjectStore, make_service: ServiceFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    bodies = _sources(store)
    before_each_copy(monkeypatch, lambda source: store.objects.pop(source, None))
    service = make_service()
    with pytest.raises(PermanentError) as failure:
        service.build(service.plan("job-1", _request(list(bodies)), SENT))
    assert failure.value.code is ErrorCode.SOURCE_NOT_FOUND
    assert f"s3://{SOURCE}/full.mp4" in failure.value.sources
    assert not store.uploads


def test_a_shutdown_between_copies_aborts_the_upload(
    store: MemoryObjectStore, make_service: ServiceFactory
) -> None:
    bodies = _sources(store)
    cancel = threading.Event()
    seen: list[int] = []

    def progress(done: Progress) -> None:
        seen.append(done.files_done)
        if done.files_done >= 1:  # the first entry, copied, is done
            cancel.set()

    service = make_service()
    plan = service.plan("job-1", _request(list(bodies)), SENT)
    with pytest.raises(JobCancelled):
        service.build(plan, progress, cancel=cancel)
    assert ARCHIVE not in store.objects
    assert not staging_left(store)
    assert max(seen) == 1  # stopped at the next chunk, before another entry


def test_a_redelivered_job_reuses_the_copied_archive(
    store: MemoryObjectStore, make_service: ServiceFactory
) -> None:
    bodies = _sources(store)
    service = make_service()
    plan = service.plan("job-1", _request(list(bodies)), SENT)
    first = service.build(plan)
    copied = store.copied_bytes
    again = service.build(plan, redelivered=True)
    assert again == first
    assert store.copied_bytes == copied  # nothing copied twice
