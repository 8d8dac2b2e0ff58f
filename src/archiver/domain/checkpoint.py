"""A long job's progress, recorded so that another receipt of it carries on where it stopped.

SQS holds one receipt of a message for at most 12 hours. Before that (`SQS_MAX_HOLD_SECONDS`)
the writer stops at the end of an entry, once every part it began is uploaded and every copy
has answered. What it has done goes into `{job_id}/checkpoint.json` beside the archive, the
bytes of the part it had begun into `{job_id}/checkpoint.{holds}.tail`; a continuation message
(attributes `archiver-job-id`, `-created`, `-holds`, `-token`) then replaces the job's message.
A worker that receives it, or a plain redelivery finding the checkpoint, resumes the same
multipart upload: no part is uploaded twice. The token, drawn at the job's first checkpoint and
kept in its checkpoint and its manifest, is what makes a message a continuation: a producer
cannot claim another job's key by naming it.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from archiver.domain.job import ObjectRef
from archiver.domain.zipformat import Entry, central_directory

JOB_ID_ATTRIBUTE = "archiver-job-id"
CREATED_ATTRIBUTE = "archiver-job-created"
HOLDS_ATTRIBUTE = "archiver-job-holds"
TOKEN_ATTRIBUTE = "archiver-job-token"  # noqa: S105 (a name, not a secret)
CONTINUATION_ATTRIBUTES = (JOB_ID_ATTRIBUTE, CREATED_ATTRIBUTE, HOLDS_ATTRIBUTE, TOKEN_ATTRIBUTE)
MAX_HOLD_SECONDS = 43_200
"""SQS's cap on how long one receipt of a message stays hidden, from when it was received."""
RECEIPT_CAP_SECONDS = MAX_HOLD_SECONDS - 120
"""When a job still in the entry it was writing at `SQS_MAX_HOLD_SECONDS` is stopped and its
message released, while SQS still takes a visibility change."""

EntryRecord = tuple[str, int, tuple[int, int], int, int, int, int, bool, int | None, bool]
"""An `Entry`'s fields, in order: the central directory the resumed writer ends with."""


@dataclass(frozen=True)
class Continuation:
    """What a continuation message says of the job it carries on (its attributes)."""

    job_id: str
    created_at: datetime  # the job's first message's: the archive's key and entry times
    holds: int  # the checkpoint's `holds`: continuations of one job differ by it
    token: str  # the checkpoint's `token`: what proves the claim


def continuation_attributes(continuation: Continuation) -> dict[str, str]:
    """What a continuation message carries, as SQS message attributes."""
    return {
        JOB_ID_ATTRIBUTE: continuation.job_id,
        CREATED_ATTRIBUTE: continuation.created_at.isoformat(),
        HOLDS_ATTRIBUTE: str(continuation.holds),
        TOKEN_ATTRIBUTE: continuation.token,
    }


def continuation_of(attributes: dict[str, str]) -> Continuation | None:
    """The continuation a message's attributes describe; None for a job's first message (or
    attributes that do not make one: the message is then the job's own)."""
    job_id, token = attributes.get(JOB_ID_ATTRIBUTE), attributes.get(TOKEN_ATTRIBUTE)
    if not job_id or not token:
        return None
    try:
        created_at = datetime.fromisoformat(attributes[CREATED_ATTRIBUTE])
        holds = int(attributes.get(HOLDS_ATTRIBUTE, "0"))
    except (KeyError, ValueError):
        return None
    if created_at.tzinfo is None:
        return None
    return Continuation(job_id, created_at, holds, token)


@dataclass(frozen=True)
class Carried:
    """What a resumed build carries over from before its checkpoint, counted as if written
    now: by the job's policy, the notification, and the sizes of the parts to come."""

    files: int = 0
    source_bytes: int = 0  # what the written entries' sources add up to (MAX_ARCHIVE_BYTES)
    missing: tuple[str, ...] = ()
    upload_bytes: int = 0  # uploaded so far, and the written entries' central directory
    copy_parts_used: int = 0
    copies: tuple[int, int | None] | None = None  # `Copies.state`


class Checkpoint(BaseModel):
    """Everything a resumed build needs; the job's own message holds the rest."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    job_id: str
    token: str = Field(min_length=16, description="Drawn at the first checkpoint, then kept.")
    fingerprint: str  # the plan's: a checkpoint of other content is not resumed
    upload_id: str | None  # None: nothing was sent yet (the tail holds it all)
    holds: int = Field(ge=1, description="Receipts checkpointed so far, this one included.")
    part_sizes: list[int] = Field(description="Of every part begun: the tail's is the last.")
    parts_sent: int = Field(ge=0, description="Parts 1..parts_sent are in the upload.")
    sent_crc: int = Field(ge=0, description="CRC-32 of the archive's bytes in those parts.")
    offset: int = Field(ge=0, description="Where the writer stopped: the tail ends there.")
    tail_length: int = Field(ge=0)
    tail_crc: int = Field(ge=0, description="CRC-32 of the tail: checked when it is read back.")
    copied_bytes: int = Field(ge=0)
    copy_parts_used: int = Field(ge=0)
    copy_parts_left: int = Field(ge=0)
    since_copy: int | None = Field(ge=0, description="Bytes written since the last copy.")
    next_entry: int = Field(ge=0, description="The plan's first entry not yet written.")
    entries: list[EntryRecord]
    missing: list[str]

    @property
    def sent_bytes(self) -> int:
        return self.offset - self.tail_length

    def written(self) -> list[Entry]:
        return [entry_of(record) for record in self.entries]

    def carried(self) -> Carried:
        written = self.written()
        central = sum(len(piece) for piece in central_directory(written, self.offset))
        return Carried(
            files=len(written),
            source_bytes=sum(entry.size for entry in written),
            missing=tuple(self.missing),
            upload_bytes=self.offset - self.copied_bytes + central,
            copy_parts_used=self.copy_parts_used,
            copies=(self.copy_parts_left, self.since_copy),
        )


def record_of(entry: Entry) -> EntryRecord:
    return astuple(entry)


def entry_of(record: EntryRecord) -> Entry:
    return Entry(*record)


def checkpoint_ref(bucket: str, job_id: str) -> ObjectRef:
    return ObjectRef(bucket, f"{job_id}/checkpoint.json")


def tail_ref(bucket: str, job_id: str, holds: int) -> ObjectRef:
    """One per checkpoint: a tail is never replaced under a checkpoint that names it."""
    return ObjectRef(bucket, f"{job_id}/checkpoint.{holds}.tail")


def sent_ref(bucket: str, job_id: str, holds: int) -> ObjectRef:
    """Written once the checkpoint's continuation is sent: a receipt of an earlier message of
    the job (whose delete failed) then knows another carries the job on."""
    return ObjectRef(bucket, f"{job_id}/checkpoint.{holds}.sent")
