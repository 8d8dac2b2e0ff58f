"""A seekable byte sink for the ZIP writer: a multipart upload that holds only what may change.

For an entry streamed in pieces, the writer (`ZipStream`) writes a local header, the entry's
data, then seeks back to patch the header with the CRC-32 and sizes (no data descriptor). An
entry written whole needs no patch and holds nothing. The sink cuts the stream
into parts; a part is uploaded as soon as it is full, unless it holds a header still to be
patched (`hold`): later parts go out meanwhile, out of order (S3 allows it).

The archive's CRC-32 is each part's CRC-32 (taken as the part goes out, on the upload thread)
combined in part order, so no byte is held for it; the upload is completed with it as the
object's full checksum, which S3 verifies.

Writing may begin before the archive's size is known (the sources are still being sized).
Each part's size is fixed when the part is begun: the minimum until the expected size is
known, then what fits the rest in the parts left. Past `EARLY_PARTS` the sink waits for it.
"""

from __future__ import annotations

import bisect
import io
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

import structlog
from isal import isal_zlib

from archiver.domain.errors import ObjectUnavailable, TransientError
from archiver.domain.job import ObjectRef
from archiver.domain.ports import Buffer, MultipartUpload, ObjectHeaders, ObjectStore

log = structlog.get_logger(__name__)

MAX_PARTS = 10_000
MIN_PART_SIZE = 5 * 1024 * 1024
# A local header is 30 bytes plus the name (< 64 KiB) plus the ZIP64 extra field.
HEADER_REACH = 30 + 65_535 + 32
# Parts begun at the minimum size before the archive's size is known (8 GiB at 8 MiB): enough
# for sizing to finish first in practice; past it the sink waits, so 10,000 parts always do.
EARLY_PARTS = 1_000
MAX_PART_SIZE = 5 * 1024**3

ExpectedSize = Callable[[bool], int | None]
"""The archive's expected size, or None while unknown; True asks to wait for it."""


@dataclass(frozen=True)
class SinkResult:
    size_bytes: int
    crc32: int


class ArchiveSink(Protocol):
    """What the archive writer needs beyond a seekable binary file."""

    def write(self, data: bytes | bytearray | memoryview, /) -> int: ...

    def tell(self) -> int: ...

    def seek(self, offset: int, whence: int = 0, /) -> int: ...

    def flush(self) -> None: ...

    def hold(self, offset: int) -> None: ...

    def release(self) -> None: ...

    def has_room(self) -> bool:
        """Whether bytes written now would go out at once (no upload backpressure)."""
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


def part_size_for(expected_bytes: int, minimum: int, parts: int = MAX_PARTS) -> int:
    """The smallest MiB-aligned part size >= minimum that fits `expected_bytes` in `parts`."""
    mib = 1024 * 1024
    with_slack = expected_bytes + expected_bytes // 10 + mib
    needed = -(-with_slack // max(1, parts))
    return min(MAX_PART_SIZE, max(minimum, -(-needed // mib) * mib))


class MultipartSink:
    def __init__(
        self,
        store: ObjectStore,
        ref: ObjectRef,
        headers: ObjectHeaders,
        part_size: int,
        upload_concurrency: int = 4,
        expected_size: ExpectedSize | None = None,
    ) -> None:
        self._store = store
        self._ref = ref
        self._headers = headers
        self._min_part_size = part_size
        self._expected_size = expected_size
        self._starts: list[int] = []  # where each begun part starts in the archive
        self._sizes: list[int] = []
        self._parts: dict[int, bytearray] = {}
        self._crcs: dict[int, int] = {}  # of the parts sent, by index
        self._position = 0
        self._end = 0
        self._hold_from: int | None = None
        self._upload: MultipartUpload | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._slots = threading.BoundedSemaphore(upload_concurrency)
        self._concurrency = upload_concurrency
        self._pending: list[Future[None]] = []
        self._closed = False

    # -- the file interface the writer uses ------------------------------------------------

    def write(self, data: bytes | bytearray | memoryview, /) -> int:
        if self._closed:
            return len(data)  # after an abort: discard
        view = memoryview(data).cast("B")
        while view:
            index = self._part_at(self._position)
            offset = self._position - self._starts[index]
            if index in self._crcs:
                raise RuntimeError(f"write at {self._position} into part {index + 1}, already sent")
            part = self._parts.setdefault(index, bytearray())
            if offset > len(part):
                raise RuntimeError(f"write at {self._position} would leave a gap")
            count = min(len(view), self._sizes[index] - offset)
            part[offset : offset + count] = view[:count]
            self._position += count
            view = view[count:]
        self._end = max(self._end, self._position)
        self._send_ready_parts()
        return len(data)

    def tell(self) -> int:
        return self._position

    def _part_at(self, position: int) -> int:
        """The part holding `position`, beginning parts up to it as needed."""
        while not self._starts or position >= self._starts[-1] + self._sizes[-1]:
            start = self._starts[-1] + self._sizes[-1] if self._starts else 0
            size = self._next_part_size(len(self._sizes), start)
            self._starts.append(start)
            self._sizes.append(size)
        return bisect.bisect_right(self._starts, position) - 1

    def _next_part_size(self, index: int, start: int) -> int:
        if self._expected_size is None:
            return self._min_part_size
        expected = self._expected_size(index >= EARLY_PARTS)
        if expected is None:
            return self._min_part_size
        return part_size_for(max(0, expected - start), self._min_part_size, MAX_PARTS - index)

    def seek(self, offset: int, whence: int = io.SEEK_SET, /) -> int:
        if self._closed:
            return self._position
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._end}[whence]
        target = base + offset
        if not 0 <= target <= self._end:
            raise ValueError(f"seek to {target} outside 0..{self._end}")
        self._position = target
        return target

    def flush(self) -> None:
        if not self._closed:
            self._raise_failed_uploads()

    # -- holding the region a header patch will touch -------------------------------------

    def hold(self, offset: int) -> None:
        self._hold_from = offset

    def release(self) -> None:
        self._hold_from = None
        self._send_ready_parts()

    def _is_held(self, index: int) -> bool:
        """The part may still be patched: it overlaps the held header's reach."""
        if self._hold_from is None:
            return False
        start = self._starts[index]
        return (
            start <= self._hold_from + HEADER_REACH and start + self._sizes[index] > self._hold_from
        )

    def _is_full(self, index: int) -> bool:
        return self._starts[index] + self._sizes[index] <= self._end

    def _send_ready_parts(self) -> None:
        for index in sorted(self._parts):
            if self._is_full(index) and not self._is_held(index):
                self._send(index)

    def _send(self, index: int) -> None:
        self._crcs[index] = 0  # taken: written to no more; its CRC comes with the upload
        self._submit(index, self._parts.pop(index))

    # -- uploading ------------------------------------------------------------------------

    def has_room(self) -> bool:
        return sum(1 for future in self._pending if not future.done()) < self._concurrency

    def wait_for_room(self) -> None:
        """Waiting here, before the writer takes the next chunk, rather than with a full part in
        hand keeps that part, and the chunk, from sitting in memory beside what is fetched."""
        if not self._closed:
            self._slots.acquire()  # only this writer submits: the slot stays free until it does
            self._slots.release()

    def _submit(self, index: int, data: Buffer) -> None:
        if index + 1 > MAX_PARTS:
            raise RuntimeError(
                f"the archive needs more than {MAX_PARTS} parts: raise the part size"
            )
        self._raise_failed_uploads()
        if self._upload is None:
            with destination_errors(self._ref):
                self._upload = self._store.start_upload(self._ref, self._headers)
            self._executor = ThreadPoolExecutor(self._concurrency, thread_name_prefix="part")
        assert self._executor is not None
        self._slots.acquire()  # backpressure: at most `upload_concurrency` parts in flight
        try:
            future = self._executor.submit(self._upload_part, index + 1, data)
        except BaseException:
            self._slots.release()
            raise
        future.add_done_callback(lambda _: self._slots.release())
        self._pending.append(future)

    def _upload_part(self, number: int, data: Buffer) -> None:
        assert self._upload is not None
        self._crcs[number - 1] = isal_zlib.crc32(data)
        with destination_errors(self._ref):
            self._upload.upload_part(number, data)

    def _raise_failed_uploads(self) -> None:
        still_running = []
        for future in self._pending:
            if not future.done():
                still_running.append(future)
            elif future.exception() is not None:
                raise future.exception()  # type: ignore[misc]
        self._pending = still_running

    def close(self) -> SinkResult:
        """Send what is left and complete the upload (one PutObject if it fits in one part)."""
        if self._closed:
            raise RuntimeError("sink already closed")
        self._hold_from = None
        if self._upload is None and len(self._sizes) <= 1:
            data = bytes(self._parts.pop(0, b""))
            with destination_errors(self._ref):
                self._store.put(self._ref, data, self._headers)
            self._closed = True
            return SinkResult(len(data), isal_zlib.crc32(data))
        for index in sorted(self._parts):
            self._send(index)
        for future in self._pending:
            future.result()
        self._pending = []
        crc = 0
        for index, size in enumerate(self._sizes):
            length = min(size, self._end - self._starts[index])
            crc = isal_zlib.crc32_combine(crc, self._crcs[index], length)
        assert self._upload is not None
        with destination_errors(self._ref):
            self._upload.complete(crc)
        self._shutdown()
        self._closed = True
        return SinkResult(self._end, crc)

    def abort(self) -> None:
        """Stop uploading and abort the multipart upload, so no storage is left behind."""
        if self._closed:
            return
        self._closed = True
        self._parts.clear()
        for future in self._pending:
            future.cancel()
        self._pending = []
        self._shutdown()
        if self._upload is not None:
            try:
                self._upload.abort()
            except (ObjectUnavailable, TransientError) as error:
                # The bucket's lifecycle rule for incomplete uploads is the backstop.
                log.warning("multipart_abort_failed", archive=str(self._ref), error=str(error))

    def _shutdown(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
