"""The archive service: plan a job, build its archive (once), and link to it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO

import structlog

from archiver.app.engine.aes import Encryption
from archiver.app.engine.archive import Stopped, write_archive
from archiver.app.engine.budget import RANGE_BYTES, ByteBudget, JobMemory
from archiver.app.engine.file_sink import FileSink
from archiver.app.engine.multipart_sink import MultipartSink
from archiver.app.engine.sink import SinkResult, destination_errors
from archiver.app.engine.sizing import Sizing
from archiver.app.engine.transfer import ProgressCallback, Transfer
from archiver.app.jobs.checkpoints import Checkpointed, Checkpoints
from archiver.app.jobs.manifest import completed_archive, record_archive
from archiver.app.jobs.resolve import resolve
from archiver.app.stopping import Signal
from archiver.domain.checkpoint import Carried, Checkpoint, Continuation
from archiver.domain.checksum import crc32_text
from archiver.domain.encryption import password_of
from archiver.domain.errors import CopyRefused, PermanentError
from archiver.domain.job import JobRequest, ObjectRef
from archiver.domain.memory import prefetch_bytes
from archiver.domain.multipart import staging_prefix
from archiver.domain.notifications import ArchiveInfo
from archiver.domain.plan import ArchivePlan, ArchivePolicy, plan_archive
from archiver.domain.policy import NOTHING, Admitted, admit
from archiver.domain.ports import ObjectHeaders, ObjectStore, SecretStore
from archiver.domain.urls import content_disposition, public_url

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class BuildOptions:
    """How archives are built; every value comes from the settings (`Settings.build_options`)."""

    memory_budget: int  # MEMORY_BUDGET_MB, in bytes
    part_size: int  # UPLOAD_PART_SIZE_MB, in bytes: the smallest part
    upload_concurrency: int
    copy_concurrency: int
    download_concurrency: int
    worker_concurrency: int
    server_side_copy: bool


@dataclass(frozen=True)
class _Build:
    """One build of a job's archive, as asked."""

    plan: ArchivePlan
    fingerprint: str
    progress: ProgressCallback | None
    cancel: Signal | None
    due: Signal | None  # set: stop for a checkpoint at the next entry's end
    checkpoint: Checkpoint | None  # the job's latest: its holds and its token go on
    resumable: bool  # the checkpoint is of this content: the build carries on from it


@dataclass(frozen=True)
class LinkOptions:
    base_url: str | None  # ARCHIVE_BASE_URL; None: presigned links
    presign_ttl: int  # ARCHIVE_URL_TTL


class ArchiveService:
    """A planned job carried out: its archive built (once) in the destination bucket, linked."""

    def __init__(
        self,
        store: ObjectStore,
        secrets: SecretStore,
        policy: ArchivePolicy,
        build: BuildOptions,
        links: LinkOptions,
    ) -> None:
        self.store = store
        self._secrets = secrets
        self.policy = policy
        self._build = build
        self._links = links
        budget = prefetch_bytes(
            build.memory_budget,
            build.part_size,
            build.upload_concurrency,
            build.worker_concurrency,
            RANGE_BYTES,
        )
        self._budget = ByteBudget(budget)
        self._transfer = Transfer(self._budget, build.download_concurrency, RANGE_BYTES)
        self._checkpoints = Checkpoints(store)

    def plan(self, job_id: str, request: JobRequest, created_at: datetime) -> ArchivePlan:
        """Read the job's file list and list its prefixes, then plan (PermanentError,
        TransientError)."""
        resolved, listings = resolve(self.store, request, self.policy)
        return plan_archive(job_id, resolved, created_at, self.policy, listings)

    def admits(self, job_id: str, continued: Continuation | None) -> bool:
        """Whether a redelivered message, or a continuation, carries on job `job_id`; raises
        Superseded when a later continuation carries it on (see `Checkpoints.admits`)."""
        return self._checkpoints.admits(self.policy.destination_bucket, job_id, continued)

    def abandon(self, job_id: str) -> None:
        """The job failed before it was built: its checkpoint and upload, if any, go."""
        self._checkpoints.abandon(self.policy.destination_bucket, job_id)

    def handed_over(self, checkpoint: Checkpoint) -> None:
        """The checkpoint's continuation is sent (see `admits`)."""
        self._checkpoints.handed_over(self.policy.destination_bucket, checkpoint)

    def build(
        self,
        plan: ArchivePlan,
        progress: ProgressCallback | None = None,
        *,
        cancel: Signal | None = None,
        redelivered: bool = False,
        due: Signal | None = None,
    ) -> ArchiveInfo:
        """Stream the archive to the destination bucket. Raises PermanentError/TransientError,
        or Checkpointed once `due` is set (the job then goes on from its checkpoint).

        A redelivered job first removes the staging objects an earlier attempt left, looks
        for the archive it completed, and aborts any upload it left behind (a worker killed
        mid-job) but the one its checkpoint names, which it resumes: unless the checkpoint is
        of other content (a prefix listed again since), and the job starts over. A failure
        the job may retry keeps the checkpoint's upload; a permanent one aborts it.
        """
        checkpoint, resumable = None, False
        fingerprint = plan.fingerprint(self.policy.missing_files)
        if redelivered:
            with destination_errors(plan.archive):
                swept = self._sweep_staging(plan.archive)
            if swept:
                log.warning("stale_staging_removed", count=swept)
            completed = completed_archive(self.store, plan, fingerprint)
            if completed is not None:
                log.info("archive_reused", archive_key=plan.archive.key)
                return completed
            with destination_errors(plan.archive):
                checkpoint = self._checkpoints.load(plan)
            resumable = checkpoint is not None and checkpoint.fingerprint == fingerprint
            if checkpoint is not None and not resumable:
                log.warning("checkpoint_of_other_content", then="starting over")
            keep = checkpoint.upload_id if checkpoint is not None and resumable else None
            with destination_errors(plan.archive):
                aborted = self.store.abort_uploads(plan.archive, keep=keep)
            if aborted:
                log.warning("stale_uploads_aborted", count=aborted)
        build = _Build(plan, fingerprint, progress, cancel, due, checkpoint, resumable)
        try:
            result, admitted = self._built(build)
        except PermanentError:
            if checkpoint is not None:  # the job is over: nothing is to resume its upload
                self._checkpoints.delete(plan.archive.bucket, checkpoint, abort=True)
            raise
        log.info("archive_uploaded", size_bytes=result.size_bytes, copied_bytes=result.copied_bytes)
        archive = ArchiveInfo(
            bucket=plan.archive.bucket,
            key=plan.archive.key,
            size_bytes=result.size_bytes,
            file_count=admitted.file_count,
            crc32=crc32_text(result.crc32),
            missing=admitted.missing,
        )
        token = None if checkpoint is None else checkpoint.token  # its continuations' too
        record_archive(self.store, plan, fingerprint, archive, token)
        if checkpoint is not None:
            self._checkpoints.delete(plan.archive.bucket, checkpoint)
        return archive

    def _built(self, build: _Build) -> tuple[SinkResult, Admitted]:
        with self._encryption(build.plan) as encryption:
            may_copy = self._build.server_side_copy and encryption is None  # its bytes change
            try:
                return self._upload(build, may_copy, encryption)
            except CopyRefused as refused:  # again, from the checkpoint if it has one
                log.warning("server_side_copy_refused", reason=str(refused), then="streaming")
                return self._upload(build, False, encryption)

    def _sweep_staging(self, archive: ObjectRef) -> int:
        """What an earlier attempt, killed mid-job, left of its staging objects: removed."""
        staging = ObjectRef(archive.bucket, staging_prefix(archive.key))
        left = [info.ref for info in self.store.list_prefix(staging)]
        for ref in left:
            self.store.delete(ref)
        return self.store.abort_uploads(staging, under=True) + len(left)

    def _upload(
        self, build: _Build, may_copy: bool, encryption: Encryption | None
    ) -> tuple[SinkResult, Admitted]:
        """The archive written, from the checkpoint on if the build has one that holds."""
        plan, checkpoint = build.plan, build.checkpoint
        resumed = None
        if checkpoint is not None and build.resumable:
            with destination_errors(plan.archive):
                resumed = self._checkpoints.resume(plan, checkpoint)
        rest, carried = (plan, NOTHING) if resumed is None else (resumed.plan, resumed.carried)
        if resumed is not None:
            log.info("job_resumed", offset=resumed.sent.offset, next_entry=resumed.base)
        with closing(self._sizing(rest, build.cancel, may_copy, carried)) as sizing:
            sink = MultipartSink(
                self.store,
                plan.archive,
                self._headers(plan),
                part_size=self._build.part_size,
                upload_concurrency=self._build.upload_concurrency,
                copy_concurrency=self._build.copy_concurrency,
                expected_size=sizing.expected_size,
                between_copies=sizing.check_cancel,
                memory=JobMemory(
                    self._budget,
                    self._build.memory_budget // self._build.worker_concurrency,
                    self._build.part_size,
                    self._build.upload_concurrency,
                ),
                sent=None if resumed is None else resumed.sent,
            )
            result = write_archive(
                sizing, self.store, sink, self._transfer, encryption, build.progress,
                written=None if resumed is None else resumed.written, due=build.due,
            )  # fmt: skip
            if isinstance(result, Stopped):
                base = 0 if resumed is None else resumed.base
                admitted = sizing.settle()
                saved = self._checkpoints.save(
                    plan, build.fingerprint, result, admitted, previous=checkpoint, base=base
                )
                raise Checkpointed(saved)
            return result, sizing.settle()

    def build_to_file(
        self, plan: ArchivePlan, file: BinaryIO, progress: ProgressCallback | None = None
    ) -> SinkResult:
        with self._encryption(plan) as encryption, closing(self._sizing(plan)) as sizing:
            result = write_archive(
                sizing, self.store, FileSink(file), self._transfer, encryption, progress
            )
            assert isinstance(result, SinkResult)  # never `due`: never stopped
            return result

    @contextmanager
    def _encryption(self, plan: ArchivePlan) -> Iterator[Encryption | None]:
        """The job's password, read now and held only by this build (PermanentError,
        TransientError)."""
        if plan.encryption is None:
            yield None
            return
        value = self._secrets.read(plan.encryption)
        with closing(
            Encryption(password_of(plan.encryption, value, self.policy.encryption_secrets))
        ) as encryption:
            yield encryption

    def url(self, archive: ObjectRef) -> str:
        if self._links.base_url:
            return public_url(self._links.base_url, archive.key)
        return self.store.presigned_url(archive, self._links.presign_ttl)

    def _sizing(
        self,
        plan: ArchivePlan,
        cancel: Signal | None = None,
        may_copy: bool = False,
        carried: Carried = NOTHING,
    ) -> Sizing:
        """Start sizing every source; MISSING_FILES and MAX_ARCHIVE_BYTES apply once it ends."""
        return Sizing(
            self.store,
            plan,
            self._transfer,
            lambda check: admit(plan, check, self.policy, carried),
            cancel,
            may_copy,
            carried,
        )

    @staticmethod
    def _headers(plan: ArchivePlan) -> ObjectHeaders:
        return ObjectHeaders(
            content_type="application/zip",
            content_disposition=content_disposition(plan.download_name),
            metadata={"archiver-job-id": plan.job_id},
        )
