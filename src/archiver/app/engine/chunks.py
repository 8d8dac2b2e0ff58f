"""Chunks: every byte of every entry once, in job order, as the sources get sized.

A small source is one chunk (often the bytes its size check already read); a large one is
ranged GETs of `range_size`, all pinned to the version (ETag) that was sized. Of an entry the
store copies (`copying.py`) nothing more is fetched: one chunk stands for it, holding what its
size check read, if anything.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from archiver.app.engine.transfer import Chunk, SizedSources
from archiver.domain.errors import ObjectUnavailable
from archiver.domain.job import ObjectRef
from archiver.domain.multipart import Copies
from archiver.domain.plan import PlannedEntry
from archiver.domain.ports import ObjectInfo
from archiver.domain.zipformat import local_header_size


def entry_chunks(
    index: int, info: ObjectInfo, range_size: int, probed: int | None = None
) -> Iterator[Chunk]:
    """Every byte of one entry once, in order: a probed first chunk, then ranges."""
    end = info.size
    start = 0
    if probed is not None:
        length = min(probed, end)
        last = length >= end
        yield Chunk(index, info.ref, 0, length, info.etag, last, True, info.size)
        if last:
            return
        start = length
    while True:
        length = min(range_size, end - start)
        last = start + length >= end
        yield Chunk(index, info.ref, start, length, info.etag, last, False, info.size)
        if last:
            return
        start += length


class ChunkFeed:
    """The chunks of the entries to write, in job order, each entry's once it is sized.

    An unreadable source stops the job unless the policy skips it, which is only known once
    every source is sized.
    """

    def __init__(
        self,
        entries: Sequence[PlannedEntry],
        sizing: SizedSources,
        range_size: int,
        copies: Copies | None = None,
    ) -> None:
        self._entries = entries
        self._sizing = sizing
        self._range_size = range_size
        self._copies = copies
        self._next_entry = 0
        self._current: Iterator[Chunk] = iter(())
        self._peeked: Chunk | None = None
        self._probes_used: set[ObjectRef] = set()

    def __iter__(self) -> ChunkFeed:
        return self

    def ready(self) -> bool:
        """Whether the next chunk is known without waiting for a source to be sized."""
        if self._peeked is None:
            self._peeked = next(self._current, None)
        if self._peeked is not None or self._next_entry >= len(self._entries):
            return True
        return self._sizing.is_sized(self._entries[self._next_entry].source)

    def __next__(self) -> Chunk:
        chunk, self._peeked = self._peeked or next(self._current, None), None
        if chunk is not None:
            return chunk
        while self._next_entry < len(self._entries):
            index = self._next_entry
            self._next_entry += 1
            source = self._entries[index].source
            outcome = self._sizing.outcome(source)
            if isinstance(outcome, ObjectUnavailable):
                self._sizing.settle()  # raises unless the policy skips missing files
                continue
            # A repeated source is fetched again: its probed bytes went to its first entry.
            probed = None if source in self._probes_used else self._sizing.probed_size(source)
            self._probes_used.add(source)
            entry = self._entries[index]
            copied = self._copies is not None and self._copies.chooses(
                outcome.size, self._sizing.stored(entry), local_header_size(entry.name, True)
            )
            if copied:  # nothing fetched: the bytes its size check read, if it kept them
                length = probed or 0
                ref, etag, size = outcome.ref, outcome.etag, outcome.size
                return Chunk(index, ref, 0, length, etag, True, bool(probed), size, True)
            self._current = entry_chunks(index, outcome, self._range_size, probed)
            return next(self._current)
        raise StopIteration
