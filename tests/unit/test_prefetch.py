import random
import threading
import time
from collections.abc import Iterator, Mapping, Sequence

import pytest

from archiver.adapters.memory import MemoryObjectStore
from archiver.app.prefetch import ByteBudget, Chunk, Prefetcher, entry_chunks
from archiver.domain.errors import ObjectUnavailable
from archiver.domain.job import ObjectRef
from archiver.domain.plan import EntryMethod, PlannedEntry
from archiver.domain.ports import ObjectInfo

KIB = 1024


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
    with Prefetcher(store, chunks_of(entries, infos, 64 * KIB), store.budget, 8) as fetched:
        for chunk, data in fetched:
            order.append((chunk.entry, chunk.start))
            received[chunk.entry] += data
            store.consumed(len(data))
    assert order == sorted(order)
    for number, entry in enumerate(entries):
        assert received[number] == store.objects[entry.source]
    assert 0 < store.most_unconsumed <= 256 * KIB
    assert store.budget.available == store.budget.capacity  # everything given back
    assert store.most_concurrent > 1


def test_a_failed_fetch_gives_its_reservations_back() -> None:
    store, entries, infos = setup([50 * KIB] * 10, budget_bytes=200 * KIB)
    del store.objects[entries[3].source]
    with (
        pytest.raises(ObjectUnavailable),
        Prefetcher(store, chunks_of(entries, infos, 64 * KIB), store.budget, 4) as fetched,
    ):
        for _ in fetched:
            pass
    deadline = time.monotonic() + 5
    while store.budget.available != store.budget.capacity and time.monotonic() < deadline:
        time.sleep(0.01)  # fetches already running return their share when they end
    assert store.budget.available == store.budget.capacity


def test_two_jobs_share_one_budget_without_deadlock() -> None:
    budget = ByteBudget(100 * KIB)
    results = []

    def job(seed: int) -> None:
        store, entries, infos = setup([40 * KIB] * 20, budget_bytes=1)
        store.budget = budget
        total = 0
        with Prefetcher(store, chunks_of(entries, infos, 32 * KIB), budget, 4) as fetched:
            for _, data in fetched:
                total += len(data)
        results.append(total)

    threads = [threading.Thread(target=job, args=(seed,)) for seed in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert results == [20 * 40 * KIB] * 2
    assert budget.available == budget.capacity


def fetch_ahead(
    count: int, fetch_pause: float, write_pause: float, one_at_a_time: bool = False
) -> tuple[ObservedStore, list[int]]:
    """32 KiB chunks, a 1 MiB budget, fetching two chunks ahead to begin with; returns the
    store and how far ahead the prefetcher fetched after each chunk."""
    store, entries, infos = setup([32 * KIB] * count, budget_bytes=1024 * KIB)
    store.fetch_pause = fetch_pause
    store.one_at_a_time = one_at_a_time
    chunks = chunks_of(entries, infos, 32 * KIB)
    depths = []
    with Prefetcher(store, chunks, store.budget, 8, depth=64 * KIB) as fetched:
        for _, data in fetched:
            if write_pause:
                time.sleep(write_pause)
            store.consumed(len(data))
            depths.append(fetched.depth)
    return store, depths


def test_a_slow_writer_keeps_the_fetch_ahead_shallow() -> None:
    """The budget would allow 1 MiB ahead, but the writer never waits: it stays at `depth`."""
    store, depths = fetch_ahead(40, fetch_pause=0.0, write_pause=0.01)  # writing is the slow side
    assert store.most_unconsumed <= 64 * KIB + 32 * KIB  # the window, plus the chunk in hand
    assert set(depths) == {64 * KIB}


def test_a_writer_kept_waiting_fetches_further_ahead() -> None:
    """Every request in flight adds throughput (as on S3): the deeper window pays and stays."""
    store, depths = fetch_ahead(200, fetch_pause=0.015, write_pause=0.0)  # room for two probes
    assert max(depths) >= 128 * KIB  # a probe one chunk deeper paid, so the next one began
    assert store.most_concurrent > 2  # started at two chunks ahead


def test_an_endpoint_serving_one_request_at_a_time_is_not_fetched_further_ahead() -> None:
    """The writer waits, but a deeper window would only hold bytes: it returns to `depth`."""
    _, depths = fetch_ahead(120, fetch_pause=0.005, write_pause=0.0, one_at_a_time=True)
    assert 96 * KIB in depths  # it tried one chunk deeper...
    assert max(depths) == 96 * KIB  # ...which did not pay, or a second probe would follow


def test_the_writer_waits_for_its_own_side_with_nothing_fetched_beyond_the_window() -> None:
    """`pace` (an upload slot) is waited for before the next chunk is taken: meanwhile that
    chunk still counts as fetched ahead, so no further one is fetched."""
    store, entries, infos = setup([32 * KIB] * 20, budget_bytes=1024 * KIB)
    store.fetch_pause = 0.001
    ahead_while_waiting = []

    def pace() -> None:
        time.sleep(0.005)  # the fetches in flight end meanwhile
        ahead_while_waiting.append(store.unconsumed)

    chunks = chunks_of(entries, infos, 32 * KIB)
    with Prefetcher(store, chunks, store.budget, 8, depth=64 * KIB, pace=pace) as fetched:
        for _, data in fetched:
            store.consumed(len(data))
    assert len(ahead_while_waiting) == 19  # before every chunk but the first
    assert max(ahead_while_waiting) == 64 * KIB  # the window: two chunks, none in hand
