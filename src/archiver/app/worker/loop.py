"""The worker loop: receive jobs, hand each to the use case, carry out its answer.

The loop knows queues and signals: it keeps a job's message hidden while it runs, publishes the
answer's notification (or sends its continuation) and only then deletes the message, or hands
the message back for redelivery. What a job is, it leaves to `Jobs.answer`.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import KW_ONLY, dataclass
from datetime import UTC, datetime
from typing import NamedTuple

import structlog

from archiver.app.jobs.answer import Handover, Jobs, Release, Reply, Retry
from archiver.app.stopping import STOP_POLL_SECONDS, AnyOf
from archiver.app.worker.grace import grace_period, receipt_hold
from archiver.app.worker.heartbeat import VisibilityHeartbeat
from archiver.app.worker.ops import Liveness, Metrics, ScaleInProtection
from archiver.app.worker.outcomes import Done, Outcome
from archiver.app.worker.polling import LongPoll
from archiver.app.worker.progress import ProgressTracker
from archiver.domain.backoff import backoff
from archiver.domain.errors import TransientError
from archiver.domain.notifications import JobFailed
from archiver.domain.ports import Notifier, Queue, ReceivedMessage

log = structlog.get_logger(__name__)

POLL_RETRY_SECONDS = 1.0  # after a failed receive, doubled up to MAX_POLL_RETRY_SECONDS
MAX_POLL_RETRY_SECONDS = 30.0
MAX_RETRY_DELAY = 900  # SQS caps a single visibility change at 12 h; 15 min is plenty
POLL_SLACK_SECONDS = 5.0  # on stop, a long poll's answer may come this long after its wait


@dataclass(frozen=True)
class WorkerOptions:
    wait_seconds: int  # SQS_WAIT_TIME_SECONDS
    visibility_seconds: int  # SQS_VISIBILITY_TIMEOUT
    shutdown_grace: float  # SHUTDOWN_GRACE_SECONDS
    retry_delay_seconds: int  # RETRY_DELAY_SECONDS
    concurrency: int  # WORKER_CONCURRENCY
    poll_retry_seconds: float  # after a failed receive; doubled up to MAX_POLL_RETRY_SECONDS
    max_hold_seconds: float = 41_400  # SQS_MAX_HOLD_SECONDS: then the job is checkpointed


class Ops(NamedTuple):
    """What the worker tells ECS: liveness, job metrics, scale-in protection."""

    liveness: Liveness
    metrics: Metrics
    protection: ScaleInProtection


@dataclass(frozen=True)
class Worker:
    """One worker process's loop; the container builds it once start-up has checked the
    deployment (and read `max_receives` from the source queue's redrive policy)."""

    queue: Queue
    notifier: Notifier
    jobs: Jobs
    options: WorkerOptions
    progress: ProgressTracker
    ops: Ops
    _: KW_ONLY
    max_receives: int | None
    """The redrive policy's; None: no dead-letter queue."""

    def run(self, stop: threading.Event, max_polls: int | None = None) -> Counter[Outcome]:
        """Poll until `stop` is set, then let running jobs finish within the grace period;
        how the jobs it ran ended.

        Up to `concurrency` jobs run at once; the loop only asks for as many messages as it
        has free slots, so nothing waits hidden in this process while another worker is idle.
        """
        options = self.options
        log.info(
            "worker_started",
            wait_seconds=options.wait_seconds,
            visibility=options.visibility_seconds,
            concurrency=options.concurrency,
        )
        self.ops.liveness.beat()  # healthy from the start, before the first long poll returns
        polls, failures = 0, 0
        running: set[Future[Outcome]] = set()
        ended: Counter[Outcome] = Counter()
        polling = LongPoll(self._receive, lambda message: self._set_visibility(message, 0))
        pool = ThreadPoolExecutor(options.concurrency, thread_name_prefix="job")
        with grace_period(stop, options.shutdown_grace) as (handover, cancel):
            try:
                while not stop.is_set() and (max_polls is None or polls < max_polls):
                    running = self._tally(running, ended)
                    self.ops.protection.refresh()
                    if len(running) >= options.concurrency:
                        wait(running, timeout=STOP_POLL_SECONDS, return_when=FIRST_COMPLETED)
                        continue
                    polls += 1
                    poll = polling.start(options.concurrency - len(running))
                    if not polling.settled(poll, stop):
                        # finished, so that what it brings goes back rather than stays hidden
                        polling.finish(poll, options.wait_seconds + POLL_SLACK_SECONDS)
                        break
                    try:
                        messages = poll.result()
                        self.ops.liveness.beat()  # polled: the loop is alive
                        failures = 0
                    except TransientError as error:
                        delay = backoff(
                            failures, options.poll_retry_seconds, MAX_POLL_RETRY_SECONDS
                        )
                        log.warning("receive_failed", error=str(error), retry_in=delay)
                        stop.wait(delay)
                        failures += 1
                        continue
                    for message in messages:
                        if stop.is_set():
                            self._set_visibility(message, 0)  # arrived during shutdown: hand back
                        else:
                            running.add(pool.submit(self.handle, message, cancel, handover))
                wait(running)
            finally:
                pool.shutdown(wait=True)
        self._tally(running, ended)
        log.info("worker_stopped", polls=polls, **{str(k): v for k, v in ended.items()})
        return ended

    @staticmethod
    def _tally(running: set[Future[Outcome]], ended: Counter[Outcome]) -> set[Future[Outcome]]:
        """The jobs still running; those that ended counted by outcome."""
        for job in running:
            if job.done() and job.exception() is None:
                ended[job.result()] += 1
        return {job for job in running if not job.done()}

    def _receive(self, count: int) -> list[ReceivedMessage]:
        return self.queue.receive(
            max_messages=min(count, 10),
            wait_seconds=self.options.wait_seconds,
            visibility_seconds=self.options.visibility_seconds,
        )

    def handle(
        self,
        message: ReceivedMessage,
        cancel: threading.Event,
        handover: threading.Event | None = None,
    ) -> Outcome:
        """One message, start to end: the job's answer carried out, and measured (`handover`:
        the worker is stopping, the job is to stop for a checkpoint)."""
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(
            job_id=message.job_id, receive_count=message.receive_count
        )
        if message.continued is not None:
            structlog.contextvars.bind_contextvars(holds=message.continued.holds)
        self.ops.protection.job_started()
        started = time.monotonic()
        try:
            done = self._carry_out(message, cancel, handover or threading.Event(), started)
            self.ops.metrics.job(
                done.outcome.value,
                code=done.code,
                duration_s=time.monotonic() - started,
                queue_wait_s=(datetime.now(UTC) - message.sent_at).total_seconds(),
                archive_bytes=done.archive_bytes,
                file_count=done.file_count,
            )
            return done.outcome
        finally:
            self.ops.protection.job_ended()
            structlog.contextvars.clear_contextvars()

    def _carry_out(
        self,
        message: ReceivedMessage,
        cancel: threading.Event,
        handover: threading.Event,
        started: float,
    ) -> Done:
        """The answer, carried out."""
        took = {"duration_s": 0.0}
        visibility = self.options.visibility_seconds
        try:
            with (
                receipt_hold(self.options.max_hold_seconds) as hold,
                VisibilityHeartbeat(self.queue, message, visibility),
            ):
                stops = AnyOf(cancel, hold.cancel), AnyOf(hold.handover, handover)
                answer = self.jobs.answer(message, self.progress, *stops)
                took["duration_s"] = round(time.monotonic() - started, 3)
                if isinstance(answer, Handover):  # the continuation first: nothing is lost
                    if answer.sent is not None:
                        self.queue.send(message.body, answer.continuation, message.group)
                        answer.sent()
                    self.queue.delete(message)
                    holds, superseded = answer.continuation.holds, answer.sent is None
                    log.info(
                        "job_continued",
                        holds=holds,
                        superseded=superseded,
                        decision="continue",
                        **took,
                    )
                    return Done(Outcome.CONTINUED)
                if isinstance(answer, Retry) and answer.crashed and self._last_delivery(message):
                    log.error(
                        "job_crashed", exc_info=answer.error, decision="notify_and_delete", **took
                    )
                    return self._last_word(message, answer.last_word)
                if (
                    isinstance(answer, Release)
                    and hold.cancel.is_set()
                    and self._last_delivery(message)
                ):  # out of time on every delivery: it would never finish
                    log.error("job_released", reason=answer.reason, decision="notify_and_delete")
                    return self._last_word(message, answer.last_word)
                if isinstance(answer, Reply):
                    self.notifier.publish(answer.notification, message.group)
                    self.queue.delete(message)
        except TransientError as error:  # the notification or the delete did not go through
            answer = Retry(str(error))
        except Exception as error:  # a bug there: redelivered, then dead-lettered
            answer = Retry(repr(error), error)
        if isinstance(answer, Release):
            log.warning("job_released", reason=answer.reason, decision="release", **took)
            self._set_visibility(message, 0)
            return Done(Outcome.RELEASED)
        if isinstance(answer, Retry):
            delay = self._retry_delay(message)
            self._set_visibility(message, delay)
            if answer.crashed:
                log.error(
                    "job_crashed",
                    exc_info=answer.error,
                    decision="redeliver",
                    retry_in=delay,
                    **took,
                )
                return Done(Outcome.DEFERRED, "crashed")
            log.warning("job_deferred", error=answer.reason, decision="redeliver", retry_in=delay)
            return Done(Outcome.DEFERRED)
        answer.deleted()
        notification = answer.notification
        if isinstance(notification, JobFailed):
            log.warning(
                "job_failed",
                **took,
                code=notification.error.code,
                reason=notification.error.message,
                sources=notification.error.sources[:10],
                decision="notify_and_delete",
            )
            return Done(Outcome.FAILED, notification.error.code)
        archive = notification.archive
        log.info(
            "job_succeeded",
            **took,
            bytes=archive.size_bytes,
            file_count=archive.file_count,
            missing=len(archive.missing),
        )
        return Done(Outcome.SUCCEEDED, None, archive.size_bytes, archive.file_count)

    def _last_delivery(self, message: ReceivedMessage) -> bool:
        return self.max_receives is not None and message.receive_count >= self.max_receives

    def _last_word(self, message: ReceivedMessage, last_word: Reply | None) -> Done:
        """The job failed the same way on every delivery (crashed, or out of time): the
        consumer hears it once, rather than the job going silently to the dead-letter queue."""
        assert last_word is not None
        assert isinstance(last_word.notification, JobFailed)
        try:
            self.notifier.publish(last_word.notification, message.group)
            self.queue.delete(message)
        except Exception as unsent:  # nothing more to try: the dead-letter queue keeps it
            log.warning("give_up_failed", error=repr(unsent), decision="dead_letter")
            return Done(Outcome.DEFERRED, "crashed")
        last_word.deleted()
        return Done(Outcome.FAILED, last_word.notification.error.code)

    def _retry_delay(self, message: ReceivedMessage) -> int:
        """Exponential backoff by delivery count, so a struggling dependency is not hammered."""
        first = self.options.retry_delay_seconds
        return int(backoff(message.receive_count - 1, first, MAX_RETRY_DELAY))

    def _set_visibility(self, message: ReceivedMessage, seconds: int) -> None:
        try:
            self.queue.set_visibility(message, seconds)
        except TransientError as error:  # it reappears when its visibility runs out anyway
            log.warning("visibility_change_failed", error=str(error), seconds=seconds)
