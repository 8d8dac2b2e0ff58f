"""Server-side copy: the CRC-32 of what the store copies.

An entry is copied when it is stored (never deflated: its bytes are the source's), at least
`MIN_COPIED_ENTRY_BYTES`, and the job's share of parts for copies has room
(`domain/multipart.py`, `Copies`). Its CRC-32 belongs in its local header, before its bytes:
it is the checksum the source was stored with when it has one (looked up while sizing), else
what S3 computes of each part it copies into an upload created with CRC32, the header patched
once the copies answer. A store that does not say (moto) has the copied range read to learn
it: reading only, its bytes are still copied. Of the entry itself the worker reads at most a
top-up (`ZipStream.copy`), once per job in practice.
"""

from __future__ import annotations

import threading

from isal import isal_zlib

from archiver.domain.checksum import combine
from archiver.domain.job import ObjectRef
from archiver.domain.ports import MultipartUpload, ObjectStore

READ_BYTES = 8 * 1024 * 1024
"""How much of a copied range is read at once when the store does not give its CRC-32."""


class CopiedRange:
    """A range of a source copied as parts: the CRC-32 of each, as the copies answer."""

    def __init__(self, parts: list[tuple[int, int]], known_crc: int | None) -> None:
        self.parts = parts  # (start in the source, length)
        self.length = sum(length for _, length in parts)
        self.known_crc = known_crc
        self._crcs: list[int | None] = [None] * len(parts)
        self._left = len(parts)
        self._error: BaseException | None = None
        self._lock = threading.Lock()
        self._done = threading.Event()

    def copy_part(
        self,
        number: int,
        upload: MultipartUpload,
        store: ObjectStore,
        source: ObjectRef,
        etag: str | None,
        part: int,
        *,
        exact: bool = False,
    ) -> None:
        """Have the store copy the range's `part` as the upload's part `number` (`exact`:
        this part's own CRC-32 is needed, even when the range's is known)."""
        start, length = self.parts[part]
        try:
            crc = upload.copy_part(number, source, start, length, etag)
            if crc is None and (exact or self.known_crc is None):  # a store that does not say
                crc = read_crc(store, source, start, length, etag)
        except BaseException as error:
            self.failed(error)
            raise
        self._part_copied(part, crc)

    def _part_copied(self, index: int, crc: int | None) -> None:
        with self._lock:
            self._crcs[index] = crc
            self._left -= 1
            if self._left == 0:
                self._done.set()

    def failed(self, error: BaseException) -> None:
        with self._lock:
            self._error = self._error or error
        self._done.set()

    def done(self) -> bool:
        return self._done.is_set()

    def crc(self) -> int:
        """The range's CRC-32, waiting for the copies; raises what a copy raised."""
        self._done.wait()
        if self._error is not None:
            raise self._error
        return combine(self.pieces())

    def part_crc(self, part: int) -> int:
        """The CRC-32 of one part, once copied (or read) without error."""
        with self._lock:
            crc, error = self._crcs[part], self._error
        if error is not None:
            raise error
        if crc is None:
            raise RuntimeError(f"part {part} of the range has no CRC-32 yet")
        return crc

    def pieces(self) -> list[tuple[int, int]]:
        """(crc, length) of the range, for the archive's CRC-32: its parts' if each told."""
        if all(crc is not None for crc in self._crcs):
            return [
                (crc or 0, length) for crc, (_, length) in zip(self._crcs, self.parts, strict=True)
            ]
        assert self.known_crc is not None, "a copy without a CRC-32 reads its range for one"
        return [(self.known_crc, self.length)]


def read_crc(
    store: ObjectStore, source: ObjectRef, start: int, length: int, etag: str | None
) -> int:
    """The CRC-32 of a range, read in pieces (for a store that copies without saying it)."""
    crc, end = 0, start + length
    while start < end:
        piece = min(READ_BYTES, end - start)
        crc = isal_zlib.crc32(store.fetch(source, start, piece, etag), crc)
        start += piece
    return crc
