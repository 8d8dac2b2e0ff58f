"""The memory budget counts parts at the size they really are: as parts grow with the archive,
fewer go out at once and the rest of their memory comes out of the prefetch budget; a job
whose parts do not fit its share even one at a time is refused, naming the budget."""

import threading
import time
from datetime import UTC, datetime

import pytest

from archiver.adapters.memory import MemoryObjectStore, SyntheticBody
from archiver.adapters.memory_secrets import MemorySecretStore
from archiver.app.engine.budget import RANGE_BYTES, ByteBudget, JobMemory
from archiver.app.engine.multipart_sink import MultipartSink
from archiver.app.jobs.service import ArchiveService
from archiver.domain.errors import ErrorCode, PermanentError
from archiver.domain.job import JobRequest, ObjectRef
from archiver.domain.memory import least_share, parts_in_flight, prefetch_bytes, sink_bytes
from archiver.domain.multipart import Estimate, part_size_for
from archiver.domain.plan import ArchivePolicy
from archiver.domain.ports import Buffer, ObjectHeaders
from tests.support import MIB, build_options, link_options

TARGET = ObjectRef("zip-storage", "job/archive.zip")
GIB = 1024 * MIB


def test_parts_in_flight_shrink_as_parts_grow_and_stop_at_one() -> None:
    share = 128 * MIB
    assert parts_in_flight(share, 8 * MIB, 4, RANGE_BYTES) == 4  # the defaults: 64 MiB parts
    assert parts_in_flight(share, 16 * MIB, 4, RANGE_BYTES) == 3  # 112 MiB of 128
    assert parts_in_flight(share, 22 * MIB, 4, RANGE_BYTES) == 1
    assert parts_in_flight(share, 23 * MIB, 4, RANGE_BYTES) == 0  # 5 x 23 + 16 > 128
    assert least_share(22 * MIB, RANGE_BYTES) == 126 * MIB
    # Two jobs in 128 MiB run two parts at a time each, and keep 32 MiB to fetch ahead.
    assert parts_in_flight(64 * MIB, 8 * MIB, 4, RANGE_BYTES) == 2
    assert prefetch_bytes(128 * MIB, 8 * MIB, 4, 2, RANGE_BYTES) == 32 * MIB


class SlowUploads(MemoryObjectStore):
    """Counts the part uploads under way at once (each takes 20 ms)."""

    def __init__(self) -> None:
        super().__init__()
        self.running = 0
        self.most = 0
        self._count = threading.Lock()

    def start_upload(self, ref: ObjectRef, headers: ObjectHeaders):  # type: ignore[no-untyped-def]
        upload = super().start_upload(ref, headers)
        store, upload_part = self, upload.upload_part

        def counted(number: int, data: Buffer) -> None:
            with store._count:
                store.running += 1
                store.most = max(store.most, store.running)
            time.sleep(0.02)
            upload_part(number, data)
            with store._count:
                store.running -= 1

        upload.upload_part = counted  # type: ignore[method-assign]
        return upload


ESTIMATE = Estimate(upload_bytes=100 * GIB, copy_parts=0)  # parts of 12 MiB


def grown_sink(store: MemoryObjectStore, budget: ByteBudget) -> MultipartSink:
    """5 MiB parts at least, 4 at once, sized as 100 GiB: parts of 12 MiB, of which 3 fit
    the 100 MiB share at once ((3 + 1 + 3) x 12 + 16 <= 100)."""
    store.create_bucket(TARGET.bucket)
    assert part_size_for(ESTIMATE.upload_bytes, 5 * MIB) == 12 * MIB
    return MultipartSink(
        store,
        TARGET,
        ObjectHeaders(),
        5 * MIB,
        4,
        lambda wait: ESTIMATE,
        lambda: None,
        copy_concurrency=2,
        memory=JobMemory(budget, 100 * MIB, 5 * MIB, 4),
    )


def test_grown_parts_go_fewer_at_once_and_take_their_memory_from_the_prefetch_budget() -> None:
    store = SlowUploads()
    budget = ByteBudget(60 * MIB)
    sink = grown_sink(store, budget)
    chunk = bytes(MIB)
    for _ in range(12 * 9):  # nine parts of 12 MiB
        sink.wait_for_room()
        sink.write(chunk)
    taken = sink_bytes(12 * MIB, 3) - sink_bytes(5 * MIB, 4)
    assert budget.try_acquire(60 * MIB - taken)  # the rest of the prefetch budget is free
    assert not budget.try_acquire(1)
    budget.release(60 * MIB - taken)
    sink.close()
    assert store.most == 3
    assert budget.try_acquire(60 * MIB)  # all given back once the upload ended


def test_a_job_whose_parts_cannot_fit_its_share_is_refused_naming_the_budget() -> None:
    """Two sources of 50 GiB (generated): parts of 12 MiB, 76 MiB for one at a time; the
    share is 64 MiB. Refused when sizing ends, at the first part: nothing is left behind."""
    store = MemoryObjectStore()
    store.add(ObjectRef("source-images", "a.bin"), SyntheticBody(50 * GIB))
    store.add(ObjectRef("source-images", "b.bin"), SyntheticBody(50 * GIB))
    store.create_bucket("zip-storage")
    policy = ArchivePolicy("source-images", "zip-storage")
    options = build_options(memory_budget=64 * MIB, part_size=5 * MIB, worker_concurrency=1)
    service = ArchiveService(store, MemorySecretStore(), policy, options, link_options())
    request = JobRequest.model_validate({"files": [{"source": "a.bin"}, {"source": "b.bin"}]})
    plan = service.plan("job-1", request, datetime(2026, 12, 7, tzinfo=UTC))
    with pytest.raises(PermanentError) as refused:
        service.build(plan)
    assert refused.value.code == ErrorCode.ARCHIVE_TOO_LARGE
    assert "parts of 12 MiB" in refused.value.message
    assert "76 MiB" in refused.value.message
    assert "MEMORY_BUDGET_MB gives each job 64 MiB" in refused.value.message
    assert not store.uploads  # aborted
    assert store.uploaded_bytes <= 5 * MIB  # at most the part begun before sizing ended


def test_an_archive_that_ends_as_one_put_gives_its_grown_parts_memory_back() -> None:
    """Sized at 100 GiB (deflated sources count at their size), written in a few bytes: the
    part begun grew, the archive is one PutObject, and the share it took is given back."""
    store = MemoryObjectStore()
    budget = ByteBudget(60 * MIB)
    sink = grown_sink(store, budget)
    sink.write(b"tiny")
    assert not budget.try_acquire(60 * MIB)  # the grown part's memory is taken
    sink.close()
    assert store.objects[TARGET] == b"tiny"
    assert budget.try_acquire(60 * MIB)
