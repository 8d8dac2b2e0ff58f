import threading
import time

import pytest

from archiver.adapters.memory import MemoryObjectStore
from archiver.app.engine.budget import RANGE_BYTES, ByteBudget
from archiver.app.engine.sizing import SIZING_AHEAD, Sizing
from archiver.app.engine.transfer import Transfer
from archiver.domain.errors import JobCancelled, ObjectUnavailable
from archiver.domain.job import FileSpec, JobRequest, ObjectRef
from archiver.domain.plan import ArchivePolicy, MissingFiles, plan_archive
from archiver.domain.policy import Admitted, SourceCheck, admit
from tests.support import KIB, all_returned
from tests.unit.conftest import DESTINATION, SENT, SOURCE


def test_closing_mid_sizing_gives_every_kept_byte_back() -> None:
    """Probes still running when the job stops keep nothing: the shared budget comes back."""
    store = MemoryObjectStore()
    store.create_bucket(SOURCE)
    release = threading.Event()
    original_probe = store.probe

    def slow_probe(ref: ObjectRef, length: int):  # type: ignore[no-untyped-def]
        release.wait(timeout=5)
        return original_probe(ref, length)

    store.probe = slow_probe  # type: ignore[method-assign]
    keys = [f"{number}.bin" for number in range(8)]
    for key in keys:
        store.add(ObjectRef(SOURCE, key), b"x" * 100 * KIB)
    request = JobRequest(files=[FileSpec(source=key) for key in keys])
    plan = plan_archive("job-close", request, SENT, ArchivePolicy(SOURCE, DESTINATION))
    budget = ByteBudget(16 * 1024 * KIB)
    admitted: list[SourceCheck] = []

    def admit(check: SourceCheck) -> Admitted:
        admitted.append(check)
        return Admitted(plan, [])

    sizing = Sizing(store, plan, Transfer(budget, 4, RANGE_BYTES), admit)
    time.sleep(0.05)  # four probes are running, holding their reservations
    assert not all_returned(budget)
    sizing.close()
    release.set()
    deadline = time.monotonic() + 5
    while not all_returned(budget) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert all_returned(budget)
    assert not admitted  # the policy never ran on a job that stopped


def test_a_shutdown_ends_the_wait_for_the_last_sources() -> None:
    """The writer waits for every size before it finishes; a stuck size check does not keep
    a worker that was asked to stop."""
    store = MemoryObjectStore()
    store.create_bucket(SOURCE)
    release = threading.Event()
    original_stat = store.stat

    def stuck_stat(ref: ObjectRef):  # type: ignore[no-untyped-def]
        release.wait(timeout=10)
        return original_stat(ref)

    store.stat = stuck_stat  # type: ignore[method-assign]
    store.add(ObjectRef(SOURCE, "a.bin"), b"x" * KIB)
    request = JobRequest(files=[FileSpec(source="a.bin")])
    plan = plan_archive("job-stop", request, SENT, ArchivePolicy(SOURCE, DESTINATION))
    cancel = threading.Event()
    no_budget = ByteBudget(0)  # nothing may be kept: the source is sized by a HEAD (stat)
    sizing = Sizing(
        store, plan, Transfer(no_budget, 16, RANGE_BYTES), lambda _: Admitted(plan, []), cancel
    )
    cancel.set()
    try:
        with pytest.raises(JobCancelled, match="did not finish"):
            sizing.settle()
    finally:
        release.set()
        sizing.close()


def test_a_missing_source_is_kept_compact_until_the_job_ends() -> None:
    """Every missing source's outcome is kept until the policy runs: it must not hold the
    raised error's traceback or cause (an adapter's response and frames, ~20 KiB each on S3),
    or 30,000 missing files cost 700 MiB."""
    store = MemoryObjectStore()
    store.create_bucket(SOURCE)
    store.add(ObjectRef(SOURCE, "here.txt"), b"here")
    keys = [f"gone/{number}.bin" for number in range(50)]
    request = JobRequest(files=[FileSpec(source=key) for key in [*keys, "here.txt"]])
    policy = ArchivePolicy(SOURCE, DESTINATION, missing_files=MissingFiles.SKIP)
    plan = plan_archive("job-missing", request, SENT, policy)
    transfer = Transfer(ByteBudget(16 * 1024 * KIB), 4, RANGE_BYTES)
    sizing = Sizing(store, plan, transfer, lambda check: admit(plan, check, policy))
    try:
        sizing.settle()
        outcomes = [sizing.outcome(ObjectRef(SOURCE, key)) for key in keys]
    finally:
        sizing.close()
    assert all(isinstance(outcome, ObjectUnavailable) for outcome in outcomes)
    assert all(outcome.__traceback__ is None for outcome in outcomes)
    assert all(outcome.__cause__ is None and outcome.__context__ is None for outcome in outcomes)


def test_a_long_job_queues_a_few_size_checks_at_a_time_and_keeps_one_outcome_per_source() -> None:
    """A job's length must not cost queued requests (a future each): 3,000 sources, 4 threads,
    never more than SIZING_AHEAD per thread waiting; every outcome kept, reported in job order."""
    store = MemoryObjectStore()
    store.create_bucket(SOURCE)
    keys = [f"gone/{number:05d}.bin" for number in range(3_000)]
    for key in keys[::500]:
        store.add(ObjectRef(SOURCE, key), b"here")
    request = JobRequest(files=[FileSpec(source=key) for key in keys])
    policy = ArchivePolicy(SOURCE, DESTINATION, missing_files=MissingFiles.SKIP, max_files=3_000)
    plan = plan_archive("job-long", request, SENT, policy)
    waiting: list[int] = []
    sizings: list[Sizing] = []
    original_probe = store.probe

    def probe(ref: ObjectRef, length: int):  # type: ignore[no-untyped-def]
        waiting.append(sizings[0].executor.waiting if sizings else 0)
        return original_probe(ref, length)

    store.probe = probe  # type: ignore[method-assign]
    transfer = Transfer(ByteBudget(16 * 1024 * KIB), 4, RANGE_BYTES)
    sizing = Sizing(store, plan, transfer, lambda check: admit(plan, check, policy))
    sizings.append(sizing)
    try:
        admitted = sizing.settle()
        assert sizing.totals() == (6, 6 * 4)
    finally:
        sizing.close()
    assert len(waiting) == 3_000  # each source sized once, by a ranged GET (the budget has room)
    assert max(waiting) <= SIZING_AHEAD * 4
    gone = [key for number, key in enumerate(keys) if number % 500]
    assert admitted.missing == [f"s3://{SOURCE}/{key}" for key in gone]  # in job order
    assert [entry.source.key for entry in admitted.plan.entries] == keys[::500]
