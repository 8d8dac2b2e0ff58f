"""What a running job tells: a progress line in the logs every `PROGRESS_LOG_SECONDS`, and, for
a job that asked for it (`notify.progress`), a `running` notification every
`PROGRESS_NOTIFY_SECONDS`. Both are sent from the job's own thread, between two chunks, so the
last one always goes before the job's answer.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog

from archiver.app.engine.archive import Progress
from archiver.domain.errors import ArchiverError
from archiver.domain.notifications import JobRunning
from archiver.domain.notifications import Progress as Reported
from archiver.domain.ports import Notifier

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Reporting:
    log_seconds: float = 15.0
    notify_seconds: float = 30.0


class JobProgress:
    """The build's progress callback for one job."""

    def __init__(
        self,
        job_id: str,
        metadata: dict[str, Any],
        reporting: Reporting,
        notifier: Notifier | None,
        beat: Callable[[], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._job_id = job_id
        self._metadata = metadata
        self._reporting = reporting
        self._notifier = notifier  # None: the job did not ask for progress notifications
        self._beat = beat
        self._clock = clock
        self._started = clock()
        self._next_log = self._started + reporting.log_seconds
        self._next_notify = self._started + reporting.notify_seconds

    def __call__(self, progress: Progress) -> None:
        self._beat()  # bytes moved: the job is alive
        now = self._clock()
        if now >= self._next_log:
            self._next_log = now + self._reporting.log_seconds
            self._log(progress, now)
        if self._notifier is not None and now >= self._next_notify:
            self._next_notify = now + self._reporting.notify_seconds
            self._notify(self._notifier, progress)

    def _log(self, progress: Progress, now: float) -> None:
        rate = progress.bytes_done / max(now - self._started, 1e-9)
        left = max(progress.bytes_total - progress.bytes_done, 0)
        log.info(
            "job_progress",
            files_done=progress.files_done,
            files_total=progress.files_total,
            bytes_done=progress.bytes_done,
            bytes_total=progress.bytes_total,
            rate_bytes_per_s=round(rate),
            eta_s=round(left / rate, 1) if rate > 0 else None,
        )

    def _notify(self, notifier: Notifier, progress: Progress) -> None:
        running = JobRunning(
            job_id=self._job_id,
            progress=Reported(
                files_done=progress.files_done,
                files_total=progress.files_total,
                bytes_done=progress.bytes_done,
                bytes_total=progress.bytes_total,
            ),
            metadata=self._metadata,
        )
        try:
            notifier.publish(running)
        except ArchiverError as error:  # progress is best effort: the job goes on
            log.warning("progress_notification_failed", error=str(error))
