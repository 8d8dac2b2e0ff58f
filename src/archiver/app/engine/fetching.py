"""Fetch upcoming sources concurrently within a byte budget; hand them over strictly in order.

Chunks (`chunks.py`) are submitted in job
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

from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from types import TracebackType

from archiver.app.engine.budget import ByteBudget, FirstChunks
from archiver.app.engine.chunks import Chunk
from archiver.app.engine.pool import JobOrderPool
from archiver.domain.ports import Buffer, ObjectStore


@dataclass(frozen=True)
class Transfer:
    """How sources are fetched: the shared budget, threads, and the size of ranged GETs."""

    budget: ByteBudget
    concurrency: int = 16
    range_size: int = 8 * 1024 * 1024


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
