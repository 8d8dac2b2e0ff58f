"""Where the archive writer's bytes go: a seekable sink that may also take copied ranges.

`MultipartSink` (`multipart_sink.py`) uploads them as a multipart upload; `FileSink`
(`file_sink.py`) writes a local file.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

from archiver.domain.errors import ObjectUnavailable, TransientError
from archiver.domain.job import ObjectRef


@dataclass(frozen=True)
class SinkResult:
    size_bytes: int
    crc32: int
    copied_bytes: int = 0  # of size_bytes, placed by the store itself


class ArchiveSink(Protocol):
    """Where the writer's bytes go: a stream it seeks back into to patch a header, which
    holds what may still be patched and may take a range the store copies instead."""

    def write(self, data: bytes | bytearray | memoryview, /) -> int: ...

    def tell(self) -> int: ...

    def seek(self, offset: int, whence: int = 0, /) -> int: ...

    def hold(self, offset: int) -> None: ...

    def unhold(self) -> None:
        """The held header is patched: what held parts there are may go."""
        ...

    def top_up(self) -> int:
        """Bytes to write before a `copy` may follow."""
        ...

    def copy(self, source: ObjectRef, start: int, length: int, etag: str | None, crc: int) -> None:
        """The next `length` bytes are the source's from `start` (CRC-32 `crc`), copied."""
        ...

    def wait_for_room(self) -> None:
        """Block until a part filled now could go out at once."""
        ...

    def close(self) -> SinkResult: ...

    def abort(self) -> None: ...


@contextmanager
def destination_errors(ref: ObjectRef) -> Iterator[None]:
    """The archive's bucket failing is the deployment's problem, not the job's: retry later."""
    try:
        yield
    except ObjectUnavailable as unavailable:
        raise TransientError(
            f"cannot write the archive {ref}: {unavailable.detail}"
        ) from unavailable
