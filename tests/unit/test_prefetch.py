import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager

import pytest

from archiver.adapters.memory import MemoryObjectStore
from archiver.app.engine.budget import ByteBudget, FirstChunks
from archiver.app.engine.chunks import entry_chunks
from archiver.app.engine.fetching import Prefetcher
from archiver.app.engine.pool import JobOrderPool
from archiver.app.engine.transfer import Chunk
from archiver.domain.errors import ObjectUnavailable
from archiver.domain.job import ObjectRef
from archiver.domain.plan import EntryMethod, PlannedEntry
from archiver.domain.ports import ObjectInfo
from tests.support import KIB, all_returned, wait_until


class ObservedStore(MemoryObjectStore):
    """Fetches finish in random order; records the most bytes fetched but not yet consumed."""

    def __init__(self, budget: ByteBudget) -> None:
        super().__init__()
        self.budget = budget
        self.unconsumed = 0  # fetched (or being fetched) but not yet taken by the consumer
        self.most_unconsumed = 0
        self.concurrent = 0
        self.most_concurrent = 0
        self._lock = threading.Lock()
        self._rng = random.Random(3)
        self.fetch_pause: float | None = None  # fixed; else random up to 5 ms
        self.one_at_a_time = False  # a saturated endpoint: requests wait for each other
        self._serving = threading.Lock()

    def consumed(self, amount: int) -> None:
        with self._lock:
            self.unconsumed -= amount

    def fetch(self, ref: ObjectRef, start: int, length: int, etag: str | None = None) -> bytes:
        with self._lock:
            self.concurrent += 1
            self.most_concurrent = max(self.most_concurrent, self.concurrent)
            self.unconsumed += length
            self.most_unconsumed = max(self.most_unconsumed, self.unconsumed)
            pause = self._rng.random() / 200 if self.fetch_pause is None else self.fetch_pause
        if self.one_at_a_time:
            with self._serving:
                time.sleep(pause)
        else:
            time.sleep(pause)
        try:
            return super().fetch(ref, start, length, etag)
        finally:
            with self._lock:
                self.concurrent -= 1


def chunks_of(
    entries: Sequence[PlannedEntry], infos: Mapping[ObjectRef, ObjectInfo], range_size: int
) -> Iterator[Chunk]:
    """Every entry's chunks, every source sized beforehand."""
    for index, entry in enumerate(entries):
        yield from entry_chunks(index, infos[entry.source], range_size)


def setup(sizes: list[int], budget_bytes: int) -> tuple[ObservedStore, list[PlannedEntry], dict]:  # type: ignore[type-arg]
    budget = ByteBudget(budget_bytes)
    store = ObservedStore(budget)
    entries = []
    for number, size in enumerate(sizes):
        ref = ObjectRef("bucket", f"{number}.bin")
        store.add(ref, random.Random(number).randbytes(size))
        entries.append(PlannedEntry(ref, f"{number}.bin", EntryMethod.STORED))
    infos = {entry.source: store.stat(entry.source) for entry in entries}
    return store, entries, infos


@contextmanager
def prefetcher(
    store: ObservedStore,
    chunks: Iterator[Chunk],
    budget: ByteBudget,
    threads: int,
    pace: Callable[[], None] = lambda: None,
) -> Iterator[Prefetcher]:
    """As a job wires it: its own pool (shut down after, as the sizing's close does), nothing
    probed, every source sized beforehand."""
    pool = JobOrderPool(threads, "test")
    try:
        with closing(
            Prefetcher(store, chunks, budget, FirstChunks(budget), pool, lambda: True, pace)
        ) as fetched:
            yield fetched
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def test_chunks_cover_every_byte_once_in_order() -> None:
    _, entries, infos = setup([0, 10, 25, 30], 1000)
    chunks = list(chunks_of(entries, infos, range_size=10))
    assert [(c.entry, c.start, c.length, c.last) for c in chunks] == [
        (0, 0, 0, True),
        (1, 0, 10, True),
        (2, 0, 10, False),
        (2, 10, 10, False),
        (2, 20, 5, True),
        (3, 0, 10, False),
        (3, 10, 10, False),
        (3, 20, 10, True),
    ]
    assert all(isinstance(chunk, Chunk) and chunk.etag for chunk in chunks)


def test_bytes_arrive_in_job_order_within_the_budget() -> None:
    sizes = [random.Random(n).randrange(0, 300 * KIB) for n in range(60)]
    store, entries, infos = setup(sizes, budget_bytes=256 * KIB)
    received: dict[int, bytearray] = {n: bytearray() for n in range(len(entries))}
    order = []
    with prefetcher(store, chunks_of(entries, infos, 64 * KIB), store.budget, 8) as fetched:
        for chunk, data in fetched:
            order.append((chunk.entry, chunk.start))
            received[chunk.entry] += data
            store.consumed(len(data))
    assert order == sorted(order)
    for number, entry in enumerate(entries):
        assert received[number] == store.objects[entry.source]
    assert 0 < store.most_unconsumed <= 256 * KIB
    assert all_returned(store.budget)  # everything given back
    assert store.most_concurrent > 1


def test_a_failed_fetch_gives_its_reservations_back() -> None:
    store, entries, infos = setup([50 * KIB] * 10, budget_bytes=200 * KIB)
    del store.objects[entries[3].source]
    with (
        pytest.raises(ObjectUnavailable),
        prefetcher(store, chunks_of(entries, infos, 64 * KIB), store.budget, 4) as fetched,
    ):
        for _ in fetched:
            pass
    # fetches already running return their share when they end
    wait_until(lambda: all_returned(store.budget), timeout=5)


def test_two_jobs_share_one_budget_without_deadlock() -> None:
    budget = ByteBudget(100 * KIB)
    results = []

    def job(seed: int) -> None:
        store, entries, infos = setup([40 * KIB] * 20, budget_bytes=1)
        store.budget = budget
        total = 0
        with prefetcher(store, chunks_of(entries, infos, 32 * KIB), budget, 4) as fetched:
            for _, data in fetched:
                total += len(data)
        results.append(total)

    threads = [threading.Thread(target=job, args=(seed,)) for seed in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert results == [20 * 40 * KIB] * 2
    assert all_returned(budget)


def test_a_slow_endpoint_gets_as_many_requests_as_the_threads_and_the_budget_allow() -> None:
    """On a network each request waits for its first byte: bytes in flight fill the link."""
    store, entries, infos = setup([32 * KIB] * 64, budget_bytes=512 * KIB)
    store.fetch_pause = 0.01
    with prefetcher(store, chunks_of(entries, infos, 32 * KIB), store.budget, 8) as fetched:
        for _, data in fetched:
            store.consumed(len(data))
    assert store.most_concurrent == 8  # every thread busy
    assert store.most_unconsumed <= 512 * KIB  # never past the budget


def test_the_writer_waits_for_its_own_side_with_nothing_fetched_beyond_the_budget() -> None:
    """`pace` (an upload slot) is waited for before the next chunk is taken: meanwhile that
    chunk still counts against the budget, so what is fetched ahead never passes it."""
    store, entries, infos = setup([32 * KIB] * 20, budget_bytes=128 * KIB)
    store.fetch_pause = 0.001
    ahead_while_waiting = []

    def pace() -> None:
        time.sleep(0.005)  # the fetches in flight end meanwhile
        ahead_while_waiting.append(store.unconsumed)

    chunks = chunks_of(entries, infos, 32 * KIB)
    with prefetcher(store, chunks, store.budget, 8, pace=pace) as fetched:
        for _, data in fetched:
            store.consumed(len(data))
    assert len(ahead_while_waiting) == 19  # before every chunk but the first
    assert max(ahead_while_waiting) == 128 * KIB  # the budget: four chunks, none in hand
