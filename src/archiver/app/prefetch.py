"""Fetch upcoming sources concurrently within a byte budget; hand them over strictly in order.

Every entry is cut into chunks: a small object is one GET, a large one ranged GETs of
`range_size`, all pinned to the version (ETag) that was sized. Chunks are submitted in job
order while the shared budget allows and a bounded window is not full; the writer takes them in
the same order and gives each chunk's bytes back to the budget once written. Nothing is
submitted beyond what the budget covers, so memory stays flat whatever the job's size.

The chunks may come from a feed that is still sizing the sources: while what is in flight can
keep the writer busy, the prefetcher does not wait for the next entry's size.

It fetches as far ahead as the budget allows: on a network each request waits for its first
byte and each connection is capped, so bytes in flight are what fill it, and the budget is what
bounds them. Requests run on a `JobOrderPool` keyed by entry, so the writer's next bytes go
before the size checks of later sources.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from types import TracebackType

from archiver.app.pool import JobOrderPool
from archiver.domain.job import ObjectRef
from archiver.domain.ports import Buffer, ObjectInfo, ObjectStore


@dataclass(frozen=True)
class Chunk:
    entry: int  # index in the plan's entries
    ref: ObjectRef
    start: int
    length: int
    etag: str | None
    last: bool  # the entry's final chunk
    probed: bool = False  # already read by the size check (FirstChunks)
    size: int = 0  # the whole entry's


def entry_chunks(
    index: int, info: ObjectInfo, range_size: int, probed: int | None = None
) -> Iterator[Chunk]:
    """Every byte of one entry once, in order: a probed first chunk, then ranges."""
    start = 0
    if probed is not None:
        last = probed >= info.size
        yield Chunk(index, info.ref, 0, probed, info.etag, last, probed=True, size=info.size)
        if last:
            return
        start = probed
    while True:
        length = min(range_size, info.size - start)
        last = start + length >= info.size
        yield Chunk(index, info.ref, start, length, info.etag, last, size=info.size)
        if last:
            return
        start += length


class ByteBudget:
    """Bytes that may sit fetched but unwritten, shared by every job of the process."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._available = capacity
        self._changed = threading.Condition()

    @property
    def available(self) -> int:
        return self._available

    def try_acquire(self, amount: int) -> bool:
        with self._changed:
            if amount > self._available:
                return False
            self._available -= amount
            return True

    def force_acquire(self, amount: int) -> None:
        """Take `amount` even past the capacity (for a job that has nothing else in flight)."""
        with self._changed:
            self._available -= min(amount, self.capacity)

    def release(self, amount: int) -> None:
        with self._changed:
            self._available = min(self.capacity, self._available + min(amount, self.capacity))
            self._changed.notify_all()


class FirstChunks:
    """Bytes the size check already read, kept for the writer with their share of the budget."""

    def __init__(self, budget: ByteBudget) -> None:
        self._budget = budget
        self._data: dict[ObjectRef, Buffer] = {}
        self._held = 0
        self._closed = False
        self._lock = threading.Lock()

    def reserve(self, amount: int, cap: int) -> bool:
        with self._lock:
            if self._closed or self._held + amount > cap:
                return False
            if not self._budget.try_acquire(amount):
                return False
            self._held += amount
            return True

    def unreserve(self, amount: int) -> None:
        with self._lock:
            self._held -= amount
        self._budget.release(amount)

    def keep(self, ref: ObjectRef, data: Buffer, reserved: int) -> None:
        with self._lock:
            closed = self._closed
            if not closed:
                self._data[ref] = data
        self.unreserve(reserved if closed else reserved - len(data))

    def size_of(self, ref: ObjectRef) -> int | None:
        with self._lock:
            data = self._data.get(ref)
            return None if data is None else len(data)

    def take(self, ref: ObjectRef) -> Buffer | None:
        """Hand the bytes, and their reservation, to the caller."""
        with self._lock:
            data = self._data.pop(ref, None)
            if data is not None:
                self._held -= len(data)
            return data

    def release_all(self) -> None:
        """Give every kept byte back; what a size check still running keeps is given back too."""
        with self._lock:
            self._closed = True
            total = sum(len(data) for data in self._data.values())
            self._data.clear()
            self._held -= total
        if total:
            self._budget.release(total)


def _releaser(budget: ByteBudget, amount: int) -> Callable[[Future[Buffer]], None]:
    return lambda _: budget.release(amount)


class Prefetcher:
    """Fetches ahead of the writer as far as the byte budget allows, in job order."""

    def __init__(
        self,
        store: ObjectStore,
        chunks: Iterator[Chunk],
        budget: ByteBudget,
        first: FirstChunks,
        executor: JobOrderPool,
        ready: Callable[[], bool],
        pace: Callable[[], None],
        max_window: int = 1024,
    ) -> None:
        self._store = store
        self._chunks = chunks
        self._budget = budget
        self._first = first
        self._executor = executor
        self._ready = ready  # whether the next entry is sized (else: first write what is here)
        # The writer's own backpressure, waited for before it takes the next chunk: that chunk
        # still counts as fetched ahead meanwhile, so nothing further is fetched while it waits.
        self._pace = pace
        self._max_window = max_window
        self._window: deque[tuple[Chunk, Future[Buffer], int]] = deque()  # with its reservation
        self._writing = False
        self._upcoming: Chunk | None = None
        self._exhausted = False

    def __enter__(self) -> Prefetcher:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def __iter__(self) -> Iterator[tuple[Chunk, Buffer]]:
        self._fill()
        while self._window:
            if self._writing:
                self._pace()
            chunk, future, reserved = self._window.popleft()
            self._writing = True
            try:
                yield chunk, future.result()
            finally:
                del future  # written: its bytes must not outlive their share of the budget
                self._budget.release(reserved)
            self._fill()

    def _fill(self) -> None:
        """Submit upcoming chunks while the budget allows; wait for room only when idle."""
        while len(self._window) < self._max_window:
            if self._upcoming is None:
                if self._exhausted or (self._window and not self._ready()):
                    return  # the next entry is still being sized: first write what is here
                self._upcoming = next(self._chunks, None)
                if self._upcoming is None:
                    self._exhausted = True
                    return
            chunk = self._upcoming
            probed = self._first.take(chunk.ref) if chunk.probed else None
            future: Future[Buffer]
            if probed is not None:
                future = Future()
                future.set_result(probed)
                reserved = len(probed)
            else:
                reserved = min(chunk.length, self._budget.capacity)
                if not self._budget.try_acquire(reserved):
                    if self._window:
                        return  # what is in flight frees room as the writer consumes it
                    # Nothing of ours in flight: waiting could be on bytes only we hold (probed
                    # chunks further on), so go over by this one chunk instead.
                    self._budget.force_acquire(reserved)
                future = self._executor.submit(
                    chunk.entry, self._store.fetch, chunk.ref, chunk.start, chunk.length, chunk.etag
                )
            self._window.append((chunk, future, reserved))
            self._upcoming = None

    def close(self) -> None:
        """Cancel what has not started; return every reservation as its fetch ends."""
        while self._window:
            _, future, reserved = self._window.popleft()
            if future.cancel():
                self._budget.release(reserved)
            else:
                future.add_done_callback(_releaser(self._budget, reserved))
