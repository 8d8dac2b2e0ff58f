"""The job request: its schema, parsing at the edge, and source references."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from archiver.domain.document import check_document, check_metadata
from archiver.domain.errors import InvalidPayload
from archiver.domain.options import ArchiveOptions, NotifyOptions

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")
MAX_KEY_BYTES = 1024
MAX_REPORTED_ERRORS = 5


@dataclass(frozen=True, order=True, slots=True)  # one per entry of a job: 100,000s of them
class ObjectRef:
    """An object's address in the object store."""

    bucket: str
    key: str

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def split_source(source: str) -> tuple[str | None, str]:
    """`s3://bucket/key` -> (bucket, key); a bare key -> (None, key). Raises ValueError."""
    if "://" in source:
        scheme, _, rest = source.partition("://")
        if scheme.lower() != "s3":
            raise ValueError(f"unsupported scheme {scheme!r}: use an S3 key or s3://bucket/key")
        bucket, _, key = rest.partition("/")
        if not _BUCKET.match(bucket):
            raise ValueError(f"invalid bucket name {bucket!r}")
    else:
        bucket, key = None, source
    if not key:
        raise ValueError("the object key is empty")
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise ValueError(f"the object key is longer than {MAX_KEY_BYTES} bytes")
    if any(segment in (".", "..") for segment in key.split("/")):
        # A proxy or SDK that collapses them would read another key, even another bucket.
        raise ValueError("the object key has a '.' or '..' segment")
    return bucket, key


class FileSpec(BaseModel):
    """One file to put in the archive."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        # What `_one_origin` checks, for the published schema.
        json_schema_extra={
            "oneOf": [
                {"required": ["source"]},
                {"required": ["prefix"], "not": {"required": ["name"]}},
            ]
        },
    )

    source: str | None = Field(
        default=None,
        min_length=1,
        description="A key in S3_SOURCE_BUCKET, or s3://bucket/key (or give `prefix`).",
        examples=["example-directory/uuid1.png", "s3://other-bucket/dir/uuid2.png"],
    )
    prefix: str | None = Field(
        default=None,
        min_length=1,
        description="Every object under this key prefix (a folder), in key order, each under its "
        "path relative to the prefix; zero-byte keys ending in / are skipped. A key prefix in "
        "S3_SOURCE_BUCKET or s3://bucket/prefix; instead of `source`, without `name`.",
        examples=["albums/2026/wedding/", "s3://other-bucket/albums/"],
    )
    destination: str | None = Field(
        default=None,
        description="Folder inside the archive, may be nested (a/b); absent or empty: the root.",
    )
    name: str | None = Field(
        default=None, description="File name in the archive; default: the source key's last part."
    )

    @field_validator("source")
    @classmethod
    def _source_is_addressable(cls, source: str | None) -> str | None:
        if source is not None:
            split_source(source)
        return source

    @field_validator("prefix")
    @classmethod
    def _prefix_is_addressable(cls, prefix: str | None) -> str | None:
        if prefix is not None:
            split_source(prefix)  # a key prefix is addressed like a key
        return prefix

    @model_validator(mode="after")
    def _one_origin(self) -> FileSpec:
        if self.source is None and self.prefix is None:
            raise ValueError("source is required (or prefix)")
        if self.source is not None and self.prefix is not None:
            raise ValueError("give source or prefix, not both")
        if self.prefix is not None and self.name is not None:
            raise ValueError("a prefix takes no name: each of its objects keeps its own")
        return self

    def ref(self, default_bucket: str) -> ObjectRef:
        """The source's address, or the prefix's (its key is the prefix)."""
        if self.prefix is not None:
            bucket, key = split_source(self.prefix)
        else:
            assert self.source is not None
            bucket, key = split_source(self.source)
        return ObjectRef(bucket or default_bucket, key)


class JobRequest(BaseModel):
    """The message a producer puts on SQS_SOURCE_QUEUE."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        title="ArchiveJob",
        json_schema_extra={"oneOf": [{"required": ["files"]}, {"required": ["files_from"]}]},
    )

    files: list[FileSpec] | None = Field(
        default=None, min_length=1, description="Files in archive order (or give `files_from`)."
    )
    files_from: str | None = Field(
        default=None,
        min_length=1,
        description="Instead of `files`: an object (a key in S3_SOURCE_BUCKET, or s3://bucket/key) "
        "holding the file items as one JSON array or as JSON Lines, at most 64 MiB.",
        examples=["s3://lists/job-42.jsonl"],
    )
    archive: ArchiveOptions = Field(default_factory=ArchiveOptions)
    notify: NotifyOptions = Field(default_factory=NotifyOptions)
    metadata: dict[str, Any] = Field(
        default_factory=dict,
        description="Any JSON object, at most 32 levels deep and 256 KiB as JSON; echoed verbatim "
        "in the notification.",
    )

    @field_validator("metadata")
    @classmethod
    def _metadata_is_notifiable(cls, metadata: dict[str, Any]) -> dict[str, Any]:
        check_metadata(metadata)
        return metadata

    @field_validator("files_from")
    @classmethod
    def _list_is_addressable(cls, files_from: str | None) -> str | None:
        if files_from is not None:
            split_source(files_from)
        return files_from

    @model_validator(mode="after")
    def _one_list(self) -> JobRequest:
        if self.files is None and self.files_from is None:
            raise ValueError("files is required (or files_from)")
        if self.files is not None and self.files_from is not None:
            raise ValueError("give files or files_from, not both")
        return self

    @property
    def items(self) -> list[FileSpec]:
        """The file items, once `files_from` has been read into `files`."""
        if self.files is None:
            raise RuntimeError("the job's file list is still in files_from")
        return self.files


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not standard JSON")


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"the number {text[:40]} is out of range")
    return number


def loads_strict(text: str) -> Any:
    """Standard JSON only: NaN, Infinity and numbers that overflow are refused, not nulled."""
    return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite)


def decode_document(body: str, what: str = "the message body") -> Any:
    try:
        document = _unwrap_sns(loads_strict(body))
    except (ValueError, RecursionError) as error:
        raise InvalidPayload(f"{what} is not JSON: {error}") from None
    problem = check_document(document)
    if problem is not None:
        raise InvalidPayload(problem)
    return document


def _unwrap_sns(document: Any) -> Any:
    """An SNS-delivered message (raw delivery off) carries the job as a JSON string in Message."""
    if (
        isinstance(document, dict)
        and "Type" in document
        and isinstance(document.get("Message"), str)
    ):
        try:
            return loads_strict(document["Message"])
        except (ValueError, RecursionError) as error:
            raise InvalidPayload(f"the SNS Message is not JSON: {error}") from None
    return document


def describe_errors(error: ValidationError) -> str:
    problems = []
    for detail in error.errors()[:MAX_REPORTED_ERRORS]:
        where = ".".join(str(part) for part in detail["loc"]) or "body"
        problems.append(f"{where}: {detail['msg'].removeprefix('Value error, ')}")
    hidden = error.error_count() - len(problems)
    return "; ".join(problems) + (f" (and {hidden} more)" if hidden > 0 else "")


def parse_job(body: str, what: str = "the message body") -> JobRequest:
    """Validate a message body once, at the edge. Raises InvalidPayload and nothing else."""
    document = decode_document(body, what)
    try:
        return JobRequest.model_validate(document)
    except ValidationError as error:
        raise InvalidPayload(describe_errors(error)) from None
    except (ValueError, RecursionError) as error:
        raise InvalidPayload(f"the job is malformed: {error}") from None


def salvage_metadata(body: str) -> dict[str, Any] | None:
    """Best-effort metadata of a rejected body, so its failure still reaches the right consumer.

    Only metadata that could have been accepted is echoed; anything else is `None`.
    """
    try:
        document = _unwrap_sns(loads_strict(body))
    except (InvalidPayload, ValueError, RecursionError):
        return None
    metadata = document.get("metadata") if isinstance(document, dict) else None
    if not isinstance(metadata, dict):
        return None
    try:
        check_metadata(metadata)
    except ValueError:
        return None
    return metadata
