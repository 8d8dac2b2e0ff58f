"""From a validated job to an archive plan: which objects, under which names, at which key."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from archiver.domain.encryption import check_secret
from archiver.domain.errors import ErrorCode, InvalidPayload, PermanentError
from archiver.domain.job import FileSpec, JobRequest, ObjectRef, split_source
from archiver.domain.naming import (
    MAX_PATH_BYTES,
    archive_file_name,
    assign_entry_names,
    file_segments,
)
from archiver.domain.ports import ObjectInfo

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
    max_files: int = 100_000
    file_prefix: str = "download"
    compression: CompressionMode = CompressionMode.AUTO
    missing_files: MissingFiles = MissingFiles.FAIL
    max_archive_bytes: int = S3_MAX_OBJECT_BYTES
    encryption_secrets: tuple[str, ...] = ()  # ARN prefixes of secrets jobs may encrypt with

    def allows(self, bucket: str) -> bool:
        allowed = self.allowed_source_buckets
        return bucket == self.source_bucket or ANY_BUCKET in allowed or bucket in allowed


@dataclass(frozen=True, slots=True)
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
    unmatched: tuple[ObjectRef, ...] = ()  # prefixes with no object under them: missing sources
    encryption: str | None = None  # the secret whose password encrypts every entry

    @property
    def manifest(self) -> ObjectRef:
        """Where a completed archive's record lives, for redeliveries to find."""
        return manifest_ref(self.archive.bucket, self.job_id)

    def fingerprint(self, missing_files: MissingFiles) -> str:
        """A content hash of what was asked: a redelivery reuses an archive only if it matches."""
        content = {
            "archive": str(self.archive),
            "entries": [[str(e.source), e.name, e.method.value] for e in self.entries],
            "missing_files": missing_files.value,
        }
        if self.encryption is not None:
            content["encryption"] = self.encryption
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


def too_many_files(count: int, policy: ArchivePolicy) -> PermanentError:
    return PermanentError(
        ErrorCode.TOO_MANY_FILES,
        f"the job comes to {count:,} files or more; the limit is {policy.max_files:,} (MAX_FILES)",
    )


def check_origins(request: JobRequest, policy: ArchivePolicy) -> None:
    """Before anything is read or listed: every bucket named is one this archiver may read,
    and a file list is not in the destination bucket (where archives and reports are), and an
    encryption secret is one this archiver may read."""
    if request.archive.encryption is not None:
        check_secret(request.archive.encryption.secret, policy.encryption_secrets)
    refs = [spec.ref(policy.source_bucket) for spec in request.files or ()]
    if request.files_from is not None:
        listed = FileSpec(source=request.files_from).ref(policy.source_bucket)
        if listed.bucket == policy.destination_bucket:
            raise InvalidPayload(
                "files_from: a file list may not be in the destination bucket", [str(listed)]
            )
        refs.append(listed)
    _check_buckets(refs, policy)


def _check_buckets(refs: Sequence[ObjectRef], policy: ArchivePolicy) -> None:
    refused = sorted({str(ref) for ref in refs if not policy.allows(ref.bucket)})
    if refused:
        raise PermanentError(
            ErrorCode.SOURCE_BUCKET_NOT_ALLOWED,
            f"{len(refused)} source(s) are in buckets this archiver may not read "
            "(see S3_ALLOWED_SOURCE_BUCKETS)",
            refused,
        )


def _check_paths(names: Sequence[str], refs: Sequence[ObjectRef], items: Sequence[int]) -> None:
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
            f"files.{items[index]}: its path in the archive would be {length:,} bytes; "
            f"the limit is {MAX_PATH_BYTES:,} (shorten destination or name){others}",
            sources=[str(refs[index]) for index, _ in too_long],
        )


def _expanded(
    request: JobRequest, listings: Mapping[int, Sequence[ObjectInfo]], policy: ArchivePolicy
) -> tuple[list[ObjectRef], list[list[str]], list[int], list[ObjectRef]]:
    """Every file, a prefix's objects in its place: sources, entry paths, the item each comes
    from, empty prefixes."""
    refs: list[ObjectRef] = []
    paths: list[list[str]] = []
    items: list[int] = []
    unmatched: list[ObjectRef] = []
    for index, spec in enumerate(request.items):
        ref = spec.ref(policy.source_bucket)
        if spec.prefix is None:
            refs.append(ref)
            paths.append(file_segments(spec.destination, spec.name, ref.key))
            items.append(index)
            continue
        found = [info for info in listings.get(index, ()) if not _folder_marker(info)]
        for info in found:
            _check_listed(spec.prefix, info.ref)
            refs.append(info.ref)
            items.append(index)
            paths.append(
                file_segments(spec.destination, info.ref.key[len(ref.key) :], info.ref.key)
            )
        if not found:
            unmatched.append(ref)
    return refs, paths, items, unmatched


def _folder_marker(info: ObjectInfo) -> bool:
    return info.size == 0 and info.ref.key.endswith("/")


def _check_listed(prefix: str, ref: ObjectRef) -> None:
    try:
        split_source(ref.key)
    except ValueError as error:
        raise InvalidPayload(f"prefix {prefix}: the object {ref} cannot be read: {error}") from None


def plan_archive(
    job_id: str,
    request: JobRequest,
    created_at: datetime,
    policy: ArchivePolicy,
    listings: Mapping[int, Sequence[ObjectInfo]] | None = None,
) -> ArchivePlan:
    """Decide everything about the archive before any byte moves. Raises PermanentError.

    `listings` holds what each `prefix` item (by index) listed, in key order."""
    check_origins(request, policy)
    encryption = request.archive.encryption
    refs, paths, items, unmatched = _expanded(request, listings or {}, policy)
    if len(refs) > policy.max_files:
        raise too_many_files(len(refs), policy)
    _check_buckets(refs, policy)
    names = assign_entry_names(paths)
    _check_paths(names, refs, items)
    named = archive_file_name(request.archive.name) if request.archive.name else None
    key = f"{job_id}/{named}" if named else archive_key(job_id, policy.file_prefix, created_at)
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
        unmatched=tuple(unmatched),
        encryption=encryption.secret if encryption is not None else None,
    )


def manifest_ref(bucket: str, job_id: str) -> ObjectRef:
    return ObjectRef(bucket, f"{job_id}/manifest.json")
