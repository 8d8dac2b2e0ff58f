"""The shutdown grace period: once the worker is told to stop, running jobs have
`SHUTDOWN_GRACE_SECONDS` to finish; then they are cancelled (each releases its message)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import structlog

from archiver.app.stopping import STOP_POLL_SECONDS

log = structlog.get_logger(__name__)


@contextmanager
def grace_period(stop: threading.Event, seconds: float) -> Iterator[threading.Event]:
    """The worker's run inside: yields the event that cancels its jobs, set by a watchdog
    thread `seconds` after `stop` (unless the run has ended by then)."""
    cancel, finished = threading.Event(), threading.Event()

    def watch() -> None:
        while not stop.wait(STOP_POLL_SECONDS):
            if finished.is_set():
                return
        if not finished.wait(seconds):
            log.warning("grace_period_over", grace_seconds=seconds)
            cancel.set()

    watchdog = threading.Thread(target=watch, name="grace", daemon=True)
    watchdog.start()
    try:
        yield cancel
    finally:
        finished.set()
        watchdog.join()
