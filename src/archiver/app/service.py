"""The application service: plan a job, build its archive, and link to it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO

from archiver.app.archive import (
    ProgressCallback,
    expected_archive_size,
    stat_sources,
    write_archive,
)
from archiver.app.sink import FileSink, MultipartSink, SinkResult, part_size_for
from archiver.domain.job import JobRequest, ObjectRef
from archiver.domain.notifications import ArchiveInfo
from archiver.domain.plan import ArchivePlan, ArchivePolicy, plan_archive
from archiver.domain.ports import ObjectHeaders, ObjectStore
from archiver.domain.urls import content_disposition, public_url

MIB = 1024 * 1024


@dataclass(frozen=True)
class BuildOptions:
    memory_budget: int = 128 * MIB
    min_part_size: int = 8 * MIB
    upload_concurrency: int = 4
    download_concurrency: int = 16
    chunk_size: int = 1 * MIB


@dataclass(frozen=True)
class LinkOptions:
    base_url: str | None = None
    presign_ttl: int = 604_800


class ArchiveService:
    def __init__(
        self,
        store: ObjectStore,
        policy: ArchivePolicy,
        build: BuildOptions,
        links: LinkOptions,
    ) -> None:
        self._store = store
        self._policy = policy
        self._build = build
        self._links = links

    def plan(self, job_id: str, request: JobRequest, created_at: datetime) -> ArchivePlan:
        return plan_archive(job_id, request, created_at, self._policy)

    def build(self, plan: ArchivePlan, progress: ProgressCallback | None = None) -> ArchiveInfo:
        """Stream the archive to the destination bucket. Raises PermanentError/TransientError."""
        infos = stat_sources(self._store, plan.sources, self._build.download_concurrency)
        part_size = part_size_for(expected_archive_size(plan, infos), self._build.min_part_size)
        sink = MultipartSink(
            self._store,
            plan.archive,
            self._headers(plan),
            part_size=part_size,
            # Held parts let the SHA-256 follow the final bytes; larger entries go out early.
            max_held_bytes=self._build.memory_budget // 4,
            upload_concurrency=self._build.upload_concurrency,
        )
        result = write_archive(plan, infos, self._store, sink, self._build.chunk_size, progress)
        return ArchiveInfo(
            bucket=plan.archive.bucket,
            key=plan.archive.key,
            size_bytes=result.size_bytes,
            file_count=len(plan.entries),
            sha256=result.sha256,
        )

    def build_to_file(
        self, plan: ArchivePlan, file: BinaryIO, progress: ProgressCallback | None = None
    ) -> SinkResult:
        infos = stat_sources(self._store, plan.sources, self._build.download_concurrency)
        return write_archive(
            plan, infos, self._store, FileSink(file), self._build.chunk_size, progress
        )

    def url(self, archive: ObjectRef) -> str:
        if self._links.base_url:
            return public_url(self._links.base_url, archive.key)
        return self._store.presigned_url(archive, self._links.presign_ttl)

    @staticmethod
    def _headers(plan: ArchivePlan) -> ObjectHeaders:
        return ObjectHeaders(
            content_type="application/zip",
            content_disposition=content_disposition(plan.download_name),
            metadata={"archiver-job-id": plan.job_id},
        )
