"""Messages archiver sends to SQS_DESTINATION_QUEUE (a public contract: add, never rename).

Every notification fits one SQS message: metadata is bounded when the job is parsed and by the
queue's size before the job runs (`check_metadata_fits`), source lists and messages here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from archiver.domain.document import metadata_bytes
from archiver.domain.errors import ErrorCode, PermanentError
from archiver.domain.job import ObjectRef

MAX_NOTIFICATION_BYTES = 1024 * 1024
"""SQS's largest message (the default `MaximumMessageSize` of a queue made since 2025)."""
MIN_NOTIFICATION_BYTES = 8 * 1024
"""The least a destination queue must take: a failed notification, its message at
`MAX_MESSAGE_CHARS`, nothing listed, little metadata."""
FIT_MARGIN = 4 * 1024
"""Room kept when fitting a notification to its queue: the `report_url` added afterwards and
the `status` message attribute (SQS counts attributes in the message's size)."""
MAX_LISTED_BYTES = 256 * 1024
"""Of `archive.missing` or `error.sources`; the rest is counted, not listed."""
MAX_MESSAGE_CHARS = 2000
_WIDEST = 10**15  # more digits than any size or count a notification carries
# Characters SQS refuses in a message body that JSON does not escape by itself.
_SQS_REFUSED = {"\ufffe": "\\ufffe", "\uffff": "\\uffff"}


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ArchiveInfo(_Message):
    bucket: str
    key: str
    size_bytes: int = Field(ge=0)
    file_count: int = Field(ge=0)
    crc32: str = Field(
        description="The whole archive's CRC-32, base64 of its 4 big-endian bytes: the string S3 "
        "returns as ChecksumCRC32 (checksum mode enabled), which S3 verified at upload."
    )
    sha256: str | None = Field(
        default=None, description="Deprecated, always null: see crc32 (kept for old consumers)."
    )
    missing: list[str] = Field(
        default_factory=list,
        description="Sources left out because they could not be read (MISSING_FILES=skip).",
    )
    missing_omitted: int = Field(
        default=0, ge=0, description="How many more were left out than `missing` lists."
    )


class ArchiveManifest(_Message):
    """Stored beside a completed archive, so a redelivered job re-notifies instead of rebuilding."""

    job_id: str
    fingerprint: str
    archive: ArchiveInfo
    token: str | None = None  # the checkpoint's, if the job had one: its continuations match


class Substitutions(_Message):
    """Template values read by the consumers of the system archiver replaces."""

    archiver_URL: str  # the name consumers already read


class JobSucceeded(_Message):
    model_config = ConfigDict(title="ArchiveSucceeded")

    status: Literal["succeeded"] = "succeeded"
    job_id: str = Field(description="The job message's SQS MessageId: de-duplicate on it.")
    url: str
    archive: ArchiveInfo
    metadata: dict[str, Any]
    substitutions: Substitutions
    report_url: str | None = Field(
        default=None,
        description="The full report ({job_id}/report.json), when `archive.missing` was cut.",
    )


class Failure(_Message):
    code: ErrorCode
    message: str
    sources: list[str] = Field(default_factory=list)
    sources_omitted: int = Field(
        default=0, ge=0, description="How many more sources are concerned than `sources` lists."
    )


class JobFailed(_Message):
    model_config = ConfigDict(title="ArchiveFailed")

    status: Literal["failed"] = "failed"
    job_id: str
    error: Failure
    metadata: dict[str, Any] | None = Field(
        description="The job's metadata; null when the body was too broken to read it, "
        "or the metadata too large for the destination queue to carry.",
    )
    report_url: str | None = Field(
        default=None,
        description="The full report ({job_id}/report.json), when `error.sources` was cut.",
    )


class Progress(_Message):
    files_done: int = Field(ge=0)
    files_total: int = Field(ge=0)
    bytes_done: int = Field(ge=0)
    bytes_total: int = Field(ge=0, description="As far as known: exact once every source is sized.")


class JobRunning(_Message):
    """Sent while a job that asked for it (`notify.progress`) runs; never after its answer."""

    model_config = ConfigDict(title="ArchiveRunning")

    status: Literal["running"] = "running"
    job_id: str
    progress: Progress
    metadata: dict[str, Any]


Notification = Annotated[JobSucceeded | JobFailed | JobRunning, Field(discriminator="status")]
NOTIFICATION_ADAPTER: TypeAdapter[JobSucceeded | JobFailed | JobRunning] = TypeAdapter(Notification)


def omitted(notification: JobSucceeded | JobFailed) -> int:
    """How many listed items the notification had to leave out."""
    if isinstance(notification, JobSucceeded):
        return notification.archive.missing_omitted
    return notification.error.sources_omitted


def _listed_bytes(item: str) -> int:
    """What one listed item adds to a notification: its JSON string and a comma."""
    return len(json.dumps(item, ensure_ascii=False).encode("utf-8", "surrogatepass")) + 1


def _listed(items: Sequence[str]) -> tuple[list[str], int]:
    """As many items as fit MAX_LISTED_BYTES, and how many were left out."""
    kept: list[str] = []
    size = 0
    for item in items:
        size += _listed_bytes(item)
        if size > MAX_LISTED_BYTES:
            break
        kept.append(_printable(item))
    return kept, len(items) - len(kept)


def _printable(text: str) -> str:
    """Text with a UTF-8 form: a stray surrogate is written as its escape."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def succeeded(
    job_id: str, url: str, archive: ArchiveInfo, metadata: dict[str, Any]
) -> JobSucceeded:
    missing, omitted = _listed(archive.missing)
    return JobSucceeded(
        job_id=job_id,
        url=url,
        archive=archive.model_copy(
            update={"missing": missing, "missing_omitted": archive.missing_omitted + omitted}
        ),
        metadata=metadata,
        substitutions=Substitutions(archiver_URL=url),
    )


def failed(job_id: str, error: PermanentError, metadata: dict[str, Any] | None) -> JobFailed:
    message = _printable(error.message)
    if len(message) > MAX_MESSAGE_CHARS:
        message = message[: MAX_MESSAGE_CHARS - 1] + "…"
    sources, omitted = _listed(error.sources)
    return JobFailed(
        job_id=job_id,
        error=Failure(code=error.code, message=message, sources=sources, sources_omitted=omitted),
        metadata=metadata,
    )


def fitted(answer: JobSucceeded | JobFailed, max_bytes: int) -> JobSucceeded | JobFailed:
    """The answer with its list cut (from the end, counted in `*_omitted`) until it fits a
    queue taking `max_bytes` (its `MaximumMessageSize`); as it is if nothing is listed."""
    too_big = max_bytes - MIN_NOTIFICATION_BYTES
    if isinstance(answer, JobFailed) and metadata_bytes(answer.metadata or {}) > too_big:
        answer = answer.model_copy(update={"metadata": None})  # it is what cannot fit
    body = len(notification_body(answer).encode("utf-8"))
    over = body + FIT_MARGIN - max_bytes
    if over > 0:
        over += 20  # the omitted count's digits, which grow as items are dropped
    listed = answer.archive.missing if isinstance(answer, JobSucceeded) else answer.error.sources
    kept = len(listed)
    while over > 0 and kept:
        kept -= 1
        over -= _listed_bytes(listed[kept])
    dropped = len(listed) - kept
    if over > 0 and isinstance(answer, JobFailed) and answer.metadata is not None:
        answer = answer.model_copy(update={"metadata": None})  # the metadata is what is too big
    if not dropped:
        return answer
    if isinstance(answer, JobSucceeded):
        count = answer.archive.missing_omitted + dropped
        update = {"missing": listed[:kept], "missing_omitted": count}
        archive = answer.archive.model_copy(update=update)
        return answer.model_copy(update={"archive": archive})
    count = answer.error.sources_omitted + dropped
    error = answer.error.model_copy(update={"sources": listed[:kept], "sources_omitted": count})
    return answer.model_copy(update={"error": error})


def check_metadata_fits(
    metadata: dict[str, Any], max_bytes: int, job_id: str, url: str, archive: ObjectRef
) -> None:
    """Every notification of the job echoes its metadata: refuse (`invalid_payload`) metadata
    that would not fit in the job's success answer on a queue taking `max_bytes` (nothing
    listed; failure and progress answers are smaller, or may go without it)."""
    empty = ArchiveInfo(
        bucket=archive.bucket,
        key=archive.key,
        size_bytes=_WIDEST,
        file_count=_WIDEST,
        crc32="AAAAAA==",
        missing_omitted=_WIDEST,
    )
    rest = len(notification_body(succeeded(job_id, url, empty, {})).encode("utf-8"))
    room = max_bytes - FIT_MARGIN - rest
    size = len(_sqs_safe(json.dumps(metadata, ensure_ascii=False, separators=(",", ":"))))
    if size > room:
        raise PermanentError(
            ErrorCode.INVALID_PAYLOAD,
            f"metadata: {size:,} bytes as JSON; SQS_DESTINATION_QUEUE takes messages of at "
            f"most {max_bytes:,} bytes (MaximumMessageSize), which leaves {room:,} for the "
            "metadata every answer echoes",
        )


def _sqs_safe(text: str) -> str:
    for char, escape in _SQS_REFUSED.items():
        text = text.replace(char, escape)  # only ever inside a string: JSON syntax is ASCII
    return text


def notification_body(notification: JobSucceeded | JobFailed | JobRunning) -> str:
    """The notification as the JSON an SQS message may carry."""
    return _sqs_safe(notification.model_dump_json())
