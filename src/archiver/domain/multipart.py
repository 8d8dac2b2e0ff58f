"""S3's multipart rules, and which part of an archive S3 may copy itself (pure arithmetic).

Every part but the last is 5 MiB to 5 GiB, and an upload has at most 10,000 parts. A stored
entry's bytes are its source's bytes unchanged, so `UploadPartCopy` can place them. What is
written between two copied entries (the next one's local header, small entries) is usually
under 5 MiB, too small for a part of its own: it goes out as the last part of a *staging
object*, whose first part is the previous entry's last 5 MiB, copied; the archive copies the
staging object whole. Only the first copied entry of a job may need its part before it topped
up with its own first bytes (or one after 5 MiB of streamed entries).

    first part: what comes before, the header, a top-up | copied (1..n parts) | copy of T | ...
    T (staging): the entry's last 5 MiB, copied | the next header (+ small entries), uploaded

Each copy into an upload created with CRC32 answers with the CRC-32 of what it copied, so an
entry's CRC-32 is known without reading it, whatever checksum its source has. An entry is
copied from 5 MiB.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final, NamedTuple

from archiver.domain.zipformat import deflate_bound

MIN_PART_BYTES: Final = 5 * 1024 * 1024
MAX_PART_BYTES: Final = 5 * 1024**3
MAX_PARTS: Final = 10_000

COPY_HEAD_BYTES: Final = MIN_PART_BYTES
"""The most of an entry's first bytes a top-up may take."""
MIN_COPIED_ENTRY_BYTES: Final = MIN_PART_BYTES
STAGED_BYTES: Final = MIN_PART_BYTES
"""A copied range's last part, copied first into a staging object: the part that lets what
follows it go out with it, whatever its size."""
STAGING_PREFIX: Final = "archiver-staging/"
"""Where staging objects live in the archive bucket: one literal prefix, so one lifecycle rule
can expire what a killed worker left behind."""
COPY_PART_BYTES: Final = 256 * 1024 * 1024
"""Copied ranges are cut into parts of about this size: S3 copies them in parallel, and a
shutdown waits for no more than one such part per upload thread."""
COPY_PARTS_SHARE: Final = MAX_PARTS // 2
"""Copies use at most this many parts (theirs and the uploaded parts they close early), so
the stream around them always has the other half."""


class Estimate(NamedTuple):
    """What is left to plan parts for, once every source is sized (upper bounds)."""

    upload_bytes: int  # the archive's bytes that go through uploaded parts
    copy_parts: int  # parts the copies take, the uploaded parts they close early included


def part_size_for(expected_bytes: int, minimum: int, parts: int = MAX_PARTS) -> int:
    """The smallest MiB-aligned part size >= minimum that fits `expected_bytes` in `parts`."""
    mib = 1024 * 1024
    with_slack = expected_bytes + expected_bytes // 10 + mib
    needed = -(-with_slack // max(1, parts))
    return min(MAX_PART_BYTES, max(minimum, -(-needed // mib) * mib))


def copy_parts(start: int, length: int) -> list[tuple[int, int]]:
    """A copied range cut into parts: (start, length). The last is `STAGED_BYTES` when the
    rest can be a part too (else the whole range is one), the rest even parts of at most
    `COPY_PART_BYTES`."""
    if length < MIN_PART_BYTES:
        raise ValueError(f"a copied range of {length} bytes is below the 5 MiB part minimum")
    if length < STAGED_BYTES + MIN_PART_BYTES:
        return [(start, length)]
    body = length - STAGED_BYTES
    count = -(-body // COPY_PART_BYTES)
    base, extra = divmod(body, count)
    parts = []
    for index in range(count):
        size = base + (index < extra)
        parts.append((start, size))
        start += size
    return [*parts, (start, STAGED_BYTES)]


def parts_for_copy(size: int) -> int:
    """The most parts copying an entry of `size` bytes takes, the part it closes included."""
    return 2 + -(-size // COPY_PART_BYTES)


def staging_prefix(archive_key: str) -> str:
    """Where an archive's staging objects are written: `archiver-staging/{archive key}/`."""
    return f"{STAGING_PREFIX}{archive_key}/"


def staging_key(archive_key: str, part_number: int) -> str:
    """The staging object that becomes the archive's part `part_number`."""
    return f"{staging_prefix(archive_key)}part-{part_number:05d}"


def top_up(part_fill: int) -> int:
    """Bytes to add to a part holding `part_fill` bytes before it may be followed by a copy."""
    return max(0, MIN_PART_BYTES - part_fill)


def worth_copying(size: int) -> bool:
    """Whether an entry of `size` bytes may be copied at all (where it stands decides)."""
    return size >= MIN_COPIED_ENTRY_BYTES


class Copies:
    """A job's copy decisions, made in job order over every entry written. A stored entry is
    copied while the copies' share of parts has room, and when nothing of it need be read:
    - from 10 MiB, always (a top-up of at most 5 MiB leaves a range S3 can copy);
    - from 5 MiB, when it follows a copied entry with under 5 MiB written between (the next
      header and small entries): that goes with the previous range's staging object, so no
      top-up is needed and the entry is copied whole. Elsewhere it streams: a top-up would
      leave too little to copy."""

    def __init__(self, parts_left: int | None = None, since: int | None = None) -> None:
        """A resumed job's go on from where its checkpoint left them (`state`)."""
        self._parts_left = COPY_PARTS_SHARE if parts_left is None else parts_left
        self._since = since  # bytes written since the last copied range, at most

    @property
    def state(self) -> tuple[int, int | None]:
        """The parts the copies have left, and the bytes written since the last one."""
        return self._parts_left, self._since

    def chooses(self, size: int, stored: bool, header: int) -> bool:
        """Whether an entry of `size` bytes (`stored`: its bytes are its source's, else at
        most `deflate_bound` of them) whose local header takes at most `header` is copied."""
        since = None if self._since is None else self._since + header
        chained = since is not None and since < MIN_PART_BYTES
        needed = parts_for_copy(size)
        copied = (
            stored
            and worth_copying(size)
            and (chained or size >= COPY_HEAD_BYTES + MIN_PART_BYTES)
            and needed <= self._parts_left
        )
        if copied:
            self._parts_left -= needed
            self._since = 0
        elif since is not None:
            self._since = since + (size if stored else deflate_bound(size))
        return copied


def estimate(
    archive_bound: int, entries: Iterable[tuple[int, bool, int]], copies: Copies | None = None
) -> Estimate:
    """What the archive uploads and the parts its copies take, from its size bound and its
    entries' (size, stored, header bound) in job order (the copy decisions replayed, from
    `copies` when a resumed job's carry on)."""
    copies, saved, reserved = copies or Copies(), 0, 0
    for size, stored, header in entries:
        if copies.chooses(size, stored, header):  # at most 5 MiB of it topped up
            saved += size - COPY_HEAD_BYTES
            reserved += parts_for_copy(size)
    return Estimate(archive_bound - saved, reserved)
