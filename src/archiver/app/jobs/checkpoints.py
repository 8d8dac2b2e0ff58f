"""A job's checkpoint beside its archive: written when a build stops before SQS's 12-hour cap,
read when a later receipt of the job resumes the same upload (`domain/checkpoint.py`)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial

import structlog
from isal import isal_zlib
from pydantic import ValidationError

from archiver.app.engine.archive import Stopped
from archiver.app.engine.parts import SentParts
from archiver.app.engine.sink import destination_errors, quietly
from archiver.domain.checkpoint import (
    Carried,
    Checkpoint,
    checkpoint_ref,
    record_of,
    tail_ref,
)
from archiver.domain.errors import ObjectUnavailable, TransientError
from archiver.domain.plan import ArchivePlan
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

    def load(self, plan: ArchivePlan, fingerprint: str) -> Checkpoint | None:
        """The job's checkpoint, if it has one of this very job; None otherwise."""
        ref = checkpoint_ref(plan.archive.bucket, plan.job_id)
        try:
            info = self._store.stat(ref)
            if info.size > CHECKPOINT_MAX_BYTES:
                return None
            checkpoint = Checkpoint.model_validate_json(
                self._store.fetch(ref, 0, info.size, info.etag)
            )
        except (ObjectUnavailable, TransientError):
            return None
        except ValidationError:
            log.warning("checkpoint_unreadable", checkpoint=str(ref))
            return None
        if checkpoint.job_id != plan.job_id or checkpoint.fingerprint != fingerprint:
            log.warning("checkpoint_of_another_job", checkpoint=str(ref))
            return None
        return checkpoint

    def resume(self, plan: ArchivePlan, checkpoint: Checkpoint) -> Resumed | None:
        """The upload as the checkpoint left it (ListParts); None when it is not (aborted,
        completed, parts missing): the job then starts over."""
        upload = None
        if checkpoint.upload_id is not None:
            try:
                upload, sizes = self._store.resume_upload(plan.archive, checkpoint.upload_id)
            except (ObjectUnavailable, TransientError) as error:
                log.warning("checkpoint_upload_gone", error=str(error), then="starting over")
                return None
            sent = checkpoint.part_sizes[: checkpoint.parts_sent]
            if any(sizes.get(number) != size for number, size in enumerate(sent, 1)):
                log.warning("checkpoint_parts_differ", then="starting over")
                quietly("multipart_abort_failed", plan.archive, upload.abort)
                return None
        try:
            tail = self._tail(plan, checkpoint)
        except (ObjectUnavailable, TransientError) as error:
            log.warning("checkpoint_tail_unreadable", error=str(error), then="starting over")
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

    def _tail(self, plan: ArchivePlan, checkpoint: Checkpoint) -> bytes:
        if not checkpoint.tail_length:
            return b""
        ref = tail_ref(plan.archive.bucket, plan.job_id, checkpoint.holds)
        tail = self._store.fetch(ref, 0, checkpoint.tail_length)
        if len(tail) != checkpoint.tail_length or isal_zlib.crc32(tail) != checkpoint.tail_crc:
            raise TransientError(f"{ref}: not the tail the checkpoint recorded")
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
                self._delete_tail(plan, checkpoint)
                raise
        if previous is not None:  # replaced: its tail is no longer named
            self._delete_tail(plan, previous)
        log.info(
            "job_checkpointed",
            holds=checkpoint.holds,
            offset=checkpoint.offset,
            parts_sent=checkpoint.parts_sent,
            next_entry=checkpoint.next_entry,
        )
        return checkpoint

    def delete(self, plan: ArchivePlan, checkpoint: Checkpoint) -> None:
        """The job is answered: its checkpoint goes (a lifecycle rule is the backstop)."""
        self._delete_tail(plan, checkpoint)
        ref = checkpoint_ref(plan.archive.bucket, plan.job_id)
        quietly("checkpoint_delete_failed", ref, partial(self._store.delete, ref))

    def _delete_tail(self, plan: ArchivePlan, checkpoint: Checkpoint) -> None:
        if checkpoint.tail_length:
            ref = tail_ref(plan.archive.bucket, plan.job_id, checkpoint.holds)
            quietly("checkpoint_delete_failed", ref, partial(self._store.delete, ref))
