"""Where each part of the archive starts and ends, and how large a new part is.

A part's size is fixed when it is begun: the minimum until the `Estimate` is known, then what
fits the bytes left to upload in the parts left (those the copies to come need excluded).
Past `EARLY_PARTS` it waits for the estimate, so 10,000 parts always do.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass

from archiver.domain.multipart import MAX_PARTS, Estimate, part_size_for, top_up
from archiver.domain.ports import Buffer, MultipartUpload
from archiver.domain.zipformat import LOCAL_HEADER_REACH

# Parts begun at the minimum size before the archive's size is known (8 GiB at 8 MiB): enough
# for sizing to finish first in practice.
EARLY_PARTS = 1_000

ExpectedSize = Callable[[bool], Estimate | None]
"""What the archive will upload and copy, or None while unknown; True asks to wait for it."""


class PartLayout:
    """The parts begun so far, by index (the part number less one)."""

    def __init__(
        self,
        min_part_size: int,
        expected_size: ExpectedSize,
        grown: Callable[[int], None] = lambda _: None,
    ) -> None:
        """`grown` hears of each part size larger than any begun before (it may raise)."""
        self.starts: list[int] = []  # where each begun part starts in the archive
        self.sizes: list[int] = []
        self.copied_bytes = 0  # of the archive, placed by copies from sources
        self.copy_parts_used = 0  # as `Estimate.copy_parts` counts them
        self.holds: list[int] = []  # offsets of local headers still to be patched
        self.min_part_size = min_part_size
        self._largest = min_part_size
        self._expected_size = expected_size
        self._grown = grown

    def resume(self, sent: SentParts) -> None:
        """The parts a checkpointed build had begun, as it left them."""
        start = 0
        for size in sent.sizes:
            self.starts.append(start)
            self.sizes.append(size)
            start += size
        self.copied_bytes, self.copy_parts_used = sent.copied_bytes, sent.copy_parts_used
        self._largest = max([self._largest, *sent.sizes])

    def sent(
        self, upload: MultipartUpload | None, count: int, crc: int, offset: int, tail: bytes
    ) -> SentParts:
        """The parts as a checkpoint leaves them: the first `count` sent, `tail` in the next."""
        sizes = self.sizes[: count + 1] if tail else self.sizes[:count]
        return SentParts(
            upload, sizes, count, crc, offset, tail, self.copied_bytes, self.copy_parts_used
        )

    def part_at(self, position: int) -> int:
        """The part holding `position`, beginning parts up to it as needed."""
        while not self.starts or position >= self.end_of(len(self.starts) - 1):
            start = self.end_of(len(self.starts) - 1) if self.starts else 0
            size = self._next_size(len(self.sizes), start)
            if size > self._largest:
                self._grown(size)  # before the part exists: a refusal leaves nothing half-begun
                self._largest = size
            self.starts.append(start)
            self.sizes.append(size)
        return bisect.bisect_right(self.starts, position) - 1

    def end_of(self, index: int) -> int:
        return self.starts[index] + self.sizes[index]

    def add(self, size: int) -> int:
        """A part of `size` bytes after the last one (a copied one): its index."""
        self.starts.append(self.end_of(len(self.starts) - 1) if self.starts else 0)
        self.sizes.append(size)
        return len(self.starts) - 1

    def merge(self, index: int, end: int) -> None:
        """The last part, `index`, cut at `end`, becomes the end of the part before it."""
        self.sizes[index - 1] = end - self.starts[index - 1]
        del self.starts[index], self.sizes[index]

    def top_up(self, position: int, deferred: int | None) -> int:
        """Bytes to write at `position` before a copy may follow: the part in progress must
        reach 5 MiB, unless it follows a copied range whose last part is still `deferred` (it
        then goes with that range's staging object)."""
        if position == 0:
            return 0  # nothing before it: the copy begins the archive
        index = self.part_at(position - 1)
        fill = position - self.starts[index]
        staged = deferred is not None and deferred == index - 1
        return 0 if staged or fill == self.sizes[index] else top_up(fill)

    def followed(self, index: int | None, position: int, count: int) -> bool:
        """Whether at least `count` bytes follow part `index` at `position`."""
        return index is not None and position - self.end_of(index) >= count

    def is_held(self, index: int) -> bool:
        """The part may still be patched: it overlaps a held header's reach."""
        start, end = self.starts[index], self.end_of(index)
        return any(start <= held + LOCAL_HEADER_REACH and end > held for held in self.holds)

    def held_bytes(self, parts: dict[int, bytearray]) -> int:
        """What the parts in memory that a held header is in take."""
        return sum(len(part) for index, part in parts.items() if self.is_held(index))

    def _next_size(self, index: int, start: int) -> int:
        expected = self._expected_size(index >= EARLY_PARTS)
        if expected is None:
            return self.min_part_size
        left = max(0, expected.upload_bytes - (start - self.copied_bytes))
        copies_to_come = max(0, expected.copy_parts - self.copy_parts_used)
        return part_size_for(left, self.min_part_size, MAX_PARTS - index - copies_to_come)


@dataclass(frozen=True)
class SentParts:
    """An upload as a checkpoint leaves it: parts 1..`count` sent (`crc`: of their bytes), and
    the part after them begun, holding `tail`, the bytes up to `offset`."""

    upload: MultipartUpload | None  # None: nothing sent yet
    sizes: list[int]  # of every part begun
    count: int
    crc: int
    offset: int
    tail: Buffer
    copied_bytes: int
    copy_parts_used: int

    @property
    def sent_bytes(self) -> int:
        return self.offset - len(self.tail)
