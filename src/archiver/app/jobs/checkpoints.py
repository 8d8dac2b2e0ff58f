"""A job's checkpoint beside its archive: written when a build stops before SQS's 12-hour cap,
read when a later receipt of the job resumes the same upload (`domain/checkpoint.py`)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace
from functools import partial

import structlog
from isal import isal_zlib

from archiver.app.engine.archive import Stopped
from archiver.app.engine.parts import SentParts
from archiver.app.engine.sink import destination_errors, quietly
from archiver.app.jobs.documents import read_document
from archiver.app.jobs.manifest import MANIFEST_MAX_BYTES
from archiver.domain.checkpoint import (
    Carried,
    Checkpoint,
    Continuation,
    checkpoint_ref,
    record_of,
    sent_ref,
    tail_ref,
)
from archiver.domain.errors import ObjectUnavailable, TransientError
from archiver.domain.job import ObjectRef
from archiver.domain.notifications import ArchiveManifest
from archiver.domain.plan import ArchivePlan, manifest_ref
from archiver.domain.policy import Admitted
from archiver.domain.ports import ObjectHeaders, ObjectStore
from archiver.domain.zipformat import Entry

log = structlog.get_logger(__name__)

CHECKPOINT_MAX_BYTES = 256 * 1024 * 1024  # 100,000 entries take about 20 MiB
TAIL_HEADERS = ObjectHeaders(content_type="application/octet-stream")


class Checkpointed(Exception):
    """The build stopped for a checkpoint: the job goes on in a continuation message."""

    def __init__(self, checkpoint: Checkpoint) -> None:
        super().__init__(f"checkpoint {checkpoint.holds} at {checkpoint.offset:,} bytes")
        self.checkpoint = checkpoint


class Superseded(Exception):
    """The job's checkpoint is newer than the one this message carries on from, and its
    continuation was sent: this message is one whose delete failed, and nothing is left to do
    with it but delete it."""

    def __init__(self, checkpoint: Checkpoint) -> None:
        super().__init__(f"carried on by the continuation of checkpoint {checkpoint.holds}")
        self.checkpoint = checkpoint


@dataclass(frozen=True)
class Resumed:
    """A checkpointed build, to carry on: the entries left, and what it had done."""

    plan: ArchivePlan  # the entries not yet written
    carried: Carried
    sent: SentParts
    written: list[Entry]
    base: int  # the plan's first entry left


class Checkpoints:
    def __init__(self, store: ObjectStore) -> None:
        self._store = store

    def admits(self, bucket: str, job_id: str, continued: Continuation | None) -> bool:
        """Whether a message of job `job_id` carries it on: False for a continuation
        (`continued`) whose token neither the job's checkpoint nor its manifest holds (the
        message is a job of its own). Superseded when the continuation that follows the
        message's own checkpoint (0: the job's own message) was sent: the message is one whose
        delete failed. TransientError: ask again later."""
        checkpoint = self._read(bucket, job_id)
        if continued is not None and (checkpoint is None or checkpoint.token != continued.token):
            ref = manifest_ref(bucket, job_id)
            manifest = read_document(self._store, ref, ArchiveManifest, MANIFEST_MAX_BYTES)
            return manifest is not None and manifest.token == continued.token
        holds = 0 if continued is None else continued.holds
        if checkpoint is not None and checkpoint.holds > holds:
            try:
                self._store.stat(sent_ref(bucket, job_id, holds + 1))
            except ObjectUnavailable:  # checkpointed, but never continued: this one resumes
                return True
            raise Superseded(checkpoint)
        return True

    def load(self, plan: ArchivePlan) -> Checkpoint | None:
        """The job's checkpoint, if it has one (of its content or not: see `fingerprint`)."""
        return self._read(plan.archive.bucket, plan.job_id)

    def handed_over(self, bucket: str, checkpoint: Checkpoint) -> None:
        """The checkpoint's continuation is sent: recorded (until the job ends), so that a
        receipt of a message it replaces (should its delete fail) knows it is superseded."""
        ref = sent_ref(bucket, checkpoint.job_id, checkpoint.holds)
        headers = ObjectHeaders(content_type="text/plain")
        quietly("handover_not_recorded", ref, partial(self._store.put, ref, b"", headers))

    def _read(self, bucket: str, job_id: str) -> Checkpoint | None:
        checkpoint = read_document(
            self._store, checkpoint_ref(bucket, job_id), Checkpoint, CHECKPOINT_MAX_BYTES
        )
        return checkpoint if checkpoint is not None and checkpoint.job_id == job_id else None

    def resume(self, plan: ArchivePlan, checkpoint: Checkpoint) -> Resumed | None:
        """The upload as the checkpoint left it (ListParts); None when it is not (aborted,
        completed, parts missing, its tail gone); TransientError: ask again later."""
        upload = None
        if checkpoint.upload_id is not None:
            try:
                upload, sizes = self._store.resume_upload(
                    plan.archive, checkpoint.upload_id, checkpoint.parts_sent
                )
            except ObjectUnavailable as error:
                log.warning("checkpoint_upload_gone", error=str(error), then="starting over")
                return None
            sent = checkpoint.part_sizes[: checkpoint.parts_sent]
            if any(sizes.get(number) != size for number, size in enumerate(sent, 1)):
                log.warning("checkpoint_parts_differ", then="starting over")
                quietly("multipart_abort_failed", plan.archive, upload.abort)
                return None
        tail = self._tail(plan, checkpoint)
        if tail is None:
            log.warning("checkpoint_tail_unreadable", then="starting over")
            if upload is not None:
                quietly("multipart_abort_failed", plan.archive, upload.abort)
            return None
        return Resumed(
            replace(plan, entries=plan.entries[checkpoint.next_entry :], unmatched=()),
            checkpoint.carried(),
            SentParts(
                upload,
                list(checkpoint.part_sizes),
                checkpoint.parts_sent,
                checkpoint.sent_crc,
                checkpoint.offset,
                tail,
                checkpoint.copied_bytes,
                checkpoint.copy_parts_used,
            ),
            checkpoint.written(),
            checkpoint.next_entry,
        )

    def _tail(self, plan: ArchivePlan, checkpoint: Checkpoint) -> bytes | None:
        """The part the checkpoint had begun; None if it is gone, or not what it recorded."""
        if not checkpoint.tail_length:
            return b""
        ref = tail_ref(plan.archive.bucket, plan.job_id, checkpoint.holds)
        try:
            if self._store.stat(ref).size != checkpoint.tail_length:
                return None
            tail = self._store.fetch(ref, 0, checkpoint.tail_length)
        except ObjectUnavailable:
            return None
        if len(tail) != checkpoint.tail_length or isal_zlib.crc32(tail) != checkpoint.tail_crc:
            return None
        return bytes(tail)

    def save(
        self,
        plan: ArchivePlan,
        fingerprint: str,
        stopped: Stopped,
        admitted: Admitted,
        *,
        previous: Checkpoint | None,
        base: int,
    ) -> Checkpoint:
        """Record where the build stopped (`base`: where it had begun in the plan); the tail
        goes first, so a checkpoint never names a tail it does not have."""
        sent = stopped.sent
        parts_left, since_copy = stopped.copies or (0, None)
        checkpoint = Checkpoint(
            job_id=plan.job_id,
            token=previous.token if previous else secrets.token_urlsafe(24),
            fingerprint=fingerprint,
            upload_id=None if sent.upload is None else sent.upload.upload_id,
            holds=(previous.holds if previous else 0) + 1,
            part_sizes=sent.sizes,
            parts_sent=sent.count,
            sent_crc=sent.crc,
            offset=sent.offset,
            tail_length=len(sent.tail),
            tail_crc=isal_zlib.crc32(sent.tail),
            copied_bytes=sent.copied_bytes,
            copy_parts_used=sent.copy_parts_used,
            copy_parts_left=parts_left,
            since_copy=since_copy,
            next_entry=base + stopped.next_entry,
            entries=[record_of(entry) for entry in stopped.entries],
            missing=admitted.missing,
        )
        bucket = plan.archive.bucket
        data = checkpoint.model_dump_json().encode("utf-8")
        headers = ObjectHeaders(content_type="application/json")
        with destination_errors(plan.archive):
            if sent.tail:
                tail = tail_ref(bucket, plan.job_id, checkpoint.holds)
                self._store.put(tail, bytes(sent.tail), TAIL_HEADERS)
            try:
                self._store.put(checkpoint_ref(bucket, plan.job_id), data, headers)
            except BaseException:  # not recorded: the tail is named by nothing
                self._delete_tail(bucket, checkpoint)
                raise
        if previous is not None:  # replaced: its tail is no longer named
            self._delete_tail(bucket, previous)
        log.info(
            "job_checkpointed",
            holds=checkpoint.holds,
            offset=checkpoint.offset,
            parts_sent=checkpoint.parts_sent,
            next_entry=checkpoint.next_entry,
        )
        return checkpoint

    def delete(self, bucket: str, checkpoint: Checkpoint, *, abort: bool = False) -> None:
        """The job is answered: its checkpoint objects go (a lifecycle rule is the backstop),
        and with `abort` (it failed) the upload it names, and any other under the job's key."""
        job_id = checkpoint.job_id
        if abort:
            folder = ObjectRef(bucket, f"{job_id}/")
            uploads = partial(self._store.abort_uploads, folder, under=True)
            quietly("multipart_abort_failed", folder, uploads)
        self._delete_tail(bucket, checkpoint)
        refs = [sent_ref(bucket, job_id, holds) for holds in range(1, checkpoint.holds + 1)]
        for ref in [*refs, checkpoint_ref(bucket, job_id)]:
            quietly("checkpoint_delete_failed", ref, partial(self._store.delete, ref))

    def abandon(self, bucket: str, job_id: str) -> None:
        """A job that failed before it could be built (its file list unreadable since, say):
        whatever checkpoint it has goes, and its upload."""
        try:
            checkpoint = self._read(bucket, job_id)
        except TransientError as error:
            log.warning("checkpoint_kept", error=str(error))  # the lifecycle rules remain
            return
        if checkpoint is not None:
            self.delete(bucket, checkpoint, abort=True)

    def _delete_tail(self, bucket: str, checkpoint: Checkpoint) -> None:
        if checkpoint.tail_length:
            ref = tail_ref(bucket, checkpoint.job_id, checkpoint.holds)
            quietly("checkpoint_delete_failed", ref, partial(self._store.delete, ref))
