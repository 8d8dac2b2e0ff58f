"""The part requests of one upload in flight: uploads and copies, each kind in its own slots.

The writer submits every request (one thread): when a kind's slots are all busy it waits
(backpressure). Upload slots can be lowered while the job runs: parts grow, fewer go at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from archiver.domain.multipart import MAX_PARTS


class PartSlots:
    """A semaphore of `count` slots; `limit(n)` parks slots until at most `n` remain."""

    def __init__(self, count: int) -> None:
        self._semaphore = threading.BoundedSemaphore(count)
        self.count = count

    def acquire(self) -> None:
        self._semaphore.acquire()

    def release(self) -> None:
        self._semaphore.release()

    def limit(self, count: int) -> None:
        """Keep at most `count` (≥ 1) slots, waiting for requests in flight to free those taken
        away; only the submitting thread calls it, so it never waits on itself."""
        while self.count > max(1, count):
            self._semaphore.acquire()  # parked for good
            self.count -= 1


class PartRequests:
    def __init__(self, upload_concurrency: int, copy_concurrency: int) -> None:
        self.uploads = PartSlots(upload_concurrency)
        self.copies = PartSlots(copy_concurrency)
        self._threads = upload_concurrency + copy_concurrency
        self._executor: ThreadPoolExecutor | None = None
        self._pending: list[Future[None]] = []

    def run(self, slots: PartSlots, task: Callable[..., None], number: int, *args: Any) -> None:
        """Run part `number`'s request on a part thread once `slots` has room."""
        if number > MAX_PARTS:
            raise RuntimeError(f"the archive needs more than {MAX_PARTS} parts")
        self.raise_failed()
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self._threads, thread_name_prefix="part")
        slots.acquire()
        try:
            future = self._executor.submit(task, number, *args)
        except BaseException:
            slots.release()
            raise
        future.add_done_callback(lambda _: slots.release())
        self._pending.append(future)

    def raise_failed(self) -> None:
        """Raise the first failure among the requests that ended; forget those that succeeded."""
        still_running = []
        for future in self._pending:
            if not future.done():
                still_running.append(future)
            elif future.exception() is not None:
                raise future.exception()  # type: ignore[misc]
        self._pending = still_running

    def wait(self) -> None:
        """Every request ended (the first failure raised)."""
        for future in self._pending:
            future.result()
        self._pending = []

    def cancel(self) -> None:
        """Drop the requests not begun; wait for the part threads to end."""
        for future in self._pending:
            future.cancel()
        self._pending = []
        self.shutdown()

    def shutdown(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
