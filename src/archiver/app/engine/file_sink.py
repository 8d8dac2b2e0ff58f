"""A local file as the archive's destination: it can be patched anywhere, so nothing is held."""

from __future__ import annotations

import io
from typing import BinaryIO

from isal import isal_zlib

from archiver.app.engine.copying import CopiedRange
from archiver.app.engine.parts import SentParts
from archiver.app.engine.sink import SinkResult
from archiver.domain.job import ObjectRef

READ_BLOCK = 8 * 1024 * 1024


class FileSink:
    """A local file as the archive's destination (`archiver build --output`)."""

    def __init__(self, file: BinaryIO) -> None:
        self._file = file
        self._aborted = False

    def write(self, data: bytes | bytearray | memoryview, /) -> int:
        if self._aborted:
            return len(data)  # after an abort: discard
        return self._file.write(data)

    def tell(self) -> int:
        return 0 if self._aborted else self._file.tell()

    def seek(self, offset: int, whence: int = io.SEEK_SET, /) -> int:
        return 0 if self._aborted else self._file.seek(offset, whence)

    def hold(self, offset: int) -> None:
        """A file can be patched anywhere: nothing to hold."""

    def unhold(self, offset: int) -> None:
        """Nothing is held."""

    def holds_too_much(self) -> bool:
        return False

    def top_up(self) -> int:
        return 0

    def copy(
        self, source: ObjectRef, start: int, length: int, etag: str | None, crc: int | None
    ) -> CopiedRange:
        raise NotImplementedError("a local file is written byte by byte: nothing is copied")

    def wait_for_room(self) -> None:
        """A file takes every write at once."""

    def pause(self) -> SentParts:
        raise RuntimeError("an archive written to a file is never checkpointed")

    def close(self) -> SinkResult:
        self._file.flush()
        size = self._file.seek(0, io.SEEK_END)
        self._file.seek(0)
        crc = 0
        while block := self._file.read(READ_BLOCK):
            crc = isal_zlib.crc32(block, crc)
        return SinkResult(size, crc)

    def abort(self) -> None:
        if not self._aborted and not self._file.closed:
            self._file.truncate(0)
        self._aborted = True
