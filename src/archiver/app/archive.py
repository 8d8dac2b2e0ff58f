"""Carry out an archive plan: stream every source, as soon as it is sized, into a zip sink."""

from __future__ import annotations

import stat
import zipfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from typing import IO, cast

from archiver.app.prefetch import Chunk, Prefetcher
from archiver.app.sink import ArchiveSink, SinkResult
from archiver.app.sizing import ChunkFeed, Sizing, Transfer, worth_deflating
from archiver.domain.errors import (
    ErrorCode,
    ObjectUnavailable,
    PermanentError,
    Unavailable,
)
from archiver.domain.plan import ArchivePlan, EntryMethod, PlannedEntry
from archiver.domain.ports import Buffer, ObjectStore

DEFLATE_LEVEL = 6
FETCH_AHEAD_RANGES = 2  # to begin with; deeper while that pays (FetchDepth)
SOURCE_ERROR_CODES = {
    Unavailable.NOT_FOUND: ErrorCode.SOURCE_NOT_FOUND,
    Unavailable.ACCESS_DENIED: ErrorCode.SOURCE_ACCESS_DENIED,
    Unavailable.UNREADABLE: ErrorCode.SOURCE_UNREADABLE,
}


@dataclass(frozen=True)
class Progress:
    files_done: int
    files_total: int
    bytes_done: int
    bytes_total: int


ProgressCallback = Callable[[Progress], None]


def source_failure(failures: list[ObjectUnavailable]) -> PermanentError:
    code = SOURCE_ERROR_CODES[failures[0].reason]
    counts: dict[Unavailable, int] = {}
    for failure in failures:
        counts[failure.reason] = counts.get(failure.reason, 0) + 1
    summary = ", ".join(
        f"{count} {reason.value.replace('_', ' ')}" for reason, count in counts.items()
    )
    return PermanentError(
        code,
        f"{len(failures)} source(s) cannot be read ({summary})",
        sorted({failure.location for failure in failures}),
    )


def _zip_info(entry: PlannedEntry, size: int, plan: ArchivePlan, method: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(entry.name, date_time=plan.created_at.timetuple()[:6])
    info.compress_type = method
    # The announced size makes zipfile choose ZIP64 exactly when the entry needs it.
    info.file_size = size
    info.external_attr = (stat.S_IFREG | 0o644) << 16
    return info


def _method(entry: PlannedEntry, first_chunk: Buffer, sampled_already: bool | None) -> int:
    """`auto` deflates what a trial on the first bytes shows to shrink (tried at sizing when the
    probe kept them, off the writer's thread)."""
    sampled = entry.method is EntryMethod.SAMPLE and (
        sampled_already if sampled_already is not None else worth_deflating(first_chunk)
    )
    deflate = entry.method is EntryMethod.DEFLATED or sampled
    return zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED


def write_archive(
    sizing: Sizing,
    store: ObjectStore,
    sink: ArchiveSink,
    transfer: Transfer,
    progress: ProgressCallback | None = None,
) -> SinkResult:
    """Stream every planned entry into the sink; on any failure abort it, leaving nothing.

    Entries are written as their sources are sized; the job's policy is checked as the writing
    goes, and once more, with every source sized, before the archive is finished. A shutdown
    (the sizing's `cancel`) is seen between two chunks.
    """
    plan = sizing.plan
    feed = ChunkFeed(plan.entries, sizing, transfer.range_size)
    files_done = bytes_done = 0
    archive: zipfile.ZipFile | None = None
    target: IO[bytes] | None = None
    try:
        with Prefetcher(
            store,
            feed,
            transfer.budget,
            transfer.concurrency,
            sizing.first_chunks,
            executor=sizing.executor,
            ready=feed.ready,
            depth=FETCH_AHEAD_RANGES * transfer.range_size,
            min_depth=transfer.range_size,  # when writing is the slower side
            deepen_when=sink.has_room,
            pace=sink.wait_for_room,
        ) as fetched:
            archive = zipfile.ZipFile(
                cast(IO[bytes], sink), mode="w", allowZip64=True, compresslevel=DEFLATE_LEVEL
            )
            for chunk, data in _translated(fetched):
                sizing.check_cancel()
                sizing.check_policy()
                entry = plan.entries[chunk.entry]
                if chunk.start == 0:
                    sink.hold(sink.tell())  # its local header is patched when the entry ends
                    method = _method(entry, data, sizing.compressible(entry.source))
                    info = _zip_info(entry, chunk.size, plan, method)
                    target = archive.open(info, mode="w")
                assert target is not None
                target.write(data)
                bytes_done += len(data)
                del data  # written: not kept while the next chunk is fetched
                if chunk.last:
                    target.close()
                    sink.release()
                    files_done += 1
                if progress is not None:
                    files_total, bytes_total = sizing.totals()
                    progress(Progress(files_done, files_total, bytes_done, bytes_total))
            sizing.settle()
            archive.close()
            return sink.close()
    except BaseException:
        sink.abort()
        _discard(archive, target)
        raise


def _discard(archive: zipfile.ZipFile | None, target: IO[bytes] | None) -> None:
    """Close what zipfile still has open (into the aborted sink, which drops it), so that its
    finalisers have nothing left to complain about."""
    with suppress(Exception):
        if target is not None:
            target.close()
    with suppress(Exception):
        if archive is not None:
            archive.close()


def _translated(fetched: Iterable[tuple[Chunk, Buffer]]) -> Iterator[tuple[Chunk, Buffer]]:
    """A source that became unreadable after it was sized is the job's problem, as before."""
    try:
        yield from fetched
    except ObjectUnavailable as unavailable:
        raise source_failure([unavailable]) from unavailable
