import random
import threading
import zlib

import pytest

from archiver.adapters.memory import MemoryMultipartUpload, MemoryObjectStore
from archiver.app.engine import multipart_sink as sink_module
from archiver.app.engine import parts as parts_module
from archiver.app.engine.multipart_sink import MultipartSink
from archiver.domain.errors import JobCancelled, ObjectUnavailable, TransientError, Unavailable
from archiver.domain.job import ObjectRef
from archiver.domain.multipart import Estimate, part_size_for
from archiver.domain.ports import ObjectHeaders
from tests.support import MIB, wait_until

TARGET = ObjectRef("zip-storage", "job/archive.zip")


def make_sink(store: MemoryObjectStore, part: int = 5 * MIB) -> MultipartSink:
    store.create_bucket(TARGET.bucket)
    return MultipartSink(
        store, TARGET, ObjectHeaders(), part, 2, lambda wait: None, lambda: None, copy_concurrency=2
    )


def test_small_archive_is_one_put_with_its_hash() -> None:
    store = MemoryObjectStore()
    sink = make_sink(store)
    sink.write(b"hello ")
    sink.write(b"world")
    result = sink.close()
    assert store.objects[TARGET] == b"hello world"
    assert result.crc32 == zlib.crc32(b"hello world")
    assert result.size_bytes == 11
    assert not store.uploads


def test_patching_a_held_region_across_parts() -> None:
    store = MemoryObjectStore()
    sink = make_sink(store)
    data = bytearray(random.Random(1).randbytes(13 * MIB))
    sink.write(data[: 5 * MIB - 10])
    sink.hold(sink.tell())
    sink.write(b"\x00" * 20)  # a header straddling parts 1 and 2, patched below
    sink.write(data[5 * MIB + 10 :])
    sink.seek(5 * MIB - 10)
    sink.write(data[5 * MIB - 10 : 5 * MIB + 10])
    sink.seek(0, 2)
    sink.unhold(5 * MIB - 10)
    result = sink.close()
    assert store.objects[TARGET] == bytes(data)
    assert result.crc32 == zlib.crc32(data)


def test_parts_past_a_held_header_go_out_at_once_and_the_crc_still_holds() -> None:
    store = MemoryObjectStore()
    sink = make_sink(store)
    data = bytearray(random.Random(2).randbytes(40 * MIB))
    sink.write(b"H" * 100)
    sink.hold(0)
    sink.write(data[100 : 30 * MIB])
    [upload] = store.uploads.values()
    # The full parts behind the held header go out without waiting for its patch.
    wait_until(lambda: sorted(upload.parts) == [2, 3, 4, 5, 6], timeout=10)
    sink.write(data[30 * MIB :])
    sink.seek(0)
    sink.write(data[:100])
    sink.seek(0, 2)
    sink.unhold(0)
    result = sink.close()
    assert store.objects[TARGET] == bytes(data)
    assert result.crc32 == zlib.crc32(data)  # the parts' CRCs, combined in order
    assert result.size_bytes == len(data)


def test_two_held_headers_each_keep_their_own_part_until_patched() -> None:
    """Copied entries' headers wait for their copies while the writer goes on: each held
    header keeps only the part it is in, and is let go on its own."""
    store = MemoryObjectStore()
    sink = make_sink(store)
    data = bytearray(random.Random(3).randbytes(16 * MIB))
    sink.write(b"A" * 100)
    sink.hold(0)  # in part 1
    sink.write(data[100 : 6 * MIB])
    sink.hold(6 * MIB)  # in part 2
    sink.write(b"B" * 100)
    sink.write(data[6 * MIB + 100 :])
    [upload] = store.uploads.values()
    wait_until(lambda: sorted(upload.parts) == [3], timeout=10)
    sink.seek(6 * MIB)
    sink.write(data[6 * MIB : 6 * MIB + 100])
    sink.seek(0, 2)
    sink.unhold(6 * MIB)
    wait_until(lambda: sorted(upload.parts) == [2, 3], timeout=10)  # part 1 still held
    sink.seek(0)
    sink.write(data[:100])
    sink.seek(0, 2)
    sink.unhold(0)
    result = sink.close()
    assert store.objects[TARGET] == bytes(data)
    assert result.crc32 == zlib.crc32(data)


def test_cannot_patch_what_was_already_uploaded() -> None:
    store = MemoryObjectStore()
    sink = make_sink(store)
    sink.write(b"x" * 11 * MIB)
    sink.seek(0)
    with pytest.raises(RuntimeError, match="already sent"):
        sink.write(b"y")
    sink.abort()


def test_abort_leaves_no_upload_and_ignores_later_writes() -> None:
    store = MemoryObjectStore()
    sink = make_sink(store)
    sink.write(b"x" * 12 * MIB)
    assert store.uploads
    sink.abort()
    assert sink.write(b"late central directory") == 22
    assert not store.uploads
    assert TARGET not in store.objects


def test_destination_failures_are_transient() -> None:
    store = MemoryObjectStore()
    sink = make_sink(store)
    store.faults[TARGET] = ObjectUnavailable(str(TARGET), Unavailable.ACCESS_DENIED, "AccessDenied")
    sink.write(b"tiny")
    with pytest.raises(TransientError, match="AccessDenied"):
        sink.close()


def test_part_upload_failure_surfaces_in_the_writer() -> None:
    store = MemoryObjectStore()
    sink = make_sink(store)
    sink.write(b"x" * 6 * MIB)  # starts the upload, part 1 in flight
    [upload] = store.uploads.values()
    store.uploads.clear()  # the upload vanishes: the next parts fail

    def write_then_close() -> None:
        for _ in range(10):
            sink.write(b"x" * 5 * MIB)
        sink.close()

    with pytest.raises(TransientError, match="no such upload"):
        write_then_close()
    sink.abort()
    assert upload.ref == TARGET
    assert TARGET not in store.objects  # nothing completed
    assert not store.uploads  # and nothing left open


def test_the_writer_waits_for_an_upload_slot_before_filling_another_part(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = MemoryObjectStore()
    sink = make_sink(store)  # two parts in flight at most
    gate = threading.Event()
    upload_part = MemoryMultipartUpload.upload_part

    def held_back(upload: MemoryMultipartUpload, number: int, data: bytes) -> None:
        gate.wait(10)
        upload_part(upload, number, data)

    monkeypatch.setattr(MemoryMultipartUpload, "upload_part", held_back)
    data = random.Random(4).randbytes(10 * MIB + 1)
    sink.write(data)  # parts 1 and 2 full and in flight
    waiter = threading.Thread(target=sink.wait_for_room)
    waiter.start()
    waiter.join(0.2)
    assert waiter.is_alive()  # neither part is done: no slot
    gate.set()
    waiter.join(5)
    assert not waiter.is_alive()
    sink.close()
    assert store.objects[TARGET] == data


@pytest.mark.parametrize(
    ("expected", "minimum", "part"),
    [
        (0, 8 * MIB, 8 * MIB),
        (10 * 1024 * MIB, 8 * MIB, 8 * MIB),
        (100 * 1024 * MIB, 8 * MIB, 12 * MIB),
        (5 * 1024**4, 8 * MIB, 577 * MIB),
    ],
)
def test_part_size_fits_ten_thousand_parts(expected: int, minimum: int, part: int) -> None:
    size = part_size_for(expected, minimum)
    assert size == part
    assert size * 10_000 >= expected


def test_parts_grow_once_the_expected_size_is_known(monkeypatch: pytest.MonkeyPatch) -> None:
    """Writing starts before the sources are all sized: the first parts are the minimum, then
    each new part takes what fits the rest into the parts left (here 6 parts in all)."""
    monkeypatch.setattr(parts_module, "MAX_PARTS", 6)
    store = MemoryObjectStore()
    known: list[Estimate | None] = [None]
    asked: list[bool] = []

    def expected_size(wait: bool) -> Estimate | None:
        asked.append(wait)
        return known[0]

    store.create_bucket(TARGET.bucket)
    sink = MultipartSink(
        store, TARGET, ObjectHeaders(), 5 * MIB, 2, expected_size, lambda: None, copy_concurrency=2
    )
    data = random.Random(7).randbytes(48 * MIB)
    sink.write(data[: 12 * MIB])  # parts 1-3 begun at 5 MiB, the size still unknown
    known[0] = Estimate(len(data), 0)
    sink.write(data[12 * MIB :])
    [upload] = store.uploads.values()
    sink.close()
    sizes = [len(upload.parts[number]) for number in sorted(upload.parts)]
    # 33 MiB left after part 3, with 10 % and 1 MiB of slack, in the 3 parts left: 13 MiB.
    assert sizes == [5 * MIB] * 3 + [13 * MIB, 12 * MIB, 8 * MIB]
    assert store.objects[TARGET] == data
    assert not any(asked)  # never had to wait: the size came before part EARLY_PARTS


def test_past_the_early_parts_the_sink_waits_for_the_size(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(parts_module, "EARLY_PARTS", 2)
    store = MemoryObjectStore()
    asked: list[bool] = []

    def expected_size(wait: bool) -> Estimate | None:
        asked.append(wait)
        return Estimate(20 * MIB, 0) if wait else None

    store.create_bucket(TARGET.bucket)
    sink = MultipartSink(
        store, TARGET, ObjectHeaders(), 5 * MIB, 2, expected_size, lambda: None, copy_concurrency=2
    )
    data = random.Random(8).randbytes(20 * MIB)
    sink.write(data)
    sink.close()
    assert asked[:3] == [False, False, True]
    assert store.objects[TARGET] == data


def test_parts_leave_room_for_the_copies_to_come_and_count_only_uploaded_bytes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Copied bytes need no uploaded parts, and copies need parts of their own: 6 parts in all,
    2 kept for a copy, so 30 MiB to upload start in parts of 9 MiB."""
    monkeypatch.setattr(parts_module, "MAX_PARTS", 6)
    store = MemoryObjectStore()
    store.create_bucket(TARGET.bucket)
    source = ObjectRef(TARGET.bucket, "video.mp4")
    video = random.Random(9).randbytes(12 * MIB)
    store.add(source, video)
    estimate = Estimate(upload_bytes=30 * MIB, copy_parts=2)
    sink = MultipartSink(
        store,
        TARGET,
        ObjectHeaders(),
        5 * MIB,
        2,
        lambda wait: estimate,
        lambda: None,
        copy_concurrency=2,
    )
    before, after = random.Random(10).randbytes(20 * MIB), random.Random(11).randbytes(9 * MIB)
    sink.write(before)
    top_up = sink.top_up()
    assert top_up == 3 * MIB  # the part in progress holds 2 MiB
    sink.write(video[:top_up])
    rest = video[top_up:]
    sink.copy(source, top_up, len(rest), None, zlib.crc32(rest))
    sink.write(after)
    [upload] = [upload for upload in store.uploads.values() if upload.ref == TARGET]
    sink.close()
    sizes = [len(upload.parts[number]) for number in sorted(upload.parts)]
    assert sizes == [9 * MIB, 9 * MIB, 5 * MIB, 9 * MIB, 5 * MIB, 4 * MIB]
    assert store.objects[TARGET] == before + video + after


def test_a_shutdown_is_seen_between_the_parts_of_one_copy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(
        sink_module, "copy_parts", lambda start, length: [(start + n, 1) for n in range(length)]
    )
    store = MemoryObjectStore(min_part_size=1)
    store.create_bucket(TARGET.bucket)
    source = ObjectRef(TARGET.bucket, "video.mp4")
    store.add(source, b"0123456789")
    checks: list[int] = []

    def between() -> None:
        checks.append(1)
        if len(checks) == 4:
            raise JobCancelled("shutting down")

    sink = MultipartSink(
        store, TARGET, ObjectHeaders(), 5 * MIB, 2, lambda wait: None, between, copy_concurrency=2
    )
    sink.write(bytes(5 * MIB))
    with pytest.raises(JobCancelled):
        sink.copy(source, 0, 10, None, zlib.crc32(b"0123456789"))
    sink.abort()
    assert len(checks) == 4  # parts 1-3 submitted, then the shutdown: no more
    assert not store.uploads
    assert TARGET not in store.objects
