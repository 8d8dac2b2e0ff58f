"""Working in-memory adapters: the unit tests' S3 and SQS, held to the same contract suite."""

from __future__ import annotations

import hashlib
import itertools
import threading
import uuid
import zlib
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime

from archiver.domain.errors import (
    ConfigurationError,
    ObjectUnavailable,
    TransientError,
    Unavailable,
)
from archiver.domain.job import ObjectRef
from archiver.domain.notifications import (
    MAX_NOTIFICATION_BYTES,
    NOTIFICATION_ADAPTER,
    JobFailed,
    JobSucceeded,
    notification_body,
)
from archiver.domain.ports import Buffer, ObjectHeaders, ObjectInfo, ReceivedMessage

MIN_PART_SIZE = 5 * 1024 * 1024
MAX_PARTS = 10_000


@dataclass(frozen=True)
class SyntheticBody:
    """A large object the fake streams without holding: `size` bytes of a repeated block."""

    size: int
    block: bytes = bytes(range(256)) * 256

    def slice(self, start: int, length: int) -> bytes:
        length = max(0, min(length, self.size - start))
        offset = start % len(self.block)
        repeats = (offset + length) // len(self.block) + 1
        return (self.block * repeats)[offset : offset + length]


def _size(body: bytes | SyntheticBody) -> int:
    return body.size if isinstance(body, SyntheticBody) else len(body)


def _etag(body: bytes | SyntheticBody) -> str:
    if isinstance(body, SyntheticBody):
        return f'"synthetic-{body.size}"'
    return f'"{hashlib.md5(body, usedforsecurity=False).hexdigest()}"'


class MemoryObjectStore:
    """Objects in a dict; multipart uploads that enforce S3's part rules."""

    def __init__(self, min_part_size: int = MIN_PART_SIZE) -> None:
        self.min_part_size = min_part_size
        self.buckets: set[str] = set()
        self.objects: dict[ObjectRef, bytes | SyntheticBody] = {}
        self.headers: dict[ObjectRef, ObjectHeaders] = {}
        self.uploads: dict[str, MemoryMultipartUpload] = {}
        self.faults: dict[ObjectRef, Exception] = {}
        """Errors to raise on the next access to an object (consumed once): fault injection."""
        self._lock = threading.Lock()

    def create_bucket(self, bucket: str) -> None:
        self.buckets.add(bucket)

    def add(self, ref: ObjectRef, body: bytes | SyntheticBody) -> None:
        self.buckets.add(ref.bucket)
        self.objects[ref] = body

    def _check(self, ref: ObjectRef, *, must_exist: bool) -> None:
        with self._lock:
            fault = self.faults.pop(ref, None)
        if fault is not None:
            raise fault
        if ref.bucket not in self.buckets:
            raise ObjectUnavailable(str(ref), Unavailable.NOT_FOUND, "no such bucket")
        if must_exist and ref not in self.objects:
            raise ObjectUnavailable(str(ref), Unavailable.NOT_FOUND, "no such key")

    def stat(self, ref: ObjectRef) -> ObjectInfo:
        self._check(ref, must_exist=True)
        body = self.objects[ref]
        return ObjectInfo(ref, _size(body), _etag(body))

    def probe(self, ref: ObjectRef, length: int) -> tuple[ObjectInfo, Buffer]:
        info = self.stat(ref)
        return info, self.fetch(ref, 0, min(length, info.size), info.etag)

    def fetch(self, ref: ObjectRef, start: int, length: int, etag: str | None = None) -> Buffer:
        self._check(ref, must_exist=True)
        body = self.objects[ref]
        if etag is not None and etag != _etag(body):
            raise TransientError(f"{ref}: changed while read (PreconditionFailed)")
        if start + length > _size(body):
            raise TransientError(f"{ref}: changed while read (InvalidRange)")
        return (
            body.slice(start, length)
            if isinstance(body, SyntheticBody)
            else body[start : start + length]
        )

    def put(self, ref: ObjectRef, data: bytes, headers: ObjectHeaders) -> None:
        self._check(ref, must_exist=False)
        self.objects[ref] = bytes(data)
        self.headers[ref] = headers

    def start_upload(self, ref: ObjectRef, headers: ObjectHeaders) -> MemoryMultipartUpload:
        self._check(ref, must_exist=False)
        upload = MemoryMultipartUpload(self, ref, headers)
        self.uploads[upload.upload_id] = upload
        return upload

    def presigned_url(self, ref: ObjectRef, expires_in: int) -> str:
        return f"memory://{ref.bucket}/{ref.key}?expires_in={expires_in}"

    def abort_uploads(self, ref: ObjectRef) -> int:
        stale = [upload for upload in list(self.uploads.values()) if upload.ref == ref]
        for upload in stale:
            upload.abort()
        return len(stale)

    def check_bucket(self, bucket: str, *, write: bool) -> None:
        self._check(ObjectRef(bucket, ""), must_exist=False)

    def _finish(self, upload: MemoryMultipartUpload, data: bytes | None) -> None:
        with self._lock:
            self.uploads.pop(upload.upload_id, None)
            if data is not None:
                self.objects[upload.ref] = data
                self.headers[upload.ref] = upload.headers


@dataclass
class MemoryMultipartUpload:
    store: MemoryObjectStore
    ref: ObjectRef
    headers: ObjectHeaders
    upload_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    parts: dict[int, bytes] = field(default_factory=dict)

    def upload_part(self, number: int, data: Buffer) -> None:
        if self.upload_id not in self.store.uploads:
            raise ObjectUnavailable(str(self.ref), Unavailable.NOT_FOUND, "no such upload")
        if not 1 <= number <= MAX_PARTS:
            raise ValueError(f"part number {number} is outside 1..{MAX_PARTS}")
        self.parts[number] = bytes(data)

    def complete(self, crc32: int) -> None:
        if self.upload_id not in self.store.uploads:
            raise ObjectUnavailable(str(self.ref), Unavailable.NOT_FOUND, "no such upload")
        numbers = sorted(self.parts)
        if not numbers:
            raise ValueError("a multipart upload needs at least one part")
        for number in numbers[:-1]:
            if len(self.parts[number]) < self.store.min_part_size:
                raise ObjectUnavailable(str(self.ref), Unavailable.UNREADABLE, "EntityTooSmall")
        data = b"".join(self.parts[number] for number in numbers)
        if zlib.crc32(data) != crc32:
            raise ObjectUnavailable(str(self.ref), Unavailable.UNREADABLE, "BadDigest")
        self.store._finish(self, data)

    def abort(self) -> None:
        self.store._finish(self, None)


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

    def send(self, body: str, sent_at: datetime | None = None) -> str:
        message_id = f"{self.name}-{next(self._ids):06d}-{uuid.uuid4().hex[:8]}"
        sent = sent_at or datetime.now(UTC)
        with self._arrived:
            self.visible.append(ReceivedMessage(message_id, body, "", sent, 0))
            self._arrived.notify_all()
        return message_id

    def receive(
        self, max_messages: int, wait_seconds: int, visibility_seconds: int = 30
    ) -> list[ReceivedMessage]:
        """Waits up to `wait_seconds` for a message, as an SQS long poll does."""
        with self._arrived:
            self.polling += 1
            self._arrived.notify_all()
            self._arrived.wait_for(lambda: bool(self.visible), timeout=wait_seconds)
            self.polling -= 1
            return self._take(max_messages, visibility_seconds)

    def _take(self, max_messages: int, visibility_seconds: int) -> list[ReceivedMessage]:
        received: list[ReceivedMessage] = []
        while self.visible and len(received) < max_messages:
            message = self.visible.popleft()
            delivery = ReceivedMessage(
                message.message_id,
                message.body,
                uuid.uuid4().hex,
                message.sent_at,
                message.receive_count + 1,
            )
            self.in_flight[delivery.receipt] = delivery
            self.visibility_changes.append((delivery.message_id, visibility_seconds))
            received.append(delivery)
        return received

    def delete(self, message: ReceivedMessage) -> None:
        with self._lock:
            delivered = self.in_flight.pop(message.receipt, None)
            if delivered is not None:
                self.deleted.append(delivered)

    def set_visibility(self, message: ReceivedMessage, seconds: int) -> None:
        with self._arrived:
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
        self.published: list[JobSucceeded | JobFailed] = []
        self.bodies: list[str] = []
        self.exists = True

    def publish(self, notification: JobSucceeded | JobFailed) -> None:
        body = notification_body(notification)  # raises where the real notifier would
        if len(body.encode("utf-8")) > MAX_NOTIFICATION_BYTES:
            raise TransientError(f"the notification is {len(body.encode()):,} bytes, over SQS's")
        self.bodies.append(body)
        self.published.append(NOTIFICATION_ADAPTER.validate_json(body))

    def check(self) -> None:
        if not self.exists:
            raise ConfigurationError("the destination queue does not exist")
