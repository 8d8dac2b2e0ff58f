"""Threads that always take, of the requests queued, the one earliest in the job first.

Sizing a source and fetching its bytes share one job's `DOWNLOAD_CONCURRENCY` threads. A
first-in, first-out pool would run every queued size check before the fetch the writer is
waiting for (a job of thousands of files would stall on its HEADs as behind a barrier); here a
request is keyed by the entry it serves, so the pool works on what the writer needs soonest
and sizes the rest of the job with the threads that are left. The threads start up front and
take requests from one priority queue.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")

_Queued = tuple[int, int, Future[Any], Callable[..., Any], tuple[Any, ...]]


class JobOrderPool:
    def __init__(self, workers: int, name: str) -> None:
        self._queue: list[_Queued] = []  # a heap: (entry, submission number, ...)
        self._numbers = itertools.count()
        self._changed = threading.Condition()
        self._shut = False
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}_{number}", daemon=True)
            for number in range(max(1, workers))
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, entry: int, fn: Callable[..., T], /, *args: Any) -> Future[T]:
        """Run `fn(*args)` for the job's `entry` (its index in the plan): lowest entry first."""
        future: Future[T] = Future()
        with self._changed:
            if self._shut:
                raise RuntimeError("cannot submit to a pool that was shut down")
            heapq.heappush(self._queue, (entry, next(self._numbers), future, fn, args))
            self._changed.notify()
        return future

    @property
    def waiting(self) -> int:
        """Requests queued that no thread has begun."""
        with self._changed:
            return len(self._queue)

    def _work(self) -> None:
        while True:
            with self._changed:
                while not self._queue and not self._shut:
                    self._changed.wait()
                if not self._queue:
                    return
                _, _, future, fn, args = heapq.heappop(self._queue)
            _run(future, fn, args)
            del future, fn, args  # a fetched buffer must not outlive its reader here

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Take no more requests; with `cancel_futures`, drop the ones that have not begun."""
        with self._changed:
            self._shut = True
            dropped = self._queue if cancel_futures else []
            if cancel_futures:
                self._queue = []
            self._changed.notify_all()
        for queued in dropped:
            queued[2].cancel()
        if wait:
            for thread in self._threads:
                if thread is not threading.current_thread():
                    thread.join()


def _run(future: Future[T], fn: Callable[..., T], args: tuple[Any, ...]) -> None:
    if not future.set_running_or_notify_cancel():
        return
    try:
        result = fn(*args)
    except BaseException as error:
        future.set_exception(error)
    else:
        future.set_result(result)
