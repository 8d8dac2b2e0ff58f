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
from dataclasses import dataclass, field

from archiver.app.engine.budget import ByteBudget, FirstChunks
from archiver.app.engine.pool import JobOrderPool
from archiver.app.engine.transfer import Chunk
from archiver.domain.ports import Buffer, ObjectStore


def _releaser(budget: ByteBudget, amount: int) -> Callable[[Future[Buffer]], None]:
    return lambda _: budget.release(amount)


@dataclass(eq=False)
class Prefetcher:
    """Fetches ahead of the writer as far as the byte budget allows, in job order; `close()`
    it when done (every reservation goes back)."""

    store: ObjectStore
    chunks: Iterator[Chunk]
    budget: ByteBudget
    first: FirstChunks
    executor: JobOrderPool
    ready: Callable[[], bool]
    """Whether the next entry is sized (else: first write what is here)."""
    pace: Callable[[], None]
    """The writer's own backpressure, waited for before it takes the next chunk: that chunk
    still counts as fetched ahead meanwhile, so nothing further is fetched while it waits."""
    max_window: int = 1024
    _window: deque[tuple[Chunk, Future[Buffer], int]] = field(default_factory=deque, init=False)
    """Chunks submitted, each with its reservation."""
    _writing: bool = field(default=False, init=False)
    _upcoming: Chunk | None = field(default=None, init=False)
    _exhausted: bool = field(default=False, init=False)

    def __iter__(self) -> Iterator[tuple[Chunk, Buffer]]:
        self._fill()
        while self._window:
            if self._writing:
                self.pace()
            chunk, future, reserved = self._window.popleft()
            self._writing = True
            try:
                yield chunk, future.result()
            finally:
                del future  # written: its bytes must not outlive their share of the budget
                self.budget.release(reserved)
            self._fill()

    def _fill(self) -> None:
        """Submit upcoming chunks while the budget allows; wait for room only when idle."""
        while len(self._window) < self.max_window:
            if self._upcoming is None:
                if self._exhausted or (self._window and not self.ready()):
                    return  # the next entry is still being sized: first write what is here
                self._upcoming = next(self.chunks, None)
                if self._upcoming is None:
                    self._exhausted = True
                    return
            chunk = self._upcoming
            probed = self.first.hand_over(chunk.ref) if chunk.probed else None
            future: Future[Buffer]
            if probed is not None or chunk.length == 0:  # nothing to fetch
                future = Future()
                future.set_result(probed or b"")
                reserved = len(probed or b"")
            else:
                reserved = min(chunk.length, self.budget.capacity)
                if not self.budget.try_acquire(reserved):
                    if self._window:
                        return  # what is in flight frees room as the writer consumes it
                    # Nothing of ours in flight: waiting could be on bytes only we hold (probed
                    # chunks further on), so go over by this one chunk instead.
                    self.budget.force_acquire(reserved)
                future = self.executor.submit(
                    chunk.entry, self.store.fetch, chunk.ref, chunk.start, chunk.length, chunk.etag
                )
            self._window.append((chunk, future, reserved))
            self._upcoming = None

    def close(self) -> None:
        """Cancel what has not started; return every reservation as its fetch ends."""
        while self._window:
            _, future, reserved = self._window.popleft()
            if future.cancel():
                self.budget.release(reserved)
            else:
                future.add_done_callback(_releaser(self.budget, reserved))
