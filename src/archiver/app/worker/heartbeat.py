"""Keep a running job's message hidden, so SQS never hands it to a second worker."""

from __future__ import annotations

import threading
from types import TracebackType

import structlog

from archiver.domain.errors import TransientError
from archiver.domain.ports import Queue, ReceivedMessage

log = structlog.get_logger(__name__)


class VisibilityHeartbeat:
    """Every third of the visibility timeout, push the message's visibility a full timeout ahead.

    A missed beat (queue briefly unreachable) is logged and retried at the next one, which
    still comes before expiry. Stops as soon as the job ends.
    """

    def __init__(self, queue: Queue, message: ReceivedMessage, timeout_seconds: int) -> None:
        self._queue = queue
        self._message = message
        self._timeout = timeout_seconds
        self._interval = max(timeout_seconds / 3, 0.5)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="heartbeat", daemon=True)

    def __enter__(self) -> VisibilityHeartbeat:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._stopped.set()
        self._thread.join()

    def _beat(self) -> None:
        context = structlog.contextvars.get_contextvars()
        while not self._stopped.wait(self._interval):
            try:
                self._queue.set_visibility(self._message, self._timeout)
            except TransientError as error:
                log.warning("heartbeat_failed", error=str(error), **context)
