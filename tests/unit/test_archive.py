import io
import random
import threading
import zipfile
import zlib
from datetime import UTC, datetime

import pytest

from archiver.adapters.memory import MemoryObjectStore, SyntheticBody
from archiver.domain.checksum import crc32_text
from archiver.domain.errors import ErrorCode, PermanentError, TransientError
from archiver.domain.job import FileSpec, JobRequest, ObjectRef
from archiver.domain.notifications import Progress
from archiver.domain.plan import ArchivePolicy, CompressionMode
from tests.support import MIB, build_options, link_options
from tests.unit.conftest import DESTINATION, SENT, SOURCE, ServiceFactory
from tests.zipcheck import check_layout, contents, unix_times


def put(store: MemoryObjectStore, key: str, body: bytes, modified: datetime | None = None) -> None:
    store.add(ObjectRef(SOURCE, key), body, modified=modified)


def request(*files: dict[str, str]) -> JobRequest:
    return JobRequest(files=[FileSpec(**spec) for spec in files])


def test_archive_holds_every_source_under_its_name(
    store: MemoryObjectStore, make_service: ServiceFactory
) -> None:
    text = b"hello archive\n" * 1000
    times = [datetime(2019, 3, n, 10, 20, 31 + n, tzinfo=UTC) for n in range(1, 5)]
    put(store, "dir/notes.txt", text, times[0])
    put(store, "dir/photo.png", b"\x89PNG" + bytes(500), times[1])
    put(store, "dir/empty.bin", b"", times[2])
    put(store, "dir/één.txt", "é".encode(), times[3])
    service = make_service()
    plan = service.plan(
        "job-1",
        request(
            {"source": "dir/notes.txt", "destination": "docs/2026"},
            {"source": "dir/photo.png", "destination": "album_1", "name": "cover.png"},
            {"source": "dir/empty.bin"},
            {"source": "dir/één.txt"},
        ),
        SENT,
    )
    archive = service.build(plan)

    data = store.objects[ObjectRef(DESTINATION, "job-1/download-2026-11-27.zip")]
    assert isinstance(data, bytes)
    assert contents(data) == {
        "docs/2026/notes.txt": text,
        "album_1/cover.png": b"\x89PNG" + bytes(500),
        "empty.bin": b"",
        "één.txt": "é".encode(),
    }
    layout = check_layout(data)
    assert not layout.zip64_end_record
    assert layout.local_zip64 == [False] * 4
    infos = zipfile.ZipFile(io.BytesIO(data)).infolist()
    assert [info.compress_type for info in infos] == [
        zipfile.ZIP_DEFLATED,
        zipfile.ZIP_STORED,  # .png
        zipfile.ZIP_STORED,  # empty
        zipfile.ZIP_STORED,  # two bytes do not shrink
    ]
    # Each entry carries its source's time: to the second in 0x5455, in 2 s steps as DOS time.
    assert [info.date_time for info in infos] == [
        (2019, 3, n, 10, 20, (31 + n) // 2 * 2) for n in range(1, 5)
    ]
    names = [info.filename for info in infos]
    assert unix_times(data) == {
        name: int(moment.timestamp()) for name, moment in zip(names, times, strict=True)
    }
    assert archive.size_bytes == len(data)
    assert archive.crc32 == crc32_text(zlib.crc32(data))
    assert archive.sha256 is None  # deprecated
    assert archive.file_count == 4
    headers = store.headers[plan.archive]
    assert headers.content_type == "application/zip"
    assert headers.content_disposition == 'attachment; filename="download-2026-11-27.zip"'


def test_auto_stores_what_deflate_cannot_shrink_and_forced_modes_win(
    store: MemoryObjectStore, make_service: ServiceFactory
) -> None:
    noise = random.Random(5).randbytes(300_000)
    put(store, "noise.bin", noise)
    put(store, "text.log", b"log line\n" * 30_000)
    files = ({"source": "noise.bin"}, {"source": "text.log"})

    def methods(compression: CompressionMode) -> list[int]:
        policy = ArchivePolicy(SOURCE, DESTINATION, compression=compression)
        service = make_service(policy=policy)
        plan = service.plan(f"job-{compression}", request(*files), SENT)
        service.build(plan)
        data = store.objects[plan.archive]
        assert isinstance(data, bytes)
        assert contents(data) == {"noise.bin": noise, "text.log": b"log line\n" * 30_000}
        return [info.compress_type for info in zipfile.ZipFile(io.BytesIO(data)).infolist()]

    assert methods(CompressionMode.AUTO) == [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]
    assert methods(CompressionMode.DEFLATED) == [zipfile.ZIP_DEFLATED] * 2
    assert methods(CompressionMode.STORED) == [zipfile.ZIP_STORED] * 2


def test_same_job_builds_identical_bytes(
    store: MemoryObjectStore, make_service: ServiceFactory
) -> None:
    put(store, "a.txt", b"a" * 1000)
    service = make_service()
    plan = service.plan("job", request({"source": "a.txt"}, {"source": "a.txt"}), SENT)
    service.build(plan)
    first = store.objects[plan.archive]
    service.build(plan)
    assert store.objects[plan.archive] == first


def test_multi_part_archive_reads_back(
    store: MemoryObjectStore, make_service: ServiceFactory
) -> None:
    rng = random.Random(7)
    bodies = {f"big/{n}.bin": rng.randbytes(6 * MIB + n) for n in range(3)}
    for key, body in bodies.items():
        put(store, key, body)
    put(store, "small.txt", b"tiny")
    service = make_service(build=build_options(part_size=5 * MIB, upload_concurrency=2))
    files = [{"source": key, "destination": "big"} for key in bodies] + [{"source": "small.txt"}]
    plan = service.plan("job-mp", request(*files), SENT)
    archive = service.build(plan)

    data = store.objects[plan.archive]
    assert isinstance(data, bytes)
    assert len(data) > 3 * 5 * MIB  # more than one part
    assert not store.uploads
    expected = {f"big/{n}.bin": bodies[f"big/{n}.bin"] for n in range(3)}
    assert contents(data) == expected | {"small.txt": b"tiny"}
    check_layout(data)
    assert archive.crc32 == crc32_text(zlib.crc32(data))  # the parts' CRCs, combined


def test_entry_larger_than_the_memory_budget_streams_out_of_order(
    store: MemoryObjectStore, make_service: ServiceFactory
) -> None:
    body = random.Random(3).randbytes(64 * MIB)
    put(store, "huge.bin", body)
    service = make_service(  # the least budget for 5 MiB parts (one in flight): 41 MiB
        build=build_options(memory_budget=48 * MIB, part_size=5 * MIB, upload_concurrency=2)
    )
    plan = service.plan("job-big", request({"source": "huge.bin"}), SENT)
    archive = service.build(plan)
    data = store.objects[plan.archive]
    assert isinstance(data, bytes)
    assert contents(data) == {"huge.bin": body}
    check_layout(data)
    assert archive.crc32 == crc32_text(zlib.crc32(data))  # parts out of order: still exact


@pytest.mark.slow
def test_zip64_only_beyond_65535_entries(
    store: MemoryObjectStore, make_service: ServiceFactory
) -> None:
    count = 65_536
    store.add(ObjectRef(SOURCE, "one.txt"), SyntheticBody(3))
    policy = ArchivePolicy(SOURCE, DESTINATION, max_files=count)
    service = make_service(policy=policy)
    files = [{"source": "one.txt", "name": f"{n}.txt"} for n in range(count)]
    plan = service.plan("job-z64", request(*files), SENT)
    service.build(plan)
    data = store.objects[plan.archive]
    assert isinstance(data, bytes)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert len(archive.infolist()) == count
        assert archive.read("65535.txt") == bytes(range(3))
    assert b"PK\x06\x06" in data[-200:]  # ZIP64 end of central directory
    assert b"PK\x06\x06" not in data[:-200]


def test_missing_sources_fail_together_before_anything_is_written(
    store: MemoryObjectStore, make_service: ServiceFactory
) -> None:
    put(store, "here.png", b"x")
    service = make_service()
    plan = service.plan(
        "job-missing",
        request({"source": "gone-1.png"}, {"source": "here.png"}, {"source": "gone-2.png"}),
        SENT,
    )
    with pytest.raises(PermanentError) as caught:
        service.build(plan)
    assert caught.value.code == ErrorCode.SOURCE_NOT_FOUND
    assert caught.value.sources == [
        "s3://source-images/gone-1.png",
        "s3://source-images/gone-2.png",
    ]
    assert "2 source(s) cannot be read (2 not found)" in caught.value.message
    assert plan.archive not in store.objects
    assert not store.uploads


def test_source_vanishing_mid_job_aborts_the_upload(
    store: MemoryObjectStore, make_service: ServiceFactory
) -> None:
    rng = random.Random(4)
    put(store, "a.bin", rng.randbytes(12 * MIB))
    put(store, "b.bin", b"b")
    service = make_service(build=build_options(part_size=5 * MIB))
    plan = service.plan("job-vanish", request({"source": "a.bin"}, {"source": "b.bin"}), SENT)
    original_fetch = store.fetch

    def fetch_then_lose_b(
        ref: ObjectRef, start: int, length: int, etag: str | None = None
    ) -> bytes:
        if ref.key == "b.bin":
            store.objects.pop(ref, None)
        return original_fetch(ref, start, length, etag)

    store.fetch = fetch_then_lose_b  # type: ignore[method-assign]
    with pytest.raises(PermanentError) as caught:
        service.build(plan)
    assert caught.value.code == ErrorCode.SOURCE_NOT_FOUND
    assert not store.uploads
    assert plan.archive not in store.objects


def test_source_changing_size_mid_job_is_retried(
    store: MemoryObjectStore, make_service: ServiceFactory
) -> None:
    put(store, "a.bin", b"12345")
    service = make_service()
    plan = service.plan("job-grow", request({"source": "a.bin"}), SENT)
    original_stat = store.stat

    def stat_then_grow(ref: ObjectRef):  # type: ignore[no-untyped-def]
        info = original_stat(ref)
        put(store, "a.bin", b"1234567890")
        return info

    store.stat = stat_then_grow  # type: ignore[method-assign]
    with pytest.raises(TransientError, match="changed"):
        service.build(plan)
    assert plan.archive not in store.objects


def test_progress_reports_files_and_bytes(
    store: MemoryObjectStore, make_service: ServiceFactory
) -> None:
    put(store, "a", b"aa")
    put(store, "b", b"bbb")
    service = make_service()
    seen: list[Progress] = []
    plan = service.plan("job-p", request({"source": "a"}, {"source": "b"}), SENT)
    service.build(plan, seen.append)
    # Totals are what is sized so far (sizing runs alongside), exact by the end.
    assert [(p.files_done, p.bytes_done) for p in seen] == [(1, 2), (2, 5)]
    assert seen[0].bytes_total in (2, 5)
    assert seen[-1] == Progress(files_done=2, files_total=2, bytes_done=5, bytes_total=5)


def test_build_to_a_local_file(
    store: MemoryObjectStore, make_service: ServiceFactory, tmp_path: object
) -> None:
    from pathlib import Path

    put(store, "a.txt", b"local")
    service = make_service()
    plan = service.plan("job-f", request({"source": "a.txt"}), SENT)
    target = Path(str(tmp_path)) / "out.zip"
    with target.open("w+b") as file:
        result = service.build_to_file(plan, file)
    data = target.read_bytes()
    assert contents(data) == {"a.txt": b"local"}
    assert result.crc32 == zlib.crc32(data)
    check_layout(data)


def test_url_uses_base_url_or_presigns(make_service: ServiceFactory) -> None:

    ref = ObjectRef(DESTINATION, "j/download-2026-11-27.zip")
    assert make_service().url(ref) == "https://cdn.example.com/j/download-2026-11-27.zip"
    presigning = make_service(links=link_options(base_url=None, presign_ttl=60))
    assert presigning.url(ref) == "memory://zip-storage/j/download-2026-11-27.zip?expires_in=60"


def hold_probe_until(store: MemoryObjectStore, key: str, event: threading.Event) -> list[bool]:
    """The probe of `key` waits (at most 5 s) for `event`; returns whether it came in time."""
    came: list[bool] = []
    original_probe = store.probe

    def probe(ref: ObjectRef, length: int):  # type: ignore[no-untyped-def]
        if ref.key == key:
            came.append(event.wait(timeout=5))
        return original_probe(ref, length)

    store.probe = probe  # type: ignore[method-assign]
    return came


def test_writing_begins_before_the_last_source_is_sized(
    store: MemoryObjectStore, make_service: ServiceFactory
) -> None:
    put(store, "first.bin", b"1" * 1000)
    put(store, "last.bin", b"2" * 1000)
    first_written = threading.Event()
    came = hold_probe_until(store, "last.bin", first_written)
    service = make_service()
    plan = service.plan(
        "job-overlap", request({"source": "first.bin"}, {"source": "last.bin"}), SENT
    )
    service.build(plan, lambda progress: progress.files_done and first_written.set())
    assert came == [True]  # sized while the first entry was already written
    assert contents(store.objects[plan.archive]) == {
        "first.bin": b"1" * 1000,
        "last.bin": b"2" * 1000,
    }


def test_a_missing_source_sized_after_writing_began_aborts_and_names_them_all(
    store: MemoryObjectStore, make_service: ServiceFactory
) -> None:
    put(store, "big.bin", random.Random(5).randbytes(12 * MIB))
    writing = threading.Event()
    hold_probe_until(store, "gone-1.png", writing)
    service = make_service(build=build_options(part_size=5 * MIB))
    plan = service.plan(
        "job-late-missing",
        request({"source": "big.bin"}, {"source": "gone-1.png"}, {"source": "gone-2.png"}),
        SENT,
    )
    uploads_seen: list[int] = []

    def progress(_: Progress) -> None:
        uploads_seen.append(sum(up.ref == plan.archive for up in store.uploads.values()))
        if uploads_seen[-1]:
            writing.set()  # gone-1 is sized only once the upload has begun

    with pytest.raises(PermanentError) as caught:
        service.build(plan, progress)
    assert caught.value.code == ErrorCode.SOURCE_NOT_FOUND
    assert caught.value.sources == [
        "s3://source-images/gone-1.png",
        "s3://source-images/gone-2.png",
    ]
    assert max(uploads_seen) == 1  # the upload had begun
    assert not store.uploads  # and was aborted
    assert plan.archive not in store.objects
