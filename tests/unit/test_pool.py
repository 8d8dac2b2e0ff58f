import threading
import time

import pytest

from archiver.app.engine.pool import JobOrderPool


def test_the_request_earliest_in_the_job_runs_first() -> None:
    pool = JobOrderPool(1, "test")
    gate = threading.Event()
    ran: list[int] = []
    pool.submit(0, gate.wait, 5)  # keeps the only thread busy while the rest queue up
    futures = [pool.submit(entry, ran.append, entry) for entry in (7, 2, 9, 2, 0)]
    gate.set()
    for future in futures:
        future.result(timeout=5)
    pool.shutdown()
    assert ran == [0, 2, 2, 7, 9]


def test_requests_submitted_together_each_get_a_thread() -> None:
    """With one thread busy, two requests submitted together run at once on two others."""
    pool = JobOrderPool(3, "test")
    gate = threading.Event()
    busy = pool.submit(0, gate.wait, 10)
    together = threading.Barrier(2, timeout=5)  # only passes with both running at once
    futures = [pool.submit(entry, together.wait) for entry in range(2)]
    assert sorted(future.result(timeout=10) for future in futures) == [0, 1]
    gate.set()
    assert busy.result(timeout=5) is True
    pool.shutdown()


def test_a_failure_reaches_the_future() -> None:
    pool = JobOrderPool(2, "test")
    future = pool.submit(0, int, "not a number")
    with pytest.raises(ValueError, match="invalid literal"):
        future.result(timeout=5)
    pool.shutdown()


def test_shutdown_cancels_what_has_not_begun() -> None:
    pool = JobOrderPool(1, "test")
    started, gate = threading.Event(), threading.Event()
    running = pool.submit(0, lambda: started.set() or gate.wait(5))
    assert started.wait(5)
    queued = pool.submit(1, time.sleep, 0)
    pool.shutdown(wait=False, cancel_futures=True)
    gate.set()
    assert running.result(timeout=5) is True
    assert queued.cancelled()
    with pytest.raises(RuntimeError):
        pool.submit(2, time.sleep, 0)
