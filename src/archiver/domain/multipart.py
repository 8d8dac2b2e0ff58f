"""S3's multipart rules, and which part of an archive S3 may copy itself (pure arithmetic).

Every part but the last is 5 MiB to 5 GiB, and an upload has at most 10,000 parts. A stored
entry's bytes are its source's bytes unchanged, so `UploadPartCopy` can place them: the
entry's local header, and the stream before it, travel in an uploaded part that must still
reach 5 MiB, topped up with the entry's first bytes; the rest of the entry is copied.

    ... | header + first bytes | copied (1..n parts) | next header + first bytes | ...
          uploaded part, >= 5 MiB                     uploaded part, >= 5 MiB

An entry is copied when, whatever the top-up, at least 5 MiB are left to copy: from 10 MiB.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final, NamedTuple

MIN_PART_BYTES: Final = 5 * 1024 * 1024
MAX_PART_BYTES: Final = 5 * 1024**3
MAX_PARTS: Final = 10_000

COPY_HEAD_BYTES: Final = MIN_PART_BYTES
"""The most of an entry's first bytes a top-up may take (and so what is fetched of it)."""
MIN_COPIED_ENTRY_BYTES: Final = COPY_HEAD_BYTES + MIN_PART_BYTES
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
    """A copied range cut into even parts of at most `COPY_PART_BYTES`: (start, length)."""
    if length < MIN_PART_BYTES:
        raise ValueError(f"a copied range of {length} bytes is below the 5 MiB part minimum")
    count = -(-length // COPY_PART_BYTES)
    base, extra = divmod(length, count)
    parts = []
    for index in range(count):
        size = base + (index < extra)
        parts.append((start, size))
        start += size
    return parts


def parts_for_copy(size: int) -> int:
    """The most parts copying an entry of `size` bytes takes, the part it closes included."""
    return 1 + -(-size // COPY_PART_BYTES)


def top_up(part_fill: int) -> int:
    """Bytes to add to a part holding `part_fill` bytes before it may be followed by a copy."""
    return max(0, MIN_PART_BYTES - part_fill)


def worth_copying(size: int) -> bool:
    return size >= MIN_COPIED_ENTRY_BYTES


class Copies:
    """A job's copy decisions, made in job order: each stored entry, by its size, is copied
    while the copies' share of parts has room."""

    def __init__(self) -> None:
        self._parts_left = COPY_PARTS_SHARE

    def chooses(self, size: int) -> bool:
        """Whether a stored entry of `size` bytes is copied (and its parts counted if so)."""
        needed = parts_for_copy(size)
        if not worth_copying(size) or needed > self._parts_left:
            return False
        self._parts_left -= needed
        return True


def estimate(archive_bound: int, stored_sizes: Iterable[int]) -> Estimate:
    """What the archive uploads and the parts its copies take, from its size bound and the
    sizes of its stored entries in job order (the copy decisions replayed)."""
    copies, saved, reserved = Copies(), 0, 0
    for size in stored_sizes:
        if copies.chooses(size):
            saved += size - COPY_HEAD_BYTES
            reserved += parts_for_copy(size)
    return Estimate(archive_bound - saved, reserved)
