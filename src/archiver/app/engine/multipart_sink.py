"""The archive as a multipart upload that holds only what may change (an `ArchiveSink`).

For an entry streamed in pieces, the writer (`ZipStream`) writes a local header, the data, then
seeks back to patch the header (no data descriptor); an entry written whole holds nothing. The
sink cuts the stream into parts, each uploaded as soon as it is full unless it holds a header
still to be patched (`hold`): later parts go out meanwhile, out of order (S3 allows it).

A stored entry's bytes may be copied by S3 from its source instead (`copy`; the layout:
`domain/multipart.py`, the staging objects: `staging.py`). Copy parts have their own slots.

The archive's CRC-32 combines each part's (taken as it goes out) and each copied range's (its
source's, or S3's answers) in order; S3 verifies it at completion. Several headers may be held
at once (a copied entry's waits for its copies' CRC-32s); part sizes and holds: `parts.py`.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from typing import Any

from isal import isal_zlib

from archiver.app.engine.budget import JobMemory
from archiver.app.engine.copying import CopiedRange
from archiver.app.engine.parts import ExpectedSize, PartLayout, SentParts
from archiver.app.engine.requests import PartRequests, PartSlots
from archiver.app.engine.sink import SinkResult, destination_errors, quietly
from archiver.app.engine.staging import StagedPart
from archiver.domain.checksum import combine
from archiver.domain.job import ObjectRef
from archiver.domain.multipart import MIN_PART_BYTES, copy_parts
from archiver.domain.ports import Buffer, MultipartUpload, ObjectHeaders, ObjectStore


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
        *,
        copy_concurrency: int,
        memory: JobMemory | None = None,
        sent: SentParts | None = None,
    ) -> None:
        """`memory`: the job's share of the budget (as parts grow, fewer upload at once);
        `sent`: a checkpointed upload, to carry on from its tail."""
        self._store = store
        self._ref = ref
        self._headers = headers
        self._memory = memory
        self._layout = PartLayout(part_size, expected_size, self._grown)
        self._parts: dict[int, bytearray] = {}
        self._crcs: dict[int, int] = {}  # of the parts sent, by index
        # Copy parts by index: the range each belongs to, and which of its parts it is.
        self._copied: dict[int, tuple[CopiedRange, int]] = {}
        self._between_copies = between_copies  # a shutdown raises there
        self._position = 0
        self._end = 0
        self._staged: dict[int, StagedPart] = {}  # every copied range's last part, by index
        self._deferred: int | None = None  # the one not yet sent: what follows decides how
        self._skips: dict[int, int] = {}  # a staged part's copied bytes, before its tail
        self._upload: MultipartUpload | None = None
        self._requests = PartRequests(upload_concurrency, copy_concurrency)
        self._closed = False
        if memory is not None:  # a share too small for the configured parts runs fewer at once
            self._requests.uploads.limit(memory.parts_for(part_size))
        self._sent = (0, 0, 0)  # parts sent before the checkpoint: count, CRC-32, bytes
        self._kept: MultipartUpload | None = None  # the checkpoint's: an abort keeps it
        if sent is not None:  # a checkpointed upload, resumed
            self._upload = self._kept = sent.upload
            self._layout.resume(sent)
            self._grown(max(self._layout.sizes, default=0))
            self._sent = (sent.count, sent.crc, sent.sent_bytes)
            self._crcs = dict.fromkeys(range(sent.count), 0)  # sent: never written to again
            self._position = self._end = sent.offset
            if sent.tail:
                self._parts[sent.count] = bytearray(sent.tail)

    def _grown(self, part_size: int) -> None:
        if self._memory is not None:
            self._requests.uploads.limit(self._memory.parts_for(part_size))

    def write(self, data: bytes | bytearray | memoryview, /) -> int:
        if self._closed:
            return len(data)  # after an abort: discard
        view = memoryview(data).cast("B")
        while view:
            index = self._layout.part_at(self._position)
            skip = self._skips.get(index, 0)
            offset = self._position - self._layout.starts[index] - skip
            if index in self._crcs or offset < 0 or (index in self._copied and not skip):
                raise RuntimeError(f"write at {self._position} into part {index + 1}, already sent")
            part = self._parts.setdefault(index, bytearray())
            if offset > len(part):
                raise RuntimeError(f"write at {self._position} would leave a gap")
            count = min(len(view), self._layout.sizes[index] - skip - offset)
            part[offset : offset + count] = view[:count]
            self._position += count
            view = view[count:]
        self._end = max(self._end, self._position)
        self._send_ready_parts()
        return len(data)

    def tell(self) -> int:
        return self._position

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
        self._layout.holds.append(offset)  # the parts it is in wait for `unhold`

    def unhold(self, offset: int) -> None:
        self._layout.holds.remove(offset)
        self._send_ready_parts()

    def holds_too_much(self) -> bool:
        return self._layout.held_bytes(self._parts) > self._layout.min_part_size

    def _send_ready_parts(self) -> None:
        if self._layout.followed(self._deferred, self._position, MIN_PART_BYTES):
            self._copy_direct()  # 5 MiB follow the range: its last part needs no staging
        for index in sorted(self._parts):
            if self._layout.end_of(index) <= self._end and not self._layout.is_held(index):
                self._send(index)

    def _send(self, index: int) -> None:
        self._crcs[index] = 0  # taken: written to no more; its CRC comes with the upload
        if index in self._skips:  # a staged part: its tail goes with the staging object
            staged, tail = self._staged[index], self._parts.pop(index)
            self._run(self._requests.copies, staged.copy_staged, index + 1, self._started(), tail)
        else:
            self._run(self._requests.uploads, self._upload_part, index + 1, self._parts.pop(index))

    def _copy_direct(self) -> None:
        """The deferred part is followed by 5 MiB, or by the end: copied from its source."""
        if self._deferred is not None:
            index, self._deferred = self._deferred, None
            staged = self._staged[index]
            self._run(self._requests.copies, staged.copy_direct, index + 1, self._started())

    def _stage(self, index: int) -> None:
        """The part in progress (under 5 MiB) joins the deferred one: its staging object's tail."""
        deferred, self._deferred = self._deferred, None
        assert deferred == index - 1
        self._layout.merge(index, self._position)
        self._skips[deferred] = self._staged[deferred].length
        self._parts[deferred] = self._parts.pop(index)

    def wait_for_room(self) -> None:
        """Waited for before the writer takes a chunk: no full part waits in memory meanwhile."""
        if not self._closed:
            self._requests.uploads.acquire()  # only this writer submits: it stays free till then
            self._requests.uploads.release()

    def _run(self, slots: PartSlots, task: Callable[..., None], number: int, *args: Any) -> None:
        """Run part `number`'s request on a part thread once `slots` has room (backpressure)."""
        self._started()
        self._requests.run(slots, task, number, *args)

    def _started(self) -> MultipartUpload:
        if self._upload is None:
            with destination_errors(self._ref):
                self._upload = self._store.start_upload(self._ref, self._headers)
        return self._upload

    def top_up(self) -> int:
        """Bytes to write before a copy may follow (`PartLayout.top_up`)."""
        return self._layout.top_up(self._position, self._deferred)

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
            index = self._layout.part_at(self._position - 1)
            fill = self._position - self._layout.starts[index]
            if self._deferred == index - 1 and fill < MIN_PART_BYTES:
                self._stage(index)
            else:
                self._layout.sizes[index] = fill
                self._copy_direct()
            self._send_ready_parts()
        upload, copying, slots = self._started(), (self._store, source, etag), self._requests.copies
        self._layout.copied_bytes += length
        self._layout.copy_parts_used += 1 + len(ranges)
        for number, (_, size) in enumerate(ranges):
            self._between_copies()
            index = self._layout.add(size)
            self._copied[index] = (copied, number)
            self._position += size
            self._end = self._position
            if number < len(ranges) - 1:
                self._run(
                    self._requests.copies, copied.copy_part, index + 1, upload, *copying, number
                )
                continue
            staged = StagedPart(self._store, self._ref, index + 1, copied, source, etag)
            self._staged[index], self._deferred = staged, index
            self._run(slots, staged.begin, index + 1)
        return copied

    def _upload_part(self, number: int, data: Buffer) -> None:
        assert self._upload is not None
        self._crcs[number - 1] = isal_zlib.crc32(data)  # on the part's thread
        with destination_errors(self._ref):
            self._upload.upload_part(number, data)

    def close(self) -> SinkResult:
        """Send what is left and complete the upload (one PutObject if it fits in one part)."""
        if self._closed:
            raise RuntimeError("sink already closed")
        self._layout.holds.clear()
        self._copy_direct()  # the end follows the last range
        if self._upload is None and len(self._layout.sizes) <= 1:
            data = bytes(self._parts.pop(0, b""))
            with destination_errors(self._ref):
                self._store.put(self._ref, data, self._headers)
            self._closed = True
            self._shutdown()  # no part threads began; the job's memory goes back
            return SinkResult(len(data), isal_zlib.crc32(data))
        for index in sorted(self._parts):
            self._send(index)
        self._requests.wait()
        crc = combine(self._pieces(len(self._layout.sizes)))
        assert self._upload is not None
        with destination_errors(self._ref):
            self._upload.complete(crc)
        self._shutdown()
        self._closed = True
        return SinkResult(self._end, crc, self._layout.copied_bytes)

    def pause(self) -> SentParts:
        """For a checkpoint: every part but the one in progress sent; the upload stays."""
        if self._layout.holds:
            raise RuntimeError("a checkpoint must follow the last header patched")
        self._copy_direct()  # a copied range's last part: what follows goes in a new part
        self._send_ready_parts()
        self._requests.wait()
        count = min(self._parts, default=len(self._layout.sizes))
        tail = bytes(self._parts.pop(count, b""))
        crc = combine(self._pieces(count))
        sent = self._layout.sent(self._upload, count, crc, self._end, tail)
        self._closed = True
        self._shutdown()
        return sent

    def _pieces(self, end: int) -> Iterator[tuple[int, int]]:
        """(crc, length) of the parts before `end`: those sent before a checkpoint, then each."""
        first, crc, length = self._sent
        if first:
            yield crc, length
        for index in range(first, end):
            size = self._layout.sizes[index]
            if index not in self._copied:
                yield self._crcs[index], min(size, self._end - self._layout.starts[index])
            elif self._copied[index][1] == 0:  # a range's first part stands for the range
                yield from self._copied[index][0].pieces()
            if index in self._skips:  # a staged part: the range's last part, then its tail
                yield self._staged[index].tail_crc, self._staged[index].tail_length

    def abort(self) -> None:
        """Stop uploading, and abort the upload but a checkpoint's (the next attempt's)."""
        if self._closed:
            return
        self._closed = True
        self._parts.clear()
        self._requests.cancel()
        self._shutdown()
        if self._upload is not None and self._upload is not self._kept:
            quietly("multipart_abort_failed", self._ref, self._upload.abort)

    def _shutdown(self) -> None:
        """Wait for the part threads, then drop every staging object: nothing is left."""
        self._requests.shutdown()
        if self._memory is not None:
            self._memory.release()
        for staged in self._staged.values():
            staged.discard()
