"""The application service: plan a job, build its archive (once), and link to it."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO

import structlog
from pydantic import ValidationError

from archiver.app.engine.archive import ProgressCallback, write_archive
from archiver.app.engine.budget import ByteBudget
from archiver.app.engine.fetching import Transfer
from archiver.app.engine.file_sink import FileSink
from archiver.app.engine.multipart_sink import MultipartSink
from archiver.app.engine.sink import SinkResult, destination_errors
from archiver.app.engine.sizing import Sizing
from archiver.app.jobs.resolve import read_job, resolve
from archiver.domain.checksum import crc32_text
from archiver.domain.errors import CopyRefused, InvalidPayload, ObjectUnavailable, TransientError
from archiver.domain.job import JobRequest, ObjectRef
from archiver.domain.notifications import (
    ArchiveInfo,
    ArchiveManifest,
    JobFailed,
    JobSucceeded,
    omitted,
)
from archiver.domain.offload import offloaded_payload
from archiver.domain.plan import ArchivePlan, ArchivePolicy, plan_archive
from archiver.domain.policy import Admitted, admit
from archiver.domain.ports import ObjectHeaders, ObjectStore
from archiver.domain.urls import content_disposition, public_url

log = structlog.get_logger(__name__)

MIB = 1024 * 1024
Answer = JobSucceeded | JobFailed
MANIFEST_MAX_BYTES = 1024 * 1024


@dataclass(frozen=True)
class BuildOptions:
    memory_budget: int = 128 * MIB
    min_part_size: int = 8 * MIB
    upload_concurrency: int = 4
    download_concurrency: int = 16
    range_size: int = 8 * MIB
    worker_concurrency: int = 1
    server_side_copy: bool = True

    @property
    def held_bytes(self) -> int:
        """Parts held until a streamed entry's header is patched (it may straddle two)."""
        return 2 * self.min_part_size

    @property
    def sink_bytes(self) -> int:
        """One job's upload side: parts in flight, the part being filled, the held parts."""
        return (self.upload_concurrency + 1) * self.min_part_size + self.held_bytes

    @property
    def prefetch_bytes(self) -> int:
        """What is left of the budget for fetched-but-unwritten source bytes, for all jobs."""
        left = self.memory_budget - self.worker_concurrency * self.sink_bytes
        return max(left, 2 * self.range_size)


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
        *,
        delete_offloaded: bool = False,
    ) -> None:
        self._store = store
        self._delete_offloaded = delete_offloaded
        self._policy = policy
        self._build = build
        self._links = links
        self._transfer = Transfer(
            budget=ByteBudget(build.prefetch_bytes),
            concurrency=build.download_concurrency,
            range_size=build.range_size,
        )

    def read(self, body: str) -> JobRequest:
        """The job in a message body, or in the object an SQS Extended Client offloaded it to
        (PermanentError, TransientError)."""
        return read_job(self._store, body, self._policy)

    def acknowledged(self, body: str) -> None:
        """The message is deleted: its offloaded body goes too, if `DELETE_OFFLOADED_PAYLOADS`."""
        if not self._delete_offloaded:
            return
        try:
            pointer = offloaded_payload(body)
            if pointer is not None:
                self._store.delete(pointer)
        except (InvalidPayload, ObjectUnavailable, TransientError) as error:
            log.warning("offloaded_payload_kept", error=str(error))

    def reported(self, answer: Answer, listed: Sequence[str]) -> Answer:
        """An answer whose list had to be cut links to the full report, written beside the
        archive (`{job_id}/report.json`); if that cannot be written, the answer goes without."""
        if not omitted(answer):
            return answer
        ref = ObjectRef(self._policy.destination_bucket, f"{answer.job_id}/report.json")
        if isinstance(answer, JobSucceeded):
            full = answer.archive.model_copy(update={"missing": list(listed), "missing_omitted": 0})
            report: Answer = answer.model_copy(update={"archive": full})
        else:
            report = answer.model_copy(
                update={
                    "error": answer.error.model_copy(
                        update={"sources": list(listed), "sources_omitted": 0}
                    )
                }
            )
        headers = ObjectHeaders(content_type="application/json")
        try:
            with destination_errors(ref):
                self._store.put(ref, report.model_dump_json().encode("utf-8"), headers)
        except TransientError as error:
            log.warning("report_not_written", error=str(error))
            return answer
        return answer.model_copy(update={"report_url": self.url(ref)})

    def plan(self, job_id: str, request: JobRequest, created_at: datetime) -> ArchivePlan:
        """Read the job's file list and list its prefixes, then plan (PermanentError,
        TransientError)."""
        resolved, listings = resolve(self._store, request, self._policy)
        return plan_archive(job_id, resolved, created_at, self._policy, listings)

    def build(
        self,
        plan: ArchivePlan,
        progress: ProgressCallback | None = None,
        *,
        cancel: threading.Event | None = None,
        redelivered: bool = False,
    ) -> ArchiveInfo:
        """Stream the archive to the destination bucket. Raises PermanentError/TransientError.

        A redelivered job first looks for the archive an earlier attempt completed, and
        aborts any upload an earlier attempt left behind (a worker killed mid-job).
        """
        if redelivered:
            completed = self._completed(plan)
            if completed is not None:
                log.info("archive_reused", archive_key=plan.archive.key)
                return completed
            with destination_errors(plan.archive):
                aborted = self._store.abort_uploads(plan.archive)
            if aborted:
                log.warning("stale_uploads_aborted", count=aborted)
        try:
            result, admitted = self._upload(plan, progress, cancel, self._build.server_side_copy)
        except CopyRefused as refused:
            log.warning("server_side_copy_refused", reason=str(refused), then="streaming")
            result, admitted = self._upload(plan, progress, cancel, copy=False)
        log.info("archive_uploaded", size_bytes=result.size_bytes, copied_bytes=result.copied_bytes)
        archive = ArchiveInfo(
            bucket=plan.archive.bucket,
            key=plan.archive.key,
            size_bytes=result.size_bytes,
            file_count=len(admitted.plan.entries),
            crc32=crc32_text(result.crc32),
            missing=admitted.missing,
        )
        self._record(plan, archive)
        return archive

    def _upload(
        self,
        plan: ArchivePlan,
        progress: ProgressCallback | None,
        cancel: threading.Event | None,
        copy: bool,
    ) -> tuple[SinkResult, Admitted]:
        with closing(self._sizing(plan, cancel, copy)) as sizing:
            sink = MultipartSink(
                self._store,
                plan.archive,
                self._headers(plan),
                part_size=self._build.min_part_size,
                upload_concurrency=self._build.upload_concurrency,
                expected_size=sizing.expected_size,
                between_copies=sizing.check_cancel,
            )
            result = write_archive(sizing, self._store, sink, self._transfer, progress)
            return result, sizing.settle()

    def build_to_file(
        self, plan: ArchivePlan, file: BinaryIO, progress: ProgressCallback | None = None
    ) -> SinkResult:
        with closing(self._sizing(plan)) as sizing:
            return write_archive(sizing, self._store, FileSink(file), self._transfer, progress)

    def url(self, archive: ObjectRef) -> str:
        if self._links.base_url:
            return public_url(self._links.base_url, archive.key)
        return self._store.presigned_url(archive, self._links.presign_ttl)

    def _sizing(
        self, plan: ArchivePlan, cancel: threading.Event | None = None, copy: bool = False
    ) -> Sizing:
        """Start sizing every source; MISSING_FILES and MAX_ARCHIVE_BYTES apply once it ends."""
        return Sizing(
            self._store,
            plan,
            self._transfer,
            lambda check: admit(plan, check, self._policy),
            cancel,
            copy,
        )

    def _record(self, plan: ArchivePlan, archive: ArchiveInfo) -> None:
        manifest = ArchiveManifest(
            job_id=plan.job_id,
            fingerprint=plan.fingerprint(self._policy.missing_files),
            archive=archive,
        )
        headers = ObjectHeaders(content_type="application/json")
        data = manifest.model_dump_json().encode("utf-8")
        with destination_errors(plan.manifest):
            self._store.put(plan.manifest, data, headers)

    def _completed(self, plan: ArchivePlan) -> ArchiveInfo | None:
        """The archive an earlier attempt of this very job completed, if there is one."""
        try:
            recorded = self._store.stat(plan.manifest)
            if recorded.size > MANIFEST_MAX_BYTES:
                return None
            manifest = ArchiveManifest.model_validate_json(
                self._store.fetch(plan.manifest, 0, recorded.size, recorded.etag)
            )
            stored = self._store.stat(plan.archive)
        except (ObjectUnavailable, TransientError):
            return None
        except ValidationError:
            log.warning("manifest_unreadable", manifest=str(plan.manifest))
            return None
        fingerprint = plan.fingerprint(self._policy.missing_files)
        if manifest.job_id != plan.job_id or manifest.fingerprint != fingerprint:
            return None
        if stored.size != manifest.archive.size_bytes:
            return None
        return manifest.archive

    @staticmethod
    def _headers(plan: ArchivePlan) -> ObjectHeaders:
        return ObjectHeaders(
            content_type="application/zip",
            content_disposition=content_disposition(plan.download_name),
            metadata={"archiver-job-id": plan.job_id},
        )
