"""The archive as a multipart upload that holds only what may change (an `ArchiveSink`).

For an entry streamed in pieces, the writer (`ZipStream`) writes a local header, the data, then
seeks back to patch the header (no data descriptor); an entry written whole holds nothing. The
sink cuts the stream into parts, each uploaded as soon as it is full unless it holds a header
still to be patched (`hold`): later parts go out meanwhile, out of order (S3 allows it).

A stored entry's bytes may instead be copied by S3 from its source (`copy`, see
`domain/multipart.py`): the part in progress is closed where the copy begins (the writer has
topped it up to 5 MiB, `top_up`), the copied range becomes copy parts, and the next part begins
after it. Copy parts hold no memory, so they have their own slots and never hold the writer.

The archive's CRC-32 is each part's (taken as it goes out) and each copied range's (from its
source, or S3's answers to the copies) combined in order, and S3 verifies it at completion.
Several headers may be held at once: a copied entry's waits for its copies' CRC-32s.

Writing may begin before the sources are all sized. A part's size is fixed when it is begun:
the minimum until the `Estimate` is known, then what fits the bytes left to upload in the parts
left (those the copies to come need excluded). Past `EARLY_PARTS` the sink waits for it.
"""

from __future__ import annotations

import bisect
import io
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import structlog
from isal import isal_zlib

from archiver.app.engine.copying import CopiedRange
from archiver.app.engine.sink import SinkResult, destination_errors
from archiver.domain.checksum import combine
from archiver.domain.errors import ObjectUnavailable, TransientError
from archiver.domain.job import ObjectRef
from archiver.domain.multipart import MAX_PARTS, Estimate, copy_parts, part_size_for, top_up
from archiver.domain.ports import Buffer, MultipartUpload, ObjectHeaders, ObjectStore
from archiver.domain.zipformat import LOCAL_HEADER_REACH

log = structlog.get_logger(__name__)

# Parts begun at the minimum size before the archive's size is known (8 GiB at 8 MiB): enough
# for sizing to finish first in practice; past it the sink waits, so 10,000 parts always do.
EARLY_PARTS = 1_000

ExpectedSize = Callable[[bool], Estimate | None]
"""What the archive will upload and copy, or None while unknown; True asks to wait for it."""


class MultipartSink:
    def __init__(
        self,
        store: ObjectStore,
        ref: ObjectRef,
        headers: ObjectHeaders,
        part_size: int,
        upload_concurrency: int,
        expected_size: ExpectedSize,
        between_copies: Callable[[], None],
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
        # Copy parts by index: the range each belongs to, and which of its parts it is.
        self._copied: dict[int, tuple[CopiedRange, int]] = {}
        self._copy_slots = threading.BoundedSemaphore(upload_concurrency)
        self._copied_bytes = 0
        self._copy_parts_used = 0  # as `Estimate.copy_parts` counts them
        self._between_copies = between_copies  # a shutdown raises there
        self._position = 0
        self._end = 0
        self._holds: list[int] = []  # offsets of headers still to be patched
        self._upload: MultipartUpload | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._slots = threading.BoundedSemaphore(upload_concurrency)
        self._concurrency = upload_concurrency
        self._pending: list[Future[None]] = []
        self._closed = False

    def write(self, data: bytes | bytearray | memoryview, /) -> int:
        if self._closed:
            return len(data)  # after an abort: discard
        view = memoryview(data).cast("B")
        while view:
            index = self._part_at(self._position)
            offset = self._position - self._starts[index]
            if index in self._crcs or index in self._copied:
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
        expected = self._expected_size(index >= EARLY_PARTS)
        if expected is None:
            return self._min_part_size
        left = max(0, expected.upload_bytes - (start - self._copied_bytes))
        copies_to_come = max(0, expected.copy_parts - self._copy_parts_used)
        return part_size_for(left, self._min_part_size, MAX_PARTS - index - copies_to_come)

    def seek(self, offset: int, whence: int = io.SEEK_SET, /) -> int:
        if self._closed:
            return self._position
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._end}[whence]
        target = base + offset
        if not 0 <= target <= self._end:
            raise ValueError(f"seek to {target} outside 0..{self._end}")
        self._position = target
        return target

    def hold(self, offset: int) -> None:
        self._holds.append(offset)

    def unhold(self, offset: int) -> None:
        self._holds.remove(offset)
        self._send_ready_parts()

    def _is_held(self, index: int) -> bool:
        """The part may still be patched: it overlaps a held header's reach."""
        start, end = self._starts[index], self._starts[index] + self._sizes[index]
        return any(start <= held + LOCAL_HEADER_REACH and end > held for held in self._holds)

    def _is_full(self, index: int) -> bool:
        return self._starts[index] + self._sizes[index] <= self._end

    def _send_ready_parts(self) -> None:
        for index in sorted(self._parts):
            if self._is_full(index) and not self._is_held(index):
                self._send(index)

    def _send(self, index: int) -> None:
        self._crcs[index] = 0  # taken: written to no more; its CRC comes with the upload
        self._run(self._slots, self._upload_part, index + 1, self._parts.pop(index))

    def wait_for_room(self) -> None:
        """Waited for before the writer takes a chunk: no full part waits in memory meanwhile."""
        if not self._closed:
            self._slots.acquire()  # only this writer submits: the slot stays free until it does
            self._slots.release()

    def _run(
        self, slots: threading.BoundedSemaphore, task: Callable[..., None], number: int, *args: Any
    ) -> None:
        """Run part `number`'s request on a part thread once `slots` has room (backpressure)."""
        if number > MAX_PARTS:
            raise RuntimeError(f"the archive needs more than {MAX_PARTS} parts")
        self._raise_failed_uploads()
        self._started()
        assert self._executor is not None
        slots.acquire()
        try:
            future = self._executor.submit(task, number, *args)
        except BaseException:
            slots.release()
            raise
        future.add_done_callback(lambda _: slots.release())
        self._pending.append(future)

    def _started(self) -> MultipartUpload:
        if self._upload is None:
            with destination_errors(self._ref):
                self._upload = self._store.start_upload(self._ref, self._headers)
            # Uploads and copies each have `concurrency` slots.
            self._executor = ThreadPoolExecutor(2 * self._concurrency, thread_name_prefix="part")
        return self._upload

    def top_up(self) -> int:
        """Bytes to write before a copy may follow: the part in progress must reach 5 MiB."""
        if self._position == 0:
            return 0  # nothing before it: the copy begins the archive
        index = self._part_at(self._position - 1)
        fill = self._position - self._starts[index]
        return 0 if fill == self._sizes[index] else top_up(fill)

    def copy(
        self, source: ObjectRef, start: int, length: int, etag: str | None, crc: int | None
    ) -> CopiedRange:
        """Close the part in progress where the copy begins; the range goes as copy parts."""
        ranges = copy_parts(start, length)
        copied = CopiedRange(ranges, crc)
        if self._closed:
            return copied
        if self._position != self._end:
            raise RuntimeError("a copy must follow the last byte written")
        if self.top_up():
            raise RuntimeError(f"a copy at {self._position} follows a part under 5 MiB")
        if self._position:
            index = self._part_at(self._position - 1)
            self._sizes[index] = self._position - self._starts[index]
            self._send_ready_parts()
        upload, copying = self._started(), (self._store, source, etag)
        self._copied_bytes += length
        self._copy_parts_used += 1 + len(ranges)
        for number, (_, size) in enumerate(ranges):
            self._between_copies()
            index = len(self._starts)
            self._starts.append(self._position)
            self._sizes.append(size)
            self._copied[index] = (copied, number)
            self._position += size
            self._end = self._position
            self._run(self._copy_slots, copied.copy_part, index + 1, upload, *copying, number)
        return copied

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
        self._holds.clear()
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
        crc = combine(self._pieces())
        assert self._upload is not None
        with destination_errors(self._ref):
            self._upload.complete(crc)
        self._shutdown()
        self._closed = True
        return SinkResult(self._end, crc, self._copied_bytes)

    def _pieces(self) -> Iterator[tuple[int, int]]:
        """(crc, length) of the archive in order: each part's, a copied range's as it says."""
        for index, size in enumerate(self._sizes):
            if index not in self._copied:
                yield self._crcs[index], min(size, self._end - self._starts[index])
            elif self._copied[index][1] == 0:  # a range's first part stands for the range
                yield from self._copied[index][0].pieces()

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
