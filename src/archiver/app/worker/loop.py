"""The worker loop: receive a job, build its archive, notify, and only then acknowledge."""

from __future__ import annotations

import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import structlog

from archiver.app.worker.heartbeat import VisibilityHeartbeat
from archiver.app.worker.ops import Liveness, Metrics, ScaleInProtection
from archiver.app.worker.polling import ABANDON_POLL_SECONDS, STOP_CHECK_INTERVAL, LongPoll
from archiver.app.worker.reporting import JobProgress, Reporting
from archiver.app.jobs.service import ArchiveService
from archiver.domain.errors import InternalError, JobCancelled, PermanentError, TransientError
from archiver.domain.job import salvage_metadata
from archiver.domain.notifications import JobFailed, JobSucceeded, failed, succeeded
from archiver.domain.ports import Notifier, Queue, ReceivedMessage

log = structlog.get_logger(__name__)

MAX_POLL_BACKOFF = 30.0
MAX_RETRY_DELAY = 900  # SQS caps a single visibility change at 12 h; 15 min is plenty
GRACE_CHECK_INTERVAL = 0.2


def _took(started: float) -> dict[str, float]:
    return {"duration_s": round(time.monotonic() - started, 3)}


class Outcome(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # permanent: failure notified, message deleted
    DEFERRED = "deferred"  # transient or unexpected: redelivered later, then dead-lettered
    RELEASED = "released"  # shutting down: handed back for another worker at once


class Worker:
    def __init__(
        self,
        queue: Queue,
        notifier: Notifier,
        service: ArchiveService,
        *,
        wait_seconds: int = 20,
        abandon_seconds: float = ABANDON_POLL_SECONDS,
        visibility_seconds: int = 60,
        shutdown_grace: float = 25.0,
        job_retry_seconds: int = 30,
        poll_retry_seconds: float = 1.0,
        concurrency: int = 1,
        max_receives: int | None = None,
        liveness: Liveness | None = None,
        metrics: Metrics | None = None,
        protection: ScaleInProtection | None = None,
        reporting: Reporting | None = None,
    ) -> None:
        self._queue = queue
        self._notifier = notifier
        self._service = service
        self._wait_seconds = wait_seconds
        self._abandon_seconds = abandon_seconds
        self._visibility = visibility_seconds
        self._grace = shutdown_grace
        self._job_retry = job_retry_seconds
        self._poll_retry = poll_retry_seconds
        self._concurrency = concurrency
        self._max_receives = max_receives
        self._liveness = liveness or Liveness(None)
        self._metrics = metrics or Metrics(enabled=False)
        self._protection = protection or ScaleInProtection(None)
        self._reporting = reporting or Reporting()

    def run(self, stop: threading.Event, max_polls: int | None = None) -> None:
        """Poll until `stop` is set, then let running jobs finish within the grace period.

        Up to `concurrency` jobs run at once; the loop only asks for as many messages as it
        has free slots, so nothing waits hidden in this process while another worker is idle.
        """
        log.info(
            "worker_started",
            wait_seconds=self._wait_seconds,
            visibility=self._visibility,
            concurrency=self._concurrency,
        )
        cancel, finished = threading.Event(), threading.Event()
        watchdog = threading.Thread(
            target=self._enforce_grace, args=(stop, finished, cancel), name="grace", daemon=True
        )
        watchdog.start()
        self._liveness.beat()  # healthy from the start, before the first long poll returns
        polls, backoff = 0, self._poll_retry
        running: set[Future[Outcome]] = set()
        polling = LongPoll(self._receive, lambda message: self._set_visibility(message, 0))
        pool = ThreadPoolExecutor(self._concurrency, thread_name_prefix="job")
        try:
            while not stop.is_set() and (max_polls is None or polls < max_polls):
                running = {job for job in running if not job.done()}
                self._protection.refresh()
                if len(running) >= self._concurrency:
                    wait(running, timeout=STOP_CHECK_INTERVAL, return_when=FIRST_COMPLETED)
                    continue
                polls += 1
                poll = polling.start(self._concurrency - len(running))
                if not polling.settled(poll, stop):
                    polling.abandon(poll, self._abandon_seconds)  # what it brings goes back
                    break
                try:
                    messages = poll.result()
                    self._liveness.beat()  # polled: the loop is alive
                    backoff = self._poll_retry
                except TransientError as error:
                    log.warning("receive_failed", error=str(error), retry_in=backoff)
                    stop.wait(backoff)
                    backoff = min(backoff * 2, MAX_POLL_BACKOFF)
                    continue
                for message in messages:
                    if stop.is_set():
                        self._set_visibility(message, 0)  # arrived during shutdown: hand back
                    else:
                        running.add(pool.submit(self.handle, message, cancel))
            wait(running)
        finally:
            pool.shutdown(wait=True)
            finished.set()
            watchdog.join()
        log.info("worker_stopped", polls=polls)

    def _receive(self, count: int) -> list[ReceivedMessage]:
        return self._queue.receive(
            max_messages=min(count, 10),
            wait_seconds=self._wait_seconds,
            visibility_seconds=self._visibility,
        )

    def _enforce_grace(
        self, stop: threading.Event, finished: threading.Event, cancel: threading.Event
    ) -> None:
        while not stop.wait(GRACE_CHECK_INTERVAL):
            if finished.is_set():
                return
        if not finished.wait(self._grace):
            log.warning("grace_period_over", grace_seconds=self._grace)
            cancel.set()

    def handle(self, message: ReceivedMessage, cancel: threading.Event | None = None) -> Outcome:
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(
            job_id=message.message_id, receive_count=message.receive_count
        )
        self._protection.job_started()
        try:
            return self._handle(message, cancel)
        finally:
            self._protection.job_ended()
            structlog.contextvars.clear_contextvars()

    def _handle(self, message: ReceivedMessage, cancel: threading.Event | None) -> Outcome:
        started = time.monotonic()
        try:
            with VisibilityHeartbeat(self._queue, message, self._visibility):
                notification = self._process(message, cancel)
                self._notifier.publish(notification)
                self._queue.delete(message)
            self._service.acknowledged(message.body)
        except JobCancelled as cancelled:
            log.warning("job_released", reason=str(cancelled), decision="release", **_took(started))
            self._set_visibility(message, 0)
            return self._measured(Outcome.RELEASED, message, started)
        except TransientError as error:
            delay = self._retry_delay(message)
            log.warning("job_deferred", error=str(error), decision="redeliver", retry_in=delay)
            self._set_visibility(message, delay)
            return self._measured(Outcome.DEFERRED, message, started)
        except Exception as error:
            if self._last_delivery(message):
                log.exception("job_crashed", decision="notify_and_delete", **_took(started))
                return self._give_up(message, error, started)
            delay = self._retry_delay(message)
            log.exception("job_crashed", decision="redeliver", retry_in=delay, **_took(started))
            self._set_visibility(message, delay)
            return self._measured(Outcome.DEFERRED, message, started, code="crashed")
        if isinstance(notification, JobFailed):
            log.warning(
                "job_failed",
                **_took(started),
                code=notification.error.code,
                reason=notification.error.message,
                sources=notification.error.sources[:10],
                decision="notify_and_delete",
            )
            return self._measured(Outcome.FAILED, message, started, code=notification.error.code)
        log.info(
            "job_succeeded",
            **_took(started),
            bytes=notification.archive.size_bytes,
            file_count=notification.archive.file_count,
            missing=len(notification.archive.missing),
        )
        return self._measured(
            Outcome.SUCCEEDED,
            message,
            started,
            archive_bytes=notification.archive.size_bytes,
            file_count=notification.archive.file_count,
        )

    def _last_delivery(self, message: ReceivedMessage) -> bool:
        return self._max_receives is not None and message.receive_count >= self._max_receives

    def _give_up(self, message: ReceivedMessage, error: Exception, started: float) -> Outcome:
        """The job failed the same unplanned way on every delivery: the consumer hears it once,
        rather than the job going silently to the dead-letter queue."""
        failure = InternalError(error, message.receive_count)
        try:
            self._notifier.publish(
                failed(message.message_id, failure, salvage_metadata(message.body))
            )
            self._queue.delete(message)
            self._service.acknowledged(message.body)
        except Exception as unsent:  # nothing more to try: the dead-letter queue keeps it
            log.warning("give_up_failed", error=repr(unsent), decision="dead_letter")
            return self._measured(Outcome.DEFERRED, message, started, code="crashed")
        return self._measured(Outcome.FAILED, message, started, code=failure.code)

    def _measured(
        self,
        outcome: Outcome,
        message: ReceivedMessage,
        started: float,
        *,
        code: str | None = None,
        archive_bytes: int = 0,
        file_count: int = 0,
    ) -> Outcome:
        self._metrics.job(
            outcome.value,
            code=code,
            duration_s=time.monotonic() - started,
            queue_wait_s=(datetime.now(UTC) - message.sent_at).total_seconds(),
            archive_bytes=archive_bytes,
            file_count=file_count,
        )
        return outcome

    def _retry_delay(self, message: ReceivedMessage) -> int:
        """Exponential backoff by delivery count, so a struggling dependency is not hammered."""
        delay: int = self._job_retry * 2 ** max(message.receive_count - 1, 0)
        return min(delay, MAX_RETRY_DELAY)

    def _set_visibility(self, message: ReceivedMessage, seconds: int) -> None:
        try:
            self._queue.set_visibility(message, seconds)
        except TransientError as error:  # it reappears when its visibility runs out anyway
            log.warning("visibility_change_failed", error=str(error), seconds=seconds)

    def _process(
        self, message: ReceivedMessage, cancel: threading.Event | None
    ) -> JobSucceeded | JobFailed:
        """Build the archive; a permanent error becomes a failure notification."""
        metadata: dict[str, Any] | None = None
        try:
            request = self._service.read(message.body)
            metadata = request.metadata
            plan = self._service.plan(message.message_id, request, message.sent_at)
            context = {
                "file_count": len(plan.entries),
                "archive_key": plan.archive.key,
                # Metadata may hold personal data: log its keys only.
                "metadata_keys": sorted(metadata)[:20],
            }
            structlog.contextvars.bind_contextvars(**context)
            log.info("job_started", **context)
            progress = JobProgress(
                message.message_id,
                metadata,
                self._reporting,
                self._notifier if request.notify.progress else None,
                self._liveness.beat,
            )
            archive = self._service.build(
                plan, progress, cancel=cancel, redelivered=message.receive_count > 1
            )
            url = self._service.url(plan.archive)
            return self._service.reported(
                succeeded(message.message_id, url, archive, metadata), archive.missing
            )
        except PermanentError as error:
            if metadata is None:
                metadata = salvage_metadata(message.body)
            return self._service.reported(
                failed(message.message_id, error, metadata), error.sources
            )
