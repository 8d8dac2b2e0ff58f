"""The shutdown grace period: once the worker is told to stop, running jobs have
`SHUTDOWN_GRACE_SECONDS` to finish. Halfway through, those still running are asked to hand
over (a checkpoint at their next entry's end, and a continuation: hours of work are not lost);
at its end, those still running are cancelled (each releases its message)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NamedTuple

import structlog

from archiver.app.stopping import STOP_POLL_SECONDS
from archiver.domain.checkpoint import RECEIPT_CAP_SECONDS

log = structlog.get_logger(__name__)


class Grace(NamedTuple):
    handover: threading.Event  # set halfway through: stop for a checkpoint
    cancel: threading.Event  # set at the end: stop now


@contextmanager
def grace_period(stop: threading.Event, seconds: float) -> Iterator[Grace]:
    """The worker's run inside: yields the events that stop its jobs, set by a watchdog
    thread `seconds` / 2 and `seconds` after `stop` (unless the run has ended by then)."""
    handover, cancel, finished = threading.Event(), threading.Event(), threading.Event()

    def watch() -> None:
        while not stop.wait(STOP_POLL_SECONDS):
            if finished.is_set():
                return
        if finished.wait(seconds / 2):
            return
        log.warning("grace_period_half_over", grace_seconds=seconds, then="checkpoint")
        handover.set()
        if not finished.wait(seconds / 2):
            log.warning("grace_period_over", grace_seconds=seconds)
            cancel.set()

    watchdog = threading.Thread(target=watch, name="grace", daemon=True)
    watchdog.start()
    try:
        yield Grace(handover, cancel)
    finally:
        finished.set()
        watchdog.join()


@contextmanager
def receipt_hold(seconds: float) -> Iterator[Grace]:
    """A receipt's own grace: `handover` set once a job has held its message's receipt for
    `seconds` (`SQS_MAX_HOLD_SECONDS`: the job is then checkpointed at its next entry's end),
    `cancel` at `RECEIPT_CAP_SECONDS`, shortly before SQS's 12 hours, if that entry has still
    not ended (the job is then stopped and its message released while it still can be; a
    resumed job keeps its checkpoint's upload)."""
    due, cancel = threading.Event(), threading.Event()
    cap = max(RECEIPT_CAP_SECONDS, seconds)
    timers = [threading.Timer(seconds, due.set), threading.Timer(cap, cancel.set)]
    for timer in timers:
        timer.daemon = True
        timer.start()
    try:
        yield Grace(due, cancel)
    finally:
        for timer in timers:
            timer.cancel()
