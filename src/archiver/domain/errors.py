"""Error tree keyed by what the worker does next with the message."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class ErrorCode(StrEnum):
    """Failure codes published in `failed` notifications (a public contract)."""

    INVALID_PAYLOAD = "invalid_payload"
    TOO_MANY_FILES = "too_many_files"
    ARCHIVE_TOO_LARGE = "archive_too_large"
    SOURCE_BUCKET_NOT_ALLOWED = "source_bucket_not_allowed"
    SOURCE_NOT_FOUND = "source_not_found"
    SOURCE_ACCESS_DENIED = "source_access_denied"
    SOURCE_UNREADABLE = "source_unreadable"
    ENCRYPTION_SECRET_UNREADABLE = "encryption_secret_unreadable"  # noqa: S105 (a code)
    INTERNAL_ERROR = "internal_error"


class ArchiverError(Exception):
    """Base of every error the domain and the adapters raise on purpose."""


class PermanentError(ArchiverError):
    """The job can never succeed as sent: notify the failure and acknowledge the message."""

    def __init__(self, code: ErrorCode, message: str, sources: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.sources = list(sources)


class InvalidPayload(PermanentError):
    """The message body is not a valid job request."""

    def __init__(self, message: str, sources: Iterable[str] = ()) -> None:
        super().__init__(ErrorCode.INVALID_PAYLOAD, message, sources)


class SecretUnreadable(PermanentError):
    """The job's encryption secret cannot be read, or holds no usable password. Never names
    what the secret holds."""

    def __init__(self, secret: str, detail: str) -> None:
        super().__init__(
            ErrorCode.ENCRYPTION_SECRET_UNREADABLE, f"archive.encryption.secret {secret}: {detail}"
        )


class InternalError(PermanentError):
    """A job that kept failing in a way nobody planned for: given up on its last delivery.

    The message names the exception's class only: a traceback is for the logs, not consumers.
    """

    def __init__(self, error: BaseException, deliveries: int) -> None:
        super().__init__(
            ErrorCode.INTERNAL_ERROR,
            f"{type(error).__name__}: the worker failed unexpectedly on delivery {deliveries}, "
            "the last before the dead-letter queue; the job was given up",
        )


class TransientError(ArchiverError):
    """A retry may succeed (throttling, 5xx, network): leave the message for redelivery."""


class JobCancelled(ArchiverError):
    """The worker is shutting down and the job could not finish in time: release it."""


class CopyRefused(ArchiverError):
    """The store will not copy parts (a permission, or an S3-compatible store without
    `UploadPartCopy`): the job is built again by streaming its bytes."""


class Unavailable(StrEnum):
    NOT_FOUND = "not_found"
    ACCESS_DENIED = "access_denied"
    UNREADABLE = "unreadable"
    ARCHIVED = "archived"  # a Glacier storage class or archive tier: restore it first


class ObjectUnavailable(ArchiverError):
    """An object cannot be read or written, and retrying will not change that.

    Raised by object-store adapters; the caller decides whose fault it is: the job's (a missing
    source: `policy.source_failure`) or the deployment's (a missing destination bucket: the
    engine's `destination_errors`, a transient error).
    """

    def __init__(self, location: str, reason: Unavailable, detail: str) -> None:
        super().__init__(location, reason, detail)  # the message is made when asked for:
        self.location = location  # a job may keep 100,000 of these (its missing sources)
        self.reason = reason
        self.detail = detail

    def __str__(self) -> str:
        return f"{self.location}: {self.detail}"


class ConfigurationError(ArchiverError):
    """Settings are missing or malformed; raised once at start-up."""
