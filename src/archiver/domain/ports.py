"""What the domain needs from the outside world, in its own words."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from archiver.domain.checkpoint import Continuation
from archiver.domain.job import ObjectRef
from archiver.domain.notifications import JobFailed, JobRunning, JobSucceeded

Buffer = bytes | bytearray
"""Object data: fetches fill one preallocated bytearray, parts are uploaded without a copy."""


@dataclass(frozen=True, slots=True)  # one per source of a job: 100,000s of them
class ObjectInfo:
    ref: ObjectRef
    size: int
    etag: str | None = None
    """The version read: fetches pass it on, so every range comes from the same object."""
    modified: datetime | None = None
    """Its LastModified: the entry's time in the archive."""


@dataclass(frozen=True)
class ObjectHeaders:
    """How the stored archive presents itself to a browser, plus our own metadata."""

    content_type: str = "application/zip"
    content_disposition: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)


class MultipartUpload(Protocol):
    """An object written in numbered parts (1..10000; all but the last >= 5 MiB), in any order."""

    upload_id: str

    def upload_part(self, number: int, data: Buffer) -> None: ...

    def copy_part(
        self, number: int, source: ObjectRef, start: int, length: int, etag: str | None
    ) -> int | None:
        """Part `number` is `length` bytes of `source` from `start`, copied by the store itself;
        the CRC-32 of those bytes as the store computed them (S3 does, into an upload created
        with CRC32), or None when the store does not say.

        Pinned to `etag` (TransientError if the source changed); ObjectUnavailable names the
        source; CopyRefused when the store will not copy parts (permission, support).
        """
        ...

    def complete(self, crc32: int) -> None:
        """Assemble the parts; `crc32` is the whole object's, which the store verifies."""
        ...

    def abort(self) -> None: ...


class ObjectStore(Protocol):
    """Raises ObjectUnavailable (retrying will not help) or TransientError (it may)."""

    def stat(self, ref: ObjectRef) -> ObjectInfo: ...

    def probe(self, ref: ObjectRef, length: int) -> tuple[ObjectInfo, Buffer]:
        """The object's info and its first `length` bytes (all of it when it is shorter)."""
        ...

    def fetch(self, ref: ObjectRef, start: int, length: int, etag: str | None = None) -> Buffer:
        """`length` bytes from `start`; TransientError if the object changed (etag, size)."""
        ...

    def checksum(self, ref: ObjectRef, etag: str | None) -> int | None:
        """The object's CRC-32 from the checksum stored with it, without reading it: None
        when it has none (or only one that cannot give the whole object's)."""
        ...

    def list_prefix(self, prefix: ObjectRef) -> Iterator[ObjectInfo]:
        """Every object whose key starts with `prefix.key`, in key order, page by page."""
        ...

    def put(self, ref: ObjectRef, data: bytes, headers: ObjectHeaders) -> None: ...

    def delete(self, ref: ObjectRef) -> None:
        """Remove the object (no error if it is already gone)."""
        ...

    def start_upload(self, ref: ObjectRef, headers: ObjectHeaders) -> MultipartUpload: ...

    def resume_upload(
        self, ref: ObjectRef, upload_id: str, parts: int
    ) -> tuple[MultipartUpload, dict[int, int]]:
        """An upload begun earlier, to go on with after its part `parts`, and the size of each
        of its parts 1..`parts`, by number (ListParts); ObjectUnavailable when it is gone
        (completed, aborted). A later part it holds (sent after the checkpoint by an attempt
        that then died) is not named at completion unless sent again."""
        ...

    def presigned_url(self, ref: ObjectRef, expires_in: int) -> str: ...

    def abort_uploads(self, ref: ObjectRef, *, under: bool = False, keep: str | None = None) -> int:
        """Abort every unfinished multipart upload to `ref` (with `under`: to any key that
        starts with `ref.key`) but the one whose id is `keep`; return how many there were."""
        ...

    def check_bucket(self, bucket: str, *, write: bool) -> None:
        """ObjectUnavailable unless the bucket exists and (to write) this worker may use it."""
        ...


@dataclass(frozen=True)
class SecretValue:
    arn: str  # the secret's full ARN, as the store answers it
    text: str | None = field(repr=False)  # its SecretString (None: a binary secret)


class SecretStore(Protocol):
    def read(self, secret: str) -> SecretValue:
        """The current value of a secret (a name or an ARN). Raises SecretUnreadable (unknown,
        refused, cannot be decrypted) or TransientError."""
        ...


@dataclass(frozen=True)
class ReceivedMessage:
    message_id: str
    body: str
    receipt: str
    sent_at: datetime
    receive_count: int
    group: str | None = None  # a FIFO queue's MessageGroupId
    continued: Continuation | None = None  # a continuation of a checkpointed job

    @property
    def job_id(self) -> str:
        """The job's: its first message's id, which every continuation carries on."""
        return self.message_id if self.continued is None else self.continued.job_id

    @property
    def created_at(self) -> datetime:
        return self.sent_at if self.continued is None else self.continued.created_at

    @property
    def begun_before(self) -> bool:
        """Whether an earlier receipt may have begun the job (a redelivery, a continuation):
        it may have left a checkpoint, an archive, an upload."""
        return self.receive_count > 1 or self.continued is not None


class Queue(Protocol):
    """Raises TransientError when the queue cannot be reached."""

    def receive(
        self, max_messages: int, wait_seconds: int, visibility_seconds: int
    ) -> list[ReceivedMessage]: ...

    def delete(self, message: ReceivedMessage) -> None: ...

    def set_visibility(self, message: ReceivedMessage, seconds: int) -> None:
        """Hide the message for `seconds` more (0: visible now); no-op once it is deleted."""
        ...

    def send(
        self, body: str, continuation: Continuation | None = None, group: str | None = None
    ) -> str:
        """A job's message; with `continuation`, one carrying a checkpointed job on (on a FIFO
        queue in message group `group`, deduplicated by the job and its checkpoint)."""
        ...

    def redrive_limit(self) -> int | None:
        """The delivery after which a job goes to the dead-letter queue (None: there is none).

        Also proves the queue exists: ConfigurationError if it does not, or may not be used.
        """
        ...


class Notifier(Protocol):
    def publish(
        self, notification: JobSucceeded | JobFailed | JobRunning, group: str | None = None
    ) -> None:
        """Send it; on a FIFO queue in message group `group` (the job's own, where it came
        from a FIFO queue; else the job id)."""
        ...

    def check(self) -> None:
        """ConfigurationError unless the queue exists, may be used, and takes a notification
        of `MIN_NOTIFICATION_BYTES`."""
        ...

    def max_bytes(self) -> int:
        """The largest message the queue takes (its `MaximumMessageSize`)."""
        ...
