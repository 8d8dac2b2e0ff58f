"""The use case: one job message in, what to do with it out (`Jobs.answer`).

Read the job (an offloaded body too), plan it, build its archive, link to it, and write the full
report where the notification had to cut a list. Every outcome is an `Answer`; the worker's loop
carries it out and knows nothing of archives.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, Protocol

import structlog

from archiver.app.engine.sink import destination_errors
from archiver.app.jobs.checkpoints import Checkpointed, Superseded
from archiver.app.jobs.resolve import read_job
from archiver.app.jobs.service import ArchiveService
from archiver.app.stopping import Signal
from archiver.domain.checkpoint import Checkpoint, Continuation
from archiver.domain.errors import (
    ErrorCode,
    InternalError,
    InvalidPayload,
    JobCancelled,
    ObjectUnavailable,
    PermanentError,
    TransientError,
)
from archiver.domain.job import ObjectRef, salvage_metadata
from archiver.domain.notifications import (
    JobFailed,
    JobSucceeded,
    Progress,
    check_metadata_fits,
    failed,
    fitted,
    omitted,
    succeeded,
)
from archiver.domain.offload import offloaded_payload
from archiver.domain.ports import ObjectHeaders, ReceivedMessage

log = structlog.get_logger(__name__)

Notification = JobSucceeded | JobFailed


@dataclass(frozen=True)
class Reply:
    """Publish the notification, delete the message, then call `deleted`."""

    notification: Notification
    deleted: Callable[[], None]


@dataclass(frozen=True)
class Retry:
    """Leave the message for redelivery (after the loop's backoff). On the last delivery before
    the dead-letter queue, a crashed job's consumer hears `last_word` instead."""

    reason: str
    error: Exception | None = None  # an unplanned error: the job crashed
    last_word: Reply | None = None

    @property
    def crashed(self) -> bool:
        return self.error is not None


@dataclass(frozen=True)
class Release:
    """Stopped (shutting down, or the receipt nearing SQS's 12 hours): hand the message back
    for another worker at once. On the last delivery before the dead-letter queue, a job that
    ran out of its receipt's 12 hours has its consumer hear `last_word` instead."""

    reason: str
    last_word: Reply | None = None


@dataclass(frozen=True)
class Handover:
    """The job stopped for a checkpoint: send `continuation`, call `sent`, then delete the
    message. `sent` None: an earlier receipt sent it (this message's delete had failed)."""

    continuation: Continuation
    sent: Callable[[], None] | None


Answer = Reply | Retry | Release | Handover


class _NotAContinuation(Exception):
    """A message claims to carry on a job, but with a token neither the job's checkpoint nor
    its archive's manifest holds: it is a job of its own (a producer cannot write into another
    job's key)."""


class ProgressTracking(Protocol):
    """Where a running job's progress goes (the worker logs it, and notifies if asked)."""

    def job(
        self, job_id: str, metadata: dict[str, Any], notify: bool, group: str | None = None
    ) -> Callable[[Progress], None]: ...


class Jobs:
    def __init__(
        self,
        service: ArchiveService,
        *,
        delete_offloaded: bool,
        message_bytes: Callable[[], int],
    ) -> None:
        self._service = service
        self._store = service.store
        self._delete_offloaded = delete_offloaded
        self._message_bytes = message_bytes  # the destination queue's MaximumMessageSize

    def answer(
        self,
        message: ReceivedMessage,
        progress: ProgressTracking,
        cancel: Signal,
        due: Signal | None = None,
    ) -> Answer:
        """What to do with the message; never raises (an unplanned error is a crashed `Retry`).
        Once `due` is set, a job still building stops for a checkpoint (`Handover`)."""
        try:
            notification = self._notification(message, progress, cancel, due)
            return Reply(notification, self._deleted(message, isinstance(notification, JobFailed)))
        except _NotAContinuation:
            log.warning("continuation_not_recognised", claimed_job_id=message.job_id)
            return self.answer(replace(message, continued=None), progress, cancel, due)
        except Checkpointed as stopped:
            return self._handover(message, stopped.checkpoint, sent=True)
        except Superseded as superseded:
            return self._handover(message, superseded.checkpoint, sent=False)
        except JobCancelled as cancelled:
            out_of_time = PermanentError(
                ErrorCode.ARCHIVE_TOO_LARGE,
                "an entry was still being written 12 hours into a receipt, on every delivery: "
                "SQS_MAX_HOLD_SECONDS must leave the longest entry time to finish",
            )
            failure = failed(message.job_id, out_of_time, salvage_metadata(message.body))
            return Release(str(cancelled), Reply(failure, self._deleted(message, failed=True)))
        except TransientError as error:
            return Retry(str(error))
        except Exception as error:
            failure = failed(
                message.job_id,
                InternalError(error, message.receive_count),
                salvage_metadata(message.body),
            )
            return Retry(repr(error), error, Reply(failure, self._deleted(message, failed=True)))

    def _notification(
        self,
        message: ReceivedMessage,
        progress: ProgressTracking,
        cancel: Signal,
        due: Signal | None,
    ) -> Notification:
        """Build the archive; a permanent error becomes a failure notification."""
        metadata: dict[str, Any] | None = None
        if message.begun_before and not self._service.admits(message.job_id, message.continued):
            raise _NotAContinuation
        job_id = message.job_id
        try:
            request = read_job(self._store, message.body, self._service.policy)
            metadata = request.metadata
            plan = self._service.plan(job_id, request, message.created_at)
            url = self._service.url(plan.archive)
            check_metadata_fits(metadata, self._message_bytes(), job_id, url, plan.archive)
            context = {
                "file_count": len(plan.entries),
                "archive_key": plan.archive.key,
                # Metadata may hold personal data: log its keys only.
                "metadata_keys": sorted(metadata)[:20],
            }
            structlog.contextvars.bind_contextvars(**context)
            log.info("job_started", **context)
            reports = progress.job(job_id, metadata, request.notify.progress, message.group)
            archive = self._service.build(
                plan,
                reports,
                cancel=cancel,
                redelivered=message.begun_before,
                due=due,
            )
            answer = succeeded(job_id, url, archive, metadata)
            return self._with_report(answer, archive.missing)
        except PermanentError as error:
            if metadata is None:
                metadata = salvage_metadata(message.body)
            return self._with_report(failed(job_id, error, metadata), error.sources)

    def _handover(self, message: ReceivedMessage, checkpoint: Checkpoint, sent: bool) -> Handover:
        created, holds, token = message.created_at, checkpoint.holds, checkpoint.token
        continuation = Continuation(message.job_id, created, holds, token)
        recorded = partial(self._service.handed_over, checkpoint)
        return Handover(continuation, recorded if sent else None)

    def _with_report(self, answer: Notification, listed: Sequence[str]) -> Notification:
        """An answer whose list had to be cut links to the full report, written beside the
        archive (`{job_id}/report.json`); if that cannot be written, the answer goes without.
        Lists are cut to fit the destination queue's largest message."""
        answer = fitted(answer, self._message_bytes())
        if not omitted(answer):
            return answer
        ref = ObjectRef(self._service.policy.destination_bucket, f"{answer.job_id}/report.json")
        report: Notification
        if isinstance(answer, JobSucceeded):
            full = answer.archive.model_copy(update={"missing": list(listed), "missing_omitted": 0})
            report = answer.model_copy(update={"archive": full})
        else:
            error = answer.error.model_copy(update={"sources": list(listed), "sources_omitted": 0})
            report = answer.model_copy(update={"error": error})
        headers = ObjectHeaders(content_type="application/json")
        try:
            with destination_errors(ref):
                self._store.put(ref, report.model_dump_json().encode("utf-8"), headers)
        except TransientError as error:
            log.warning("report_not_written", error=str(error))
            return answer
        return answer.model_copy(update={"report_url": self._service.url(ref)})

    def _deleted(self, message: ReceivedMessage, failed: bool = False) -> Callable[[], None]:
        """Once the message is deleted, its offloaded body goes too, if
        `DELETE_OFFLOADED_PAYLOADS`; and a `failed` job's checkpoint, if it had one."""

        def delete_offloaded() -> None:
            if failed and message.begun_before:
                self._service.abandon(message.job_id)
            if not self._delete_offloaded:
                return
            try:
                pointer = offloaded_payload(message.body)
                if pointer is not None:
                    self._store.delete(pointer)
            except (InvalidPayload, ObjectUnavailable, TransientError) as error:
                log.warning("offloaded_payload_kept", error=str(error))

        return delete_offloaded
