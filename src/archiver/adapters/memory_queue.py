"""Working in-memory SQS: the unit tests' job queue and notification queue, held to the same
contract suite as the real adapters."""

from __future__ import annotations

import itertools
import threading
import uuid
from collections import deque
from dataclasses import replace
from datetime import UTC, datetime

from archiver.domain.checkpoint import Continuation
from archiver.domain.errors import ConfigurationError, TransientError
from archiver.domain.notifications import (
    MAX_NOTIFICATION_BYTES,
    NOTIFICATION_ADAPTER,
    JobFailed,
    JobRunning,
    JobSucceeded,
    notification_body,
)
from archiver.domain.ports import ReceivedMessage


class MemoryQueue:
    """FIFO-ish queue with visibility: received messages return unless deleted."""

    def __init__(self, name: str = "memory-queue", redrive_limit: int | None = None) -> None:
        self.name = name
        self.max_receives = redrive_limit
        self.exists = True
        self.visible: deque[ReceivedMessage] = deque()
        self.in_flight: dict[str, ReceivedMessage] = {}
        self.deleted: list[ReceivedMessage] = []
        self.visibility_changes: list[tuple[str, int]] = []
        """(message id, seconds) of every visibility change, receives included."""
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self.polling = 0
        """Receives waiting for a message now (long polls)."""
        self._faults: dict[str, list[Exception]] = {}
        self._closed = False

    def fail_next(self, operation: str, count: int, error: Exception) -> None:
        """A fault hook: the next `count` calls of `operation` ("receive", "delete",
        "set_visibility") raise `error` instead."""
        with self._lock:
            self._faults.setdefault(operation, []).extend([error] * count)

    def _fault(self, operation: str) -> None:
        """Raise the next fault set for `operation` (the lock held)."""
        faults = self._faults.get(operation)
        if faults:
            raise faults.pop(0)

    def close(self) -> None:
        """End every long poll now (a test's end: no receive outlives it)."""
        with self._arrived:
            self._closed = True
            self._arrived.notify_all()

    def send(
        self,
        body: str,
        continuation: Continuation | None = None,
        group: str | None = None,
        *,
        sent_at: datetime | None = None,
    ) -> str:
        message_id = f"{self.name}-{next(self._ids):06d}-{uuid.uuid4().hex[:8]}"
        sent = sent_at or datetime.now(UTC)
        message = ReceivedMessage(message_id, body, "", sent, 0, group, continuation)
        with self._arrived:
            self.visible.append(message)
            self._arrived.notify_all()
        return message_id

    def receive(
        self, max_messages: int, wait_seconds: int, visibility_seconds: int = 30
    ) -> list[ReceivedMessage]:
        """Waits up to `wait_seconds` for a message, as an SQS long poll does."""
        with self._arrived:
            self._fault("receive")
            self.polling += 1
            self._arrived.notify_all()
            self._arrived.wait_for(lambda: bool(self.visible) or self._closed, wait_seconds)
            self.polling -= 1
            return self._take(max_messages, visibility_seconds)

    def _take(self, max_messages: int, visibility_seconds: int) -> list[ReceivedMessage]:
        received: list[ReceivedMessage] = []
        while self.visible and len(received) < max_messages:
            message = self.visible.popleft()
            delivery = replace(
                message, receipt=uuid.uuid4().hex, receive_count=message.receive_count + 1
            )
            self.in_flight[delivery.receipt] = delivery
            self.visibility_changes.append((delivery.message_id, visibility_seconds))
            received.append(delivery)
        return received

    def delete(self, message: ReceivedMessage) -> None:
        with self._lock:
            self._fault("delete")
            delivered = self.in_flight.pop(message.receipt, None)
            if delivered is not None:
                self.deleted.append(delivered)

    def set_visibility(self, message: ReceivedMessage, seconds: int) -> None:
        with self._arrived:
            self._fault("set_visibility")
            if message.receipt not in self.in_flight:
                return
            self.visibility_changes.append((message.message_id, seconds))
            if seconds == 0:
                self.visible.append(self.in_flight.pop(message.receipt))
                self._arrived.notify_all()

    def wait_for_poll(self, timeout: float = 5.0) -> bool:
        """Block until a receive is waiting (for tests of what happens during a long poll)."""
        with self._arrived:
            return self._arrived.wait_for(lambda: self.polling > 0, timeout=timeout)

    def redrive_limit(self) -> int | None:
        if not self.exists:
            raise ConfigurationError(f"queue {self.name}: does not exist")
        return self.max_receives

    def expire_visibility(self) -> None:
        """Simulate every in-flight message's visibility timeout running out."""
        with self._arrived:
            for receipt in list(self.in_flight):
                self.visible.append(self.in_flight.pop(receipt))
            self._arrived.notify_all()


class MemoryNotifier:
    """Keeps what an SQS consumer would read: the body as sent, refused as SQS refuses it."""

    def __init__(self) -> None:
        self.published: list[JobSucceeded | JobFailed | JobRunning] = []
        self.bodies: list[str] = []
        self.exists = True
        self.max_message_bytes = MAX_NOTIFICATION_BYTES
        self._faults: list[Exception] = []

    def fail_next(self, count: int, error: Exception) -> None:
        """A fault hook: the next `count` publishes raise `error` instead."""
        self._faults.extend([error] * count)

    def publish(
        self, notification: JobSucceeded | JobFailed | JobRunning, group: str | None = None
    ) -> None:
        if self._faults:
            raise self._faults.pop(0)
        body = notification_body(notification)  # raises where the real notifier would
        if len(body.encode("utf-8")) > self.max_message_bytes:
            raise TransientError(f"the notification is {len(body.encode()):,} bytes, over SQS's")
        self.bodies.append(body)
        self.published.append(NOTIFICATION_ADAPTER.validate_json(body))

    def check(self) -> None:
        if not self.exists:
            raise ConfigurationError("the destination queue does not exist")

    def max_bytes(self) -> int:
        return self.max_message_bytes
