"""The one place botocore errors become domain errors: permanent or transient, decided once."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import BotoCoreError, ClientError

from archiver.domain.errors import ObjectUnavailable, TransientError, Unavailable

_NOT_FOUND = frozenset({"NoSuchKey", "NoSuchBucket", "NoSuchUpload", "NotFound", "404"})
_DENIED = frozenset({"AccessDenied", "AllAccessDisabled", "Forbidden", "403"})
# What S3 answers for a GET of an object in a Glacier storage class or an archive tier.
_ARCHIVED = frozenset({"InvalidObjectState"})
# We only ask for ranges inside the size and version we saw: the object changed since.
_CHANGED = frozenset({"InvalidRange", "PreconditionFailed", "412", "416"})
# Errors of the deployment rather than the request: a retry after the fix succeeds.
_DEPLOYMENT = frozenset(
    {
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidAccessKeyId",
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "RequestTimeTooSkewed",
        "RequestTimeout",
        "RequestExpired",
    }
)


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _status(error: ClientError) -> int:
    return int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def classify(error: ClientError, location: str) -> ObjectUnavailable | TransientError:
    code = error_code(error)
    status = _status(error)
    if code in _NOT_FOUND:
        return ObjectUnavailable(location, Unavailable.NOT_FOUND, code)
    if code in _DENIED:
        return ObjectUnavailable(location, Unavailable.ACCESS_DENIED, code)
    if code in _ARCHIVED:
        return ObjectUnavailable(location, Unavailable.ARCHIVED, f"{code}: archived, restore it")
    if code in _CHANGED:
        return TransientError(f"{location}: changed while read ({code}), will retry")
    if (
        status >= 500
        or status == 429
        or code in _DEPLOYMENT
        or "Throttl" in code
        or code == "SlowDown"
    ):
        return TransientError(f"{location}: {code or status} (will retry)")
    return ObjectUnavailable(location, Unavailable.UNREADABLE, f"{code or status}: {error}")


@contextmanager
def translated(location: str) -> Iterator[None]:
    """Re-raise botocore errors as ObjectUnavailable or TransientError."""
    try:
        yield
    except ClientError as error:
        raise classify(error, location) from error
    except BotoCoreError as error:
        raise TransientError(f"{location}: {error}") from error


@contextmanager
def transient_only(location: str) -> Iterator[None]:
    """For queues: every failure is ours or the network's, never the job's."""
    try:
        yield
    except (ClientError, BotoCoreError) as error:
        raise TransientError(f"{location}: {error}") from error
