"""What a running job tells: a progress line in the logs every `PROGRESS_LOG_SECONDS`, and, for
a job that asked for it (`notify.progress`), a `running` notification every
`PROGRESS_NOTIFY_SECONDS`. Both are sent from the job's own thread, between two chunks, so the
last one always goes before the job's answer.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import structlog

from archiver.domain.errors import ArchiverError
from archiver.domain.notifications import JobRunning, Progress
from archiver.domain.ports import Notifier

log = structlog.get_logger(__name__)

Clock = Callable[[], float]


class ProgressTracker:
    """The worker's progress tracking (`ProgressTracking`): one `JobProgress` per job."""

    def __init__(
        self,
        log_seconds: float,
        notify_seconds: float,
        notifier: Notifier,
        beat: Callable[[], None],
        clock: Clock = time.monotonic,
    ) -> None:
        self.log_seconds = log_seconds
        self.notify_seconds = notify_seconds
        self._notifier = notifier
        self.beat = beat  # bytes moved: the worker is alive
        self.clock = clock

    def job(
        self, job_id: str, metadata: dict[str, Any], notify: bool, group: str | None = None
    ) -> JobProgress:
        notifier = self._notifier if notify else None
        return JobProgress(self, job_id, metadata, notifier, group)


class JobProgress:
    """The build's progress callback for one job."""

    def __init__(
        self,
        tracker: ProgressTracker,
        job_id: str,
        metadata: dict[str, Any],
        notifier: Notifier | None,
        group: str | None = None,
    ) -> None:
        self._tracker = tracker
        self._group = group  # the job's FIFO message group
        self._job_id = job_id
        self._metadata = metadata
        self._notifier = notifier  # None: the job did not ask for progress notifications
        self._started = tracker.clock()
        self._next_log = self._started + tracker.log_seconds
        self._next_notify = self._started + tracker.notify_seconds

    def __call__(self, progress: Progress) -> None:
        tracker = self._tracker
        tracker.beat()
        now = tracker.clock()
        if now >= self._next_log:
            self._next_log = now + tracker.log_seconds
            self._log(progress, now)
        if self._notifier is not None and now >= self._next_notify:
            self._next_notify = now + tracker.notify_seconds
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
        running = JobRunning(job_id=self._job_id, progress=progress, metadata=self._metadata)
        try:
            notifier.publish(running, self._group)
        except ArchiverError as error:  # progress is best effort: the job goes on
            log.warning("progress_notification_failed", error=str(error))
