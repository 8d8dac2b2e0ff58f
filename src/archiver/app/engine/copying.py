"""Server-side copy: a copied entry's first bytes, and its CRC-32.

An entry is copied when it is stored (never deflated: its bytes are the source's), at least
`MIN_COPIED_ENTRY_BYTES`, and the job's share of parts for copies has room
(`domain/multipart.py`, `Copies`). Its CRC-32 must be in its local header before any of it is
written: it comes from the checksum the source was stored with (looked up while sizing); a
source without one is read in full to learn it (reading only: its bytes are still copied).
"""

from __future__ import annotations

from isal import isal_zlib

from archiver.domain.multipart import COPY_HEAD_BYTES
from archiver.domain.ports import Buffer


class CopiedEntry:
    """A copied entry as the writer receives it: the first `COPY_HEAD_BYTES`, kept for the
    top-up, and, when its source has no stored checksum, the CRC-32 of every chunk."""

    def __init__(self, stored_crc: int | None) -> None:
        self.head = bytearray()
        self._stored_crc = stored_crc
        self._read_crc = 0

    def read(self, data: Buffer) -> None:
        room = COPY_HEAD_BYTES - len(self.head)
        if room > 0:
            self.head += memoryview(data)[:room]
        if self._stored_crc is None:
            self._read_crc = isal_zlib.crc32(data, self._read_crc)

    @property
    def crc(self) -> int:
        return self._read_crc if self._stored_crc is None else self._stored_crc
