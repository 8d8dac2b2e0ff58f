"""Messages archiver sends to SQS_DESTINATION_QUEUE (a public contract: add, never rename)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from archiver.domain.errors import ErrorCode, PermanentError


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ArchiveInfo(_Message):
    bucket: str
    key: str
    size_bytes: int = Field(ge=0)
    file_count: int = Field(ge=0)
    sha256: str | None = Field(
        description="SHA-256 of the archive; null when an entry was too large to hash in one pass."
    )
    missing: list[str] = Field(
        default_factory=list,
        description="Sources left out because they could not be read (MISSING_FILES=skip).",
    )


class ArchiveManifest(_Message):
    """Stored beside a completed archive, so a redelivered job re-notifies instead of rebuilding."""

    job_id: str
    fingerprint: str
    archive: ArchiveInfo


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


class Failure(_Message):
    code: ErrorCode
    message: str
    sources: list[str] = Field(default_factory=list)


class JobFailed(_Message):
    model_config = ConfigDict(title="ArchiveFailed")

    status: Literal["failed"] = "failed"
    job_id: str
    error: Failure
    metadata: dict[str, Any] | None = Field(
        description="The job's metadata; null when the body was too broken to read it."
    )


Notification = Annotated[JobSucceeded | JobFailed, Field(discriminator="status")]
NOTIFICATION_ADAPTER: TypeAdapter[JobSucceeded | JobFailed] = TypeAdapter(Notification)


def succeeded(
    job_id: str, url: str, archive: ArchiveInfo, metadata: dict[str, Any]
) -> JobSucceeded:
    return JobSucceeded(
        job_id=job_id,
        url=url,
        archive=archive,
        metadata=metadata,
        substitutions=Substitutions(archiver_URL=url),
    )


def failed(job_id: str, error: PermanentError, metadata: dict[str, Any] | None) -> JobFailed:
    return JobFailed(
        job_id=job_id,
        error=Failure(code=error.code, message=error.message, sources=error.sources),
        metadata=metadata,
    )
