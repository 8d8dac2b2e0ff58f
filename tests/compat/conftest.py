"""Archives for the compatibility suite, built once per session through the real service path."""

from __future__ import annotations

import hashlib
import shutil
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from archiver.adapters.memory import (
    Checksum,
    MemoryMultipartUpload,
    MemoryObjectStore,
    SyntheticBody,
)
from archiver.adapters.memory_secrets import ACCOUNT_PREFIX, MemorySecretStore
from archiver.app.jobs.service import ArchiveService
from archiver.domain.job import FileSpec, JobRequest, ObjectRef
from archiver.domain.multipart import STAGING_PREFIX
from archiver.domain.plan import ArchivePolicy, CompressionMode
from archiver.domain.ports import Buffer, ObjectHeaders
from tests.support import MIB, build_options, link_options

SOURCE, DESTINATION = "sources", "archives"
SENT = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
MODIFIED = datetime(2019, 6, 14, 9, 26, 53, tzinfo=UTC)
"""The first source's LastModified; each next one 2 s later: odd seconds, which DOS times
cannot hold, so a reader showing them exactly read the extended timestamp."""


class DiskObjectStore(MemoryObjectStore):
    """Sources in memory (or synthetic); archives written to disk, part by part."""

    def __init__(self, directory: Path) -> None:
        super().__init__()
        self.directory = directory
        self.files: dict[ObjectRef, Path] = {}

    def _path(self, ref: ObjectRef) -> Path:
        path = self.directory / hashlib.sha256(str(ref).encode()).hexdigest()[:16]
        self.files[ref] = path.with_suffix(".zip")
        return self.files[ref]

    def put(self, ref: ObjectRef, data: bytes, headers: ObjectHeaders) -> None:
        if ref.bucket != DESTINATION or not ref.key.endswith(".zip"):
            super().put(ref, data, headers)
            return
        self._path(ref).write_bytes(data)

    def start_upload(self, ref: ObjectRef, headers: ObjectHeaders) -> MemoryMultipartUpload:
        if ref.key.startswith(STAGING_PREFIX):  # 5 MiB and a header: kept in memory
            return super().start_upload(ref, headers)
        return DiskMultipartUpload(self, ref, headers, target=self._path(ref))


@dataclass
class DiskMultipartUpload(MemoryMultipartUpload):
    target: Path = field(default_factory=Path)

    def __post_init__(self) -> None:
        self.store.uploads[self.upload_id] = self
        self.spool = self.target.with_suffix(".parts")
        self.spool.mkdir(exist_ok=True)

    def upload_part(self, number: int, data: Buffer) -> None:
        (self.spool / f"{number:05d}").write_bytes(data)

    def copy_part(
        self, number: int, source: ObjectRef, start: int, length: int, etag: str | None
    ) -> None:
        with (self.spool / f"{number:05d}").open("wb") as output:
            for at in range(start, start + length, 64 * MIB):
                output.write(self.store.fetch(source, at, min(64 * MIB, start + length - at), etag))
        self.store.copied_bytes += length

    def complete(self, crc32: int) -> None:
        """Assemble the parts and check the archive's CRC-32 on the way, as S3 does."""
        crc = 0
        with self.target.open("wb") as output:
            for part in sorted(self.spool.iterdir()):
                with part.open("rb") as piece:
                    while block := piece.read(16 * MIB):
                        crc = zlib.crc32(block, crc)
                        output.write(block)
                part.unlink()
        self.spool.rmdir()
        self.store.uploads.pop(self.upload_id, None)
        assert crc == crc32, f"the archive's CRC-32 is {crc:08x}, {crc32:08x} was announced"


@dataclass(frozen=True)
class Case:
    name: str
    files: list[tuple[str, bytes | SyntheticBody, str | None]]  # source key, body, destination
    compression: CompressionMode = CompressionMode.AUTO
    zip64_end_record: bool = False
    zip64_local: frozenset[int] = frozenset()  # entries whose local header needs ZIP64 sizes
    checksums: dict[str, Checksum] = field(default_factory=dict)  # by source key (else none)
    server_side_copy: bool = True
    copied: bool = False  # the store must have copied some of it
    password: str | None = None  # encrypt it (AES-256) with this password
    prefix: str | None = None  # a job of one prefix item instead of its files


@dataclass(frozen=True)
class Built:
    case: Case
    path: Path
    expected: dict[str, str]  # entry name -> SHA-256
    times: dict[str, int]  # entry name -> its source's LastModified, Unix seconds


def _digest(body: bytes | SyntheticBody) -> str:
    if isinstance(body, bytes):
        return hashlib.sha256(body).hexdigest()
    digest = hashlib.sha256()
    for start in range(0, body.size, 64 * MIB):
        digest.update(body.slice(start, 64 * MIB))
    return digest.hexdigest()


def build(case: Case, directory: Path) -> Built:
    store = DiskObjectStore(directory)
    store.create_bucket(SOURCE)
    store.create_bucket(DESTINATION)
    digests, times = {}, {}
    for number, (key, body, _) in enumerate(case.files):
        ref = ObjectRef(SOURCE, key)
        if ref not in store.objects:
            modified = MODIFIED + timedelta(seconds=2 * number)
            store.add(ref, body, case.checksums.get(key, Checksum.NONE), modified=modified)
            digests[key], times[key] = _digest(body), int(modified.timestamp())
    secrets = MemorySecretStore()
    archive: dict[str, Any] = {}
    if case.password is not None:
        secrets.add("compat/password", case.password)
        archive["encryption"] = {"secret": "compat/password"}
    policy = ArchivePolicy(
        SOURCE,
        DESTINATION,
        max_files=200_000,
        compression=case.compression,
        encryption_secrets=(ACCOUNT_PREFIX,),
    )
    options = build_options(part_size=8 * MIB, server_side_copy=case.server_side_copy)
    service = ArchiveService(store, secrets, policy, options, link_options(base_url="https://x"))
    files = [FileSpec(source=key, destination=folder) for key, _, folder in case.files]
    if case.prefix is not None:
        files = [FileSpec(prefix=case.prefix)]
    request = JobRequest.model_validate({"files": files, "archive": archive})
    plan = service.plan(case.name, request, SENT)
    service.build(plan)
    assert (store.copied_bytes > 0) is case.copied
    expected = {entry.name: digests[entry.source.key] for entry in plan.entries}
    modified = {entry.name: times[entry.source.key] for entry in plan.entries}
    return Built(case, store.files[plan.archive], expected, modified)


@pytest.fixture(scope="session")
def compat_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    directory = tmp_path_factory.mktemp("compat")
    yield directory
    shutil.rmtree(directory, ignore_errors=True)
