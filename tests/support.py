"""What many tests share: byte sizes, waiting with a deadline, and driving the worker loop."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from archiver.app.worker.loop import Outcome, Worker
from archiver.domain.ports import ReceivedMessage

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB


def wait_until(condition: Callable[[], object], timeout: float, interval: float = 0.05) -> None:
    """Poll `condition` until it holds; fail the test if it does not within `timeout` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for a condition"
        time.sleep(interval)


def drive(worker: Worker, polls: int = 1) -> list[Outcome]:
    """Run the worker's production loop for `polls` receives and wait for the jobs they
    brought; return each job's outcome, in the order the jobs ended."""
    outcomes: list[Outcome] = []
    handle = worker.handle

    def recorded(message: ReceivedMessage, cancel: threading.Event | None = None) -> Outcome:
        outcome = handle(message, cancel)
        outcomes.append(outcome)
        return outcome

    worker.handle = recorded  # type: ignore[method-assign]
    try:
        worker.run(threading.Event(), max_polls=polls)
    finally:
        del worker.handle
    return outcomes
