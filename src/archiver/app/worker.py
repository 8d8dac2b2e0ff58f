"""The worker loop: receive a job, build its archive, notify, and only then acknowledge."""

from __future__ import annotations

import threading
import time
from enum import StrEnum
from typing import Any

import structlog

from archiver.app.service import ArchiveService
from archiver.domain.errors import PermanentError, TransientError
from archiver.domain.job import parse_job, salvage_metadata
from archiver.domain.notifications import JobFailed, JobSucceeded, failed, succeeded
from archiver.domain.ports import Notifier, Queue, ReceivedMessage

log = structlog.get_logger(__name__)

MAX_IDLE_BACKOFF = 30.0


def _took(started: float) -> dict[str, float]:
    return {"duration_s": round(time.monotonic() - started, 3)}


class Outcome(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # permanent: failure notified, message deleted
    DEFERRED = "deferred"  # transient or unexpected: message left for redelivery (then the DLQ)


class Worker:
    def __init__(
        self,
        queue: Queue,
        notifier: Notifier,
        service: ArchiveService,
        wait_seconds: int = 20,
        retry_delay: float = 1.0,
    ) -> None:
        self._queue = queue
        self._notifier = notifier
        self._service = service
        self._wait_seconds = wait_seconds
        self._retry_delay = retry_delay

    def run(self, stop: threading.Event, max_polls: int | None = None) -> None:
        """Poll until `stop` is set; queue outages are logged and retried with backoff."""
        log.info("worker_started", wait_seconds=self._wait_seconds)
        polls, backoff = 0, self._retry_delay
        while not stop.is_set() and (max_polls is None or polls < max_polls):
            polls += 1
            try:
                self.poll_once()
                backoff = self._retry_delay
            except TransientError as error:
                log.warning("receive_failed", error=str(error), retry_in=backoff)
                stop.wait(backoff)
                backoff = min(backoff * 2, MAX_IDLE_BACKOFF)
        log.info("worker_stopped", polls=polls)

    def poll_once(self) -> list[Outcome]:
        messages = self._queue.receive(max_messages=1, wait_seconds=self._wait_seconds)
        return [self.handle(message) for message in messages]

    def handle(self, message: ReceivedMessage) -> Outcome:
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(
            job_id=message.message_id, receive_count=message.receive_count
        )
        try:
            return self._handle(message)
        finally:
            structlog.contextvars.clear_contextvars()

    def _handle(self, message: ReceivedMessage) -> Outcome:
        started = time.monotonic()
        try:
            notification = self._process(message)
            self._notifier.publish(notification)
            self._queue.delete(message)
        except TransientError as error:
            log.warning("job_deferred", error=str(error), decision="redeliver", **_took(started))
            return Outcome.DEFERRED
        except Exception:
            log.exception("job_crashed", decision="redeliver", **_took(started))
            return Outcome.DEFERRED
        if isinstance(notification, JobFailed):
            log.warning(
                "job_failed",
                **_took(started),
                code=notification.error.code,
                reason=notification.error.message,
                sources=notification.error.sources[:10],
                decision="notify_and_delete",
            )
            return Outcome.FAILED
        log.info(
            "job_succeeded",
            **_took(started),
            bytes=notification.archive.size_bytes,
            file_count=notification.archive.file_count,
        )
        return Outcome.SUCCEEDED

    def _process(self, message: ReceivedMessage) -> JobSucceeded | JobFailed:
        """Build the archive; a permanent error becomes a failure notification."""
        metadata: dict[str, Any] | None = None
        try:
            request = parse_job(message.body)
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
            archive = self._service.build(plan)
            return succeeded(message.message_id, self._service.url(plan.archive), archive, metadata)
        except PermanentError as error:
            if metadata is None:
                metadata = salvage_metadata(message.body)
            return failed(message.message_id, error, metadata)
