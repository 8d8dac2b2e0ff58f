"""Server-side copy: which entries the store copies from their sources, and their first bytes.

An entry is copied when it is stored (never deflated: its bytes are the source's), at least
`MIN_COPIED_ENTRY_BYTES`, and the job's share of parts for copies has room
(`domain/multipart.py`). Its CRC-32 must be in its local header before any of it is written:
it comes from the checksum the source was stored with (looked up while sizing); a source
without one is read in full to learn it (reading only: its bytes are still copied).
"""

from __future__ import annotations

from isal import isal_zlib

from archiver.domain.multipart import (
    COPY_HEAD_BYTES,
    COPY_PARTS_SHARE,
    MIN_COPIED_ENTRY_BYTES,
    parts_for_copy,
)
from archiver.domain.ports import Buffer


def worth_copying(size: int) -> bool:
    return size >= MIN_COPIED_ENTRY_BYTES


class Copies:
    """A job's copy decisions, made in job order as its entries' chunks are planned."""

    def __init__(self) -> None:
        self._parts_left = COPY_PARTS_SHARE

    def take(self, size: int) -> bool:
        """Whether a stored entry of `size` bytes is copied (and its parts counted if so)."""
        needed = parts_for_copy(size)
        if not worth_copying(size) or needed > self._parts_left:
            return False
        self._parts_left -= needed
        return True


class CopiedEntry:
    """A copied entry as the writer receives it: the first `COPY_HEAD_BYTES`, kept for the
    top-up, and, when its source has no stored checksum, the CRC-32 of every chunk."""

    def __init__(self, stored_crc: int | None) -> None:
        self.head = bytearray()
        self._stored_crc = stored_crc
        self._read_crc = 0

    def take(self, data: Buffer) -> None:
        room = COPY_HEAD_BYTES - len(self.head)
        if room > 0:
            self.head += memoryview(data)[:room]
        if self._stored_crc is None:
            self._read_crc = isal_zlib.crc32(data, self._read_crc)

    @property
    def crc(self) -> int:
        return self._read_crc if self._stored_crc is None else self._stored_crc
