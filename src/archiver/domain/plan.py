"""From a validated job to an archive plan: which objects, under which names, at which key."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from archiver.domain.errors import ErrorCode, InvalidPayload, PermanentError
from archiver.domain.job import JobRequest, ObjectRef
from archiver.domain.naming import MAX_PATH_BYTES, assign_entry_names, file_segments

ANY_BUCKET = "*"

# Formats whose content is already compressed: deflating them costs CPU and saves nothing.
INCOMPRESSIBLE_EXTENSIONS = frozenset(
    """
    jpg jpeg jpe jfif png gif webp heic heif avif jxl jp2 tif tiff dng cr2 cr3 nef arw raf orf rw2
    mp4 m4v mov avi mkv webm mpg mpeg wmv flv 3gp mts m2ts mp3 m4a aac ogg oga opus flac wma
    zip gz tgz bz2 tbz2 xz txz zst lz4 lzma 7z rar cab jar war apk ipa dmg iso
    pdf docx xlsx pptx odt ods odp epub woff woff2 psd
    """.split()
)


class CompressionMode(StrEnum):
    AUTO = "auto"
    STORED = "stored"
    DEFLATED = "deflated"


class EntryMethod(StrEnum):
    STORED = "stored"
    DEFLATED = "deflated"
    SAMPLE = "sample"  # deflate unless a sample of the content shows it does not shrink


class MissingFiles(StrEnum):
    FAIL = "fail"
    SKIP = "skip"  # build without them and list them in the notification


S3_MAX_OBJECT_BYTES = 5 * 1024**4


@dataclass(frozen=True)
class ArchivePolicy:
    """The deployment's rules for building archives (from settings; pure data here)."""

    source_bucket: str
    destination_bucket: str
    allowed_source_buckets: frozenset[str] = frozenset()
    max_files: int = 10_000
    file_prefix: str = "download"
    compression: CompressionMode = CompressionMode.AUTO
    missing_files: MissingFiles = MissingFiles.FAIL
    max_archive_bytes: int = S3_MAX_OBJECT_BYTES

    def allows(self, bucket: str) -> bool:
        allowed = self.allowed_source_buckets
        return bucket == self.source_bucket or ANY_BUCKET in allowed or bucket in allowed


@dataclass(frozen=True)
class PlannedEntry:
    source: ObjectRef
    name: str
    method: EntryMethod


@dataclass(frozen=True)
class ArchivePlan:
    job_id: str
    archive: ObjectRef
    download_name: str
    created_at: datetime
    entries: tuple[PlannedEntry, ...]

    @property
    def sources(self) -> list[ObjectRef]:
        return [entry.source for entry in self.entries]

    @property
    def manifest(self) -> ObjectRef:
        """Where a completed archive's record lives, for redeliveries to find."""
        return ObjectRef(self.archive.bucket, f"{self.job_id}/manifest.json")

    def fingerprint(self, missing_files: MissingFiles) -> str:
        """A content hash of what was asked: a redelivery reuses an archive only if it matches."""
        content = {
            "archive": str(self.archive),
            "entries": [[str(e.source), e.name, e.method.value] for e in self.entries],
            "missing_files": missing_files.value,
        }
        canonical = json.dumps(content, sort_keys=True, ensure_ascii=False).encode("utf-8")
        return hashlib.sha256(canonical).hexdigest()


def _extension(path: str) -> str:
    leaf = path.rsplit("/", 1)[-1]
    stem, dot, ext = leaf.rpartition(".")
    return ext.lower() if dot and stem else ""


def entry_method(mode: CompressionMode, entry_name: str, source_key: str) -> EntryMethod:
    if mode is CompressionMode.STORED:
        return EntryMethod.STORED
    if mode is CompressionMode.DEFLATED:
        return EntryMethod.DEFLATED
    if {_extension(entry_name), _extension(source_key)} & INCOMPRESSIBLE_EXTENSIONS:
        return EntryMethod.STORED
    return EntryMethod.SAMPLE


def archive_key(job_id: str, file_prefix: str, created_at: datetime) -> str:
    """`{job_id}/{prefix}-{YYYY-MM-DD}.zip`: stable, so a redelivered job writes the same key."""
    return f"{job_id}/{file_prefix.strip('/')}-{created_at:%Y-%m-%d}.zip"


def _check_limits(request: JobRequest, refs: Sequence[ObjectRef], policy: ArchivePolicy) -> None:
    if len(request.files) > policy.max_files:
        raise PermanentError(
            ErrorCode.TOO_MANY_FILES,
            f"the job lists {len(request.files)} files; the limit is {policy.max_files}",
        )
    refused = sorted({str(ref) for ref in refs if not policy.allows(ref.bucket)})
    if refused:
        raise PermanentError(
            ErrorCode.SOURCE_BUCKET_NOT_ALLOWED,
            f"{len(refused)} source(s) are in buckets this archiver may not read "
            "(see S3_ALLOWED_SOURCE_BUCKETS)",
            refused,
        )


def _check_paths(names: Sequence[str], refs: Sequence[ObjectRef]) -> None:
    """A path no extractor can create is refused whole: a file is never dropped or cut."""
    too_long = [
        (index, len(name.encode("utf-8")))
        for index, name in enumerate(names)
        if len(name.encode("utf-8")) > MAX_PATH_BYTES
    ]
    if too_long:
        index, length = too_long[0]
        others = f" (and {len(too_long) - 1} more)" if len(too_long) > 1 else ""
        raise InvalidPayload(
            f"files.{index}: its path in the archive would be {length:,} bytes; "
            f"the limit is {MAX_PATH_BYTES:,} (shorten destination or name){others}",
            sources=[str(refs[index]) for index, _ in too_long],
        )


def plan_archive(
    job_id: str, request: JobRequest, created_at: datetime, policy: ArchivePolicy
) -> ArchivePlan:
    """Decide everything about the archive before any byte moves. Raises PermanentError."""
    refs = [spec.ref(policy.source_bucket) for spec in request.files]
    _check_limits(request, refs, policy)
    paths = [
        file_segments(spec.destination, spec.name, ref.key)
        for spec, ref in zip(request.files, refs, strict=True)
    ]
    names = assign_entry_names(paths)
    _check_paths(names, refs)
    key = archive_key(job_id, policy.file_prefix, created_at)
    entries = tuple(
        PlannedEntry(ref, name, entry_method(policy.compression, name, ref.key))
        for ref, name in zip(refs, names, strict=True)
    )
    return ArchivePlan(
        job_id=job_id,
        archive=ObjectRef(policy.destination_bucket, key),
        download_name=key.rsplit("/", 1)[-1],
        created_at=created_at,
        entries=entries,
    )
