"""Where the archive writer's bytes go: a seekable sink that may also take copied ranges.

`MultipartSink` (`multipart_sink.py`) uploads them as a multipart upload; `FileSink`
(`file_sink.py`) writes a local file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

import structlog

from archiver.app.engine.copying import CopiedRange
from archiver.app.engine.parts import SentParts
from archiver.domain.errors import ObjectUnavailable, TransientError
from archiver.domain.job import ObjectRef

log = structlog.get_logger(__name__)


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

    def hold(self, offset: int) -> None:
        """The header at `offset` will be patched: keep what it is in (several may be held)."""
        ...

    def unhold(self, offset: int) -> None:
        """The header at `offset` is patched: what only it held may go."""
        ...

    def holds_too_much(self) -> bool:
        """Whether the parts kept for headers still to be patched fill the one part's worth
        of memory the budget gives them (`domain/memory.py`)."""
        ...

    def top_up(self) -> int:
        """Bytes to write before a `copy` may follow."""
        ...

    def copy(
        self, source: ObjectRef, start: int, length: int, etag: str | None, crc: int | None
    ) -> CopiedRange:
        """The next `length` bytes are the source's from `start`, copied; their CRC-32 is
        `crc` when known, else the range tells it once the copies answer."""
        ...

    def wait_for_room(self) -> None:
        """Block until a part filled now could go out at once."""
        ...

    def close(self) -> SinkResult: ...

    def pause(self) -> SentParts:
        """Stop for a checkpoint: what is sent stays, for a resumed sink to go on from."""
        ...

    def abort(self) -> None: ...


def quietly(event: str, ref: ObjectRef, clean_up: Callable[[], object]) -> None:
    """A clean-up the store may fail: logged, not raised (lifecycle rules are the backstop)."""
    try:
        clean_up()
    except (ObjectUnavailable, TransientError) as error:
        log.warning(event, ref=str(ref), error=str(error))


@contextmanager
def destination_errors(ref: ObjectRef) -> Iterator[None]:
    """The archive's bucket failing is the deployment's problem, not the job's: retry later."""
    try:
        yield
    except ObjectUnavailable as unavailable:
        raise TransientError(
            f"cannot write the archive {ref}: {unavailable.detail}"
        ) from unavailable
