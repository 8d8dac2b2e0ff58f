"""The job's policy once its sources are sized: which entries are written, or why none can be.

`MISSING_FILES` decides what an unreadable source does to the job, `MAX_ARCHIVE_BYTES` how
much it may archive. Pure: the engine sizes the sources and hands over what it found.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from archiver.domain.checkpoint import Carried
from archiver.domain.errors import ErrorCode, ObjectUnavailable, PermanentError, Unavailable
from archiver.domain.job import ObjectRef
from archiver.domain.plan import ArchivePlan, ArchivePolicy, MissingFiles
from archiver.domain.ports import ObjectInfo

NOTHING = Carried()  # a job's first build carries nothing over

SOURCE_ERROR_CODES = {
    Unavailable.NOT_FOUND: ErrorCode.SOURCE_NOT_FOUND,
    Unavailable.ACCESS_DENIED: ErrorCode.SOURCE_ACCESS_DENIED,
    Unavailable.UNREADABLE: ErrorCode.SOURCE_UNREADABLE,
    Unavailable.ARCHIVED: ErrorCode.SOURCE_UNREADABLE,
}
REASONS = {
    Unavailable.NOT_FOUND: "not found",
    Unavailable.ACCESS_DENIED: "access denied",
    Unavailable.UNREADABLE: "unreadable",
    Unavailable.ARCHIVED: "archived, to be restored before they can be read (a Glacier storage "
    "class or an archive access tier)",
}


@dataclass
class SourceCheck:
    """Every source sized: what can be read, and what cannot."""

    infos: dict[ObjectRef, ObjectInfo]
    unavailable: list[ObjectUnavailable]


@dataclass(frozen=True)
class Admitted:
    """What the job's policy made of the sized sources: the entries to write."""

    plan: ArchivePlan
    missing: list[str]
    written: int = 0  # entries a resumed job wrote before its checkpoint

    @property
    def file_count(self) -> int:
        return self.written + len(self.plan.entries)


def source_failure(failures: list[ObjectUnavailable]) -> PermanentError:
    """Unreadable sources as the job's failure: named all together, counted by reason."""
    code = SOURCE_ERROR_CODES[failures[0].reason]
    counts: dict[Unavailable, int] = {}
    for failure in failures:
        counts[failure.reason] = counts.get(failure.reason, 0) + 1
    summary = ", ".join(f"{count} {REASONS[reason]}" for reason, count in counts.items())
    return PermanentError(
        code,
        f"{len(failures)} source(s) cannot be read ({summary})",
        sorted({failure.location for failure in failures}),
    )


def admit(
    plan: ArchivePlan, checked: SourceCheck, policy: ArchivePolicy, carried: Carried = NOTHING
) -> Admitted:
    """The entries to write (of a resumed job, those after its checkpoint: what it `carried`
    counts too). Raises PermanentError when the job cannot be done."""
    admitted = _apply_missing_files(plan, checked, policy.missing_files, carried)
    total = carried.source_bytes + sum(
        checked.infos[entry.source].size for entry in admitted.plan.entries
    )
    if total > policy.max_archive_bytes:
        raise PermanentError(
            ErrorCode.ARCHIVE_TOO_LARGE,
            f"the sources add up to {total:,} bytes; "
            f"the limit is {policy.max_archive_bytes:,} (MAX_ARCHIVE_BYTES)",
        )
    return admitted


def _apply_missing_files(
    plan: ArchivePlan, checked: SourceCheck, missing_files: MissingFiles, carried: Carried
) -> Admitted:
    if not checked.unavailable:
        return Admitted(plan, list(carried.missing), carried.files)
    if missing_files is MissingFiles.FAIL:
        raise source_failure(checked.unavailable)
    gone = {unavailable.location for unavailable in checked.unavailable}
    kept = tuple(entry for entry in plan.entries if str(entry.source) not in gone)
    if not kept and not carried.files:
        raise source_failure(checked.unavailable)
    found = (unavailable.location for unavailable in checked.unavailable)
    missing = list(dict.fromkeys([*carried.missing, *found]))
    return Admitted(replace(plan, entries=kept), missing, carried.files)
