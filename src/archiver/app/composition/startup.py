"""Start-up: prove the queues and buckets are there before the first job, within a deadline.

A wrong name or URL stops the worker at once (exit 2, naming the variable); an endpoint that
fails or never answers is retried until `STARTUP_TIMEOUT_SECONDS`. The checks run on a daemon
thread, so neither a hung connection nor the deadline keeps SIGTERM waiting.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from functools import partial
from typing import TypeVar

import structlog

from archiver.app.composition.container import Container
from archiver.app.composition.settings import Settings
from archiver.app.stopping import STOP_POLL_SECONDS
from archiver.app.worker.loop import Worker
from archiver.domain.backoff import backoff
from archiver.domain.errors import ConfigurationError, ObjectUnavailable, TransientError

log = structlog.get_logger(__name__)

FIRST_RETRY_SECONDS = 0.5
MAX_RETRY_SECONDS = 5.0
T = TypeVar("T")


def _named(variable: str, value: str | None, check: Callable[[], T]) -> T:
    try:
        return check()
    except (ConfigurationError, ObjectUnavailable) as error:
        raise ConfigurationError(f"{variable}={value!r}: {error}") from error


def check_deployment(container: Container, settings: Settings) -> int | None:
    """Every queue and bucket the worker uses, checked once; the source queue's redrive limit."""
    limit = _named(
        "SQS_SOURCE_QUEUE", settings.sqs_source_queue, container.source_queue().redrive_limit
    )
    _named("SQS_DESTINATION_QUEUE", settings.sqs_destination_queue, container.notifier().check)
    store = container.object_store()
    for variable, bucket, write in (
        ("S3_DESTINATION_BUCKET", settings.s3_destination_bucket, True),
        ("S3_SOURCE_BUCKET", settings.s3_source_bucket, False),
    ):
        if bucket:
            _named(variable, bucket, partial(store.check_bucket, bucket, write=write))
    if limit is None:
        log.warning("no_dead_letter_queue", queue=settings.sqs_source_queue)
    return limit


def _endpoint(settings: Settings) -> str:
    if settings.aws_endpoint_url:
        return f"AWS_ENDPOINT_URL={settings.aws_endpoint_url}"
    return f"AWS in {settings.aws_region}"


class _Attempts:
    """The checks, retried on a daemon thread until they pass, fail for good, or time runs out."""

    def __init__(self, container: Container, settings: Settings, stop: threading.Event) -> None:
        self.outcome: Future[int | None] = Future()
        self.last_error: str | None = None
        self._container = container
        self._settings = settings
        self._stop = stop

    def run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                self.outcome.set_result(check_deployment(self._container, self._settings))
                return
            except TransientError as error:
                self.last_error = str(error)
                delay = backoff(failures, FIRST_RETRY_SECONDS, MAX_RETRY_SECONDS)
                log.warning("start_up_retry", error=self.last_error, retry_in=delay)
            except Exception as error:  # ConfigurationError, or a bug: either ends the start-up
                self.outcome.set_exception(error)
                return
            self._stop.wait(delay)
            failures += 1


def start_worker(container: Container, settings: Settings, stop: threading.Event) -> Worker | None:
    """The worker, once its deployment is proven; None when asked to stop first.

    Raises ConfigurationError (one line, for exit 2) for a wrong setting or an endpoint that
    does not answer in time.
    """
    attempts = _Attempts(container, settings, stop)
    threading.Thread(target=attempts.run, name="start-up", daemon=True).start()
    deadline = time.monotonic() + settings.startup_timeout_seconds
    while not attempts.outcome.done():
        if stop.wait(STOP_POLL_SECONDS):
            log.info("stopped_during_start_up")
            return None
        if time.monotonic() > deadline:
            stop.set()  # the checks thread gives up too, should its call ever return
            reason = attempts.last_error or "no answer"
            raise ConfigurationError(
                f"start-up gave up after {settings.startup_timeout_seconds:g} s "
                f"(STARTUP_TIMEOUT_SECONDS) talking to {_endpoint(settings)}: {reason}"
            )
    limit = attempts.outcome.result()
    log.info("start_up_checked", max_receives=limit)
    return container.worker(max_receives=limit)
