"""Fetch upcoming sources concurrently within a byte budget; hand them over strictly in order.

Every entry is cut into chunks: a small object is one GET, a large one ranged GETs of
`range_size`, all pinned to the version (ETag) that was sized. Chunks are submitted in job
order while the shared budget allows and a bounded window is not full; the writer takes them in
the same order and gives each chunk's bytes back to the budget once written. Nothing is
submitted beyond what the budget covers, so memory stays flat whatever the job's size.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from types import TracebackType

from archiver.domain.job import ObjectRef
from archiver.domain.plan import PlannedEntry
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


def chunks_of(
    entries: Sequence[PlannedEntry],
    infos: Mapping[ObjectRef, ObjectInfo],
    range_size: int,
    probed: Mapping[ObjectRef, int] | None = None,
) -> Iterator[Chunk]:
    """Every byte of every entry once, in order: a probed first chunk, then ranges."""
    unused = dict(probed or {})
    for index, entry in enumerate(entries):
        info = infos[entry.source]
        start = 0
        first = unused.pop(entry.source, None)  # a repeated source is fetched again
        if first is not None:
            last = first >= info.size
            yield Chunk(index, entry.source, 0, first, info.etag, last, probed=True)
            if last:
                continue
            start = first
        while True:
            length = min(range_size, info.size - start)
            last = start + length >= info.size
            yield Chunk(index, entry.source, start, length, info.etag, last)
            if last:
                break
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

    def __init__(self, budget: ByteBudget | None) -> None:
        self._budget = budget
        self._data: dict[ObjectRef, Buffer] = {}
        self._held = 0
        self._lock = threading.Lock()

    def reserve(self, amount: int, cap: int) -> bool:
        with self._lock:
            if self._budget is None or self._held + amount > cap:
                return False
            if not self._budget.try_acquire(amount):
                return False
            self._held += amount
            return True

    def unreserve(self, amount: int) -> None:
        with self._lock:
            self._held -= amount
        if self._budget is not None:
            self._budget.release(amount)

    def keep(self, ref: ObjectRef, data: Buffer, reserved: int) -> None:
        self.unreserve(reserved - len(data))
        with self._lock:
            self._data[ref] = data

    def sizes(self) -> dict[ObjectRef, int]:
        with self._lock:
            return {ref: len(data) for ref, data in self._data.items()}

    def take(self, ref: ObjectRef) -> Buffer | None:
        """Hand the bytes, and their reservation, to the caller."""
        with self._lock:
            data = self._data.pop(ref, None)
            if data is not None:
                self._held -= len(data)
            return data

    def release_all(self) -> None:
        with self._lock:
            total = sum(len(data) for data in self._data.values())
            self._data.clear()
            self._held -= total
        if self._budget is not None and total:
            self._budget.release(total)


def _releaser(budget: ByteBudget, amount: int) -> Callable[[Future[Buffer]], None]:
    return lambda _: budget.release(amount)


class Prefetcher:
    def __init__(
        self,
        store: ObjectStore,
        chunks: Iterator[Chunk],
        budget: ByteBudget,
        concurrency: int,
        first: FirstChunks | None = None,
        max_window: int = 1024,
    ) -> None:
        self._first = first or FirstChunks(None)
        self._store = store
        self._chunks = chunks
        self._budget = budget
        self._max_window = max_window
        self._executor = ThreadPoolExecutor(concurrency, thread_name_prefix="fetch")
        self._window: deque[tuple[Chunk, Future[Buffer], int]] = deque()
        self._upcoming: Chunk | None = next(self._chunks, None)

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
            chunk, future, reserved = self._window.popleft()
            try:
                yield chunk, future.result()
            finally:
                self._budget.release(reserved)  # written, or abandoned on error
            self._fill()

    def _fill(self) -> None:
        """Submit upcoming chunks while the budget allows; wait for room only when idle."""
        while self._upcoming is not None and len(self._window) < self._max_window:
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
                    self._store.fetch, chunk.ref, chunk.start, chunk.length, chunk.etag
                )
            self._window.append((chunk, future, reserved))
            self._upcoming = next(self._chunks, None)

    def close(self) -> None:
        """Cancel what has not started; return every reservation as its fetch ends."""
        while self._window:
            _, future, reserved = self._window.popleft()
            if future.cancel():
                self._budget.release(reserved)
            else:
                future.add_done_callback(_releaser(self._budget, reserved))
        self._executor.shutdown(wait=False, cancel_futures=True)
