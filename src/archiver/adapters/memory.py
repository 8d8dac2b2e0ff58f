"""Working in-memory S3: the unit tests' object store, held to the same contract suite."""

from __future__ import annotations

import hashlib
import threading
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from archiver.domain.checksum import combine
from archiver.domain.errors import (
    CopyRefused,
    ObjectUnavailable,
    TransientError,
    Unavailable,
)
from archiver.domain.job import ObjectRef
from archiver.domain.multipart import MAX_PARTS, MIN_PART_BYTES
from archiver.domain.ports import Buffer, ObjectHeaders, ObjectInfo


@dataclass(frozen=True)
class SyntheticBody:
    """A large object the fake streams without holding: `size` bytes of a repeated block."""

    size: int
    block: bytes = bytes(range(256)) * 256

    def slice(self, start: int, length: int) -> bytearray:
        """One buffer of the range, as the S3 adapter reads into (no temporaries)."""
        length = max(0, min(length, self.size - start))
        out, block = bytearray(length), memoryview(self.block)
        filled, offset = 0, start % len(block)
        while filled < length:
            count = min(length - filled, len(block) - offset)
            out[filled : filled + count] = block[offset : offset + count]
            filled, offset = filled + count, 0
        return out


class Checksum(StrEnum):
    """What an object was stored with, as S3 keeps it."""

    NONE = "none"
    FULL_OBJECT = "full_object"  # PutObject, or a multipart upload of type FULL_OBJECT
    COMPOSITE = "composite"  # a multipart upload's checksum of its parts' checksums


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _size(body: bytes | SyntheticBody) -> int:
    return body.size if isinstance(body, SyntheticBody) else len(body)


def _etag(body: bytes | SyntheticBody) -> str:
    if isinstance(body, SyntheticBody):
        return f'"synthetic-{body.size}"'
    return f'"{hashlib.md5(body, usedforsecurity=False).hexdigest()}"'


class MemoryObjectStore:
    """Objects in a dict; multipart uploads that enforce S3's part rules."""

    def __init__(self, min_part_size: int = MIN_PART_BYTES) -> None:
        self.min_part_size = min_part_size
        self.buckets: set[str] = set()
        self.objects: dict[ObjectRef, bytes | SyntheticBody] = {}
        self.headers: dict[ObjectRef, ObjectHeaders] = {}
        self.uploads: dict[str, MemoryMultipartUpload] = {}
        self.faults: dict[ObjectRef, Exception] = {}
        """Errors to raise on the next access to an object (consumed once): fault injection."""
        self.checksums: dict[ObjectRef, tuple[Checksum, int]] = {}  # with the part size
        self.modified: dict[ObjectRef, datetime] = {}  # LastModified, whole seconds as S3
        self.refuse_copies: str | None = None
        """Set to an error code: every part copy is refused with it (CopyRefused)."""
        self.copy_checksums = True
        """Whether a part copy answers with the copied range's CRC-32 (S3 does; moto not)."""
        self.uploaded_bytes = 0  # part and object bodies sent to the store
        self.copied_bytes = 0  # bytes the store copied itself
        self.read_bytes = 0  # bytes fetched by the store's callers
        self._lock = threading.Lock()

    def create_bucket(self, bucket: str) -> None:
        self.buckets.add(bucket)

    def add(
        self,
        ref: ObjectRef,
        body: bytes | SyntheticBody,
        checksum: Checksum = Checksum.NONE,
        part_size: int = MIN_PART_BYTES,
        modified: datetime | None = None,
    ) -> None:
        self.buckets.add(ref.bucket)
        self.objects[ref] = body
        self.checksums[ref] = (checksum, part_size)
        self.modified[ref] = modified or _now()

    def checksum(self, ref: ObjectRef, etag: str | None) -> int | None:
        """As S3 with GetObjectAttributes: a composite checksum comes back as its parts'."""
        self._check(ref, must_exist=True)
        body = self.objects[ref]
        if etag is not None and etag != _etag(body):
            raise TransientError(f"{ref}: changed while read (PreconditionFailed)")
        kind, part_size = self.checksums.get(ref, (Checksum.NONE, 0))
        if kind is Checksum.NONE or isinstance(body, SyntheticBody):
            return None
        if kind is Checksum.FULL_OBJECT:
            return zlib.crc32(body)
        cuts = range(0, len(body), part_size)
        return combine(
            (zlib.crc32(body[at : at + part_size]), len(body[at : at + part_size])) for at in cuts
        )

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
        return ObjectInfo(ref, _size(body), _etag(body), self.modified.get(ref))

    def probe(self, ref: ObjectRef, length: int) -> tuple[ObjectInfo, Buffer]:
        info = self.stat(ref)
        return info, self.fetch(ref, 0, min(length, info.size), info.etag)

    def fetch(self, ref: ObjectRef, start: int, length: int, etag: str | None = None) -> Buffer:
        data = self.read(ref, start, length, etag)
        with self._lock:
            self.read_bytes += len(data)
        return data

    def read(self, ref: ObjectRef, start: int, length: int, etag: str | None = None) -> Buffer:
        """`fetch` as the store itself reads (a copy): not counted as read by a caller."""
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

    def list_prefix(self, prefix: ObjectRef) -> Iterator[ObjectInfo]:
        self._check(prefix, must_exist=False)
        with self._lock:
            refs = sorted(r for r in self.objects if r.bucket == prefix.bucket)
        for ref in refs:
            if ref.key.startswith(prefix.key) and ref in self.objects:
                body = self.objects[ref]
                yield ObjectInfo(ref, _size(body), _etag(body), self.modified.get(ref))

    def delete(self, ref: ObjectRef) -> None:
        self._check(ref, must_exist=False)
        with self._lock:
            self.objects.pop(ref, None)

    def put(self, ref: ObjectRef, data: bytes, headers: ObjectHeaders) -> None:
        self._check(ref, must_exist=False)
        self.uploaded_bytes += len(data)
        self.objects[ref] = bytes(data)
        self.checksums[ref] = (Checksum.FULL_OBJECT, 0)
        self.modified[ref] = _now()
        self.headers[ref] = headers

    def start_upload(self, ref: ObjectRef, headers: ObjectHeaders) -> MemoryMultipartUpload:
        self._check(ref, must_exist=False)
        upload = MemoryMultipartUpload(self, ref, headers)
        self.uploads[upload.upload_id] = upload
        return upload

    def resume_upload(
        self, ref: ObjectRef, upload_id: str, parts: int
    ) -> tuple[MemoryMultipartUpload, dict[int, int]]:
        upload = self.uploads.get(upload_id)
        if upload is None or upload.ref != ref:
            raise ObjectUnavailable(str(ref), Unavailable.NOT_FOUND, "NoSuchUpload")
        for number in [number for number in upload.parts if number > parts]:
            del upload.parts[number]  # as S3 does with a part not named at completion
        return upload, {number: len(data) for number, data in upload.parts.items()}

    def presigned_url(self, ref: ObjectRef, expires_in: int) -> str:
        return f"memory://{ref.bucket}/{ref.key}?expires_in={expires_in}"

    def abort_uploads(self, ref: ObjectRef, *, under: bool = False, keep: str | None = None) -> int:
        stale = [
            upload
            for upload in list(self.uploads.values())
            if upload.upload_id != keep
            and (
                upload.ref == ref
                or (
                    under and upload.ref.bucket == ref.bucket and upload.ref.key.startswith(ref.key)
                )
            )
        ]
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
                self.checksums[upload.ref] = (Checksum.FULL_OBJECT, 0)
                self.modified[upload.ref] = _now()
                self.headers[upload.ref] = upload.headers


@dataclass
class MemoryMultipartUpload:
    store: MemoryObjectStore
    ref: ObjectRef
    headers: ObjectHeaders
    upload_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    parts: dict[int, bytes] = field(default_factory=dict)

    def upload_part(self, number: int, data: Buffer) -> None:
        self._check_part(number)
        with self.store._lock:
            self.store.uploaded_bytes += len(data)
        self.parts[number] = bytes(data)

    def copy_part(
        self, number: int, source: ObjectRef, start: int, length: int, etag: str | None
    ) -> int | None:
        self._check_part(number)
        if self.store.refuse_copies is not None:
            raise CopyRefused(f"{source} into {self.ref}: {self.store.refuse_copies}")
        data = self.store.read(source, start, length, etag)
        with self.store._lock:
            self.store.copied_bytes += length
        self.parts[number] = bytes(data)
        return zlib.crc32(data) if self.store.copy_checksums else None

    def _check_part(self, number: int) -> None:
        if self.upload_id not in self.store.uploads:
            raise ObjectUnavailable(str(self.ref), Unavailable.NOT_FOUND, "no such upload")
        if not 1 <= number <= MAX_PARTS:
            raise ValueError(f"part number {number} is outside 1..{MAX_PARTS}")

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
