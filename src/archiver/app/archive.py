"""Carry out an archive plan: check every source first, then stream them into a zip sink."""

from __future__ import annotations

import stat
import threading
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from typing import IO, cast

from archiver.app.prefetch import ByteBudget, Chunk, FirstChunks, Prefetcher, chunks_of
from archiver.app.sink import ArchiveSink, SinkResult
from archiver.domain.errors import (
    ErrorCode,
    JobCancelled,
    ObjectUnavailable,
    PermanentError,
    Unavailable,
)
from archiver.domain.job import ObjectRef
from archiver.domain.plan import ArchivePlan, EntryMethod, PlannedEntry
from archiver.domain.ports import Buffer, ObjectInfo, ObjectStore

DEFLATE_LEVEL = 6
PROBE_BYTES = 1024 * 1024
SAMPLE_BYTES = 16 * 1024  # enough to tell random or compressed data from text
MIN_SAVING = 0.03  # deflate must save at least 3 % of a sample to be worth its CPU
SOURCE_ERROR_CODES = {
    Unavailable.NOT_FOUND: ErrorCode.SOURCE_NOT_FOUND,
    Unavailable.ACCESS_DENIED: ErrorCode.SOURCE_ACCESS_DENIED,
    Unavailable.UNREADABLE: ErrorCode.SOURCE_UNREADABLE,
}
# Local header + central directory record + ZIP64 extras, beyond the name (twice).
ENTRY_OVERHEAD = 30 + 46 + 2 * 32
END_RECORDS = 22 + 56 + 20


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


@dataclass
class SourceCheck:
    infos: dict[ObjectRef, ObjectInfo]
    unavailable: list[ObjectUnavailable]
    first_chunks: FirstChunks


def stat_sources(store: ObjectStore, refs: Iterable[ObjectRef], transfer: Transfer) -> SourceCheck:
    """Size every distinct source before writing a byte, and collect every unreadable one.

    A source is sized by a ranged GET of its first bytes, kept for the writer while the budget
    has room for them (a small file then costs one request); past that, by a HEAD.
    """
    kept = FirstChunks(transfer.budget)
    cap = transfer.budget.capacity

    def check_one(ref: ObjectRef) -> ObjectInfo | ObjectUnavailable:
        try:
            if kept.reserve(PROBE_BYTES, cap):
                try:
                    info, data = store.probe(ref, PROBE_BYTES)
                except BaseException:
                    kept.unreserve(PROBE_BYTES)
                    raise
                kept.keep(ref, data, PROBE_BYTES)
                return info
            return store.stat(ref)
        except ObjectUnavailable as unavailable:
            return unavailable

    unique = list(dict.fromkeys(refs))
    try:
        with ThreadPoolExecutor(max(1, min(transfer.concurrency, len(unique))), "stat") as pool:
            outcomes = list(pool.map(check_one, unique))
    except BaseException:
        kept.release_all()
        raise
    return SourceCheck(
        infos={info.ref: info for info in outcomes if isinstance(info, ObjectInfo)},
        unavailable=[outcome for outcome in outcomes if isinstance(outcome, ObjectUnavailable)],
        first_chunks=kept,
    )


def expected_archive_size(plan: ArchivePlan, infos: Mapping[ObjectRef, ObjectInfo]) -> int:
    """An upper estimate (stored sizes) used to choose the upload's part size."""
    return END_RECORDS + sum(
        infos[entry.source].size + ENTRY_OVERHEAD + 2 * len(entry.name.encode("utf-8"))
        for entry in plan.entries
    )


def worth_deflating(sample: Buffer) -> bool:
    """A quick level-1 trial on the first bytes: random or already-compressed data is stored."""
    if not sample:
        return False  # an empty entry stored is 0 bytes; deflated it is 2
    trial = zlib.compressobj(1, zlib.DEFLATED, -15)
    compressed = len(trial.compress(sample)) + len(trial.flush())
    return compressed <= len(sample) * (1 - MIN_SAVING)


def _zip_info(entry: PlannedEntry, size: int, plan: ArchivePlan, method: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(entry.name, date_time=plan.created_at.timetuple()[:6])
    info.compress_type = method
    # The announced size makes zipfile choose ZIP64 exactly when the entry needs it.
    info.file_size = size
    info.external_attr = (stat.S_IFREG | 0o644) << 16
    return info


@dataclass(frozen=True)
class Transfer:
    """How sources are fetched: the shared budget, threads, and the size of ranged GETs."""

    budget: ByteBudget
    concurrency: int = 16
    range_size: int = 8 * 1024 * 1024


def _method(entry: PlannedEntry, first_chunk: Buffer) -> int:
    sampled = entry.method is EntryMethod.SAMPLE and worth_deflating(first_chunk[:SAMPLE_BYTES])
    deflate = entry.method is EntryMethod.DEFLATED or sampled
    return zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED


def write_archive(
    plan: ArchivePlan,
    infos: Mapping[ObjectRef, ObjectInfo],
    store: ObjectStore,
    sink: ArchiveSink,
    transfer: Transfer,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    first_chunks: FirstChunks | None = None,
) -> SinkResult:
    """Stream every planned entry into the sink; on any failure abort it, leaving nothing."""
    total = sum(infos[entry.source].size for entry in plan.entries)
    done = 0
    first = first_chunks or FirstChunks(None)
    chunks = chunks_of(plan.entries, infos, transfer.range_size, first.sizes())
    archive: zipfile.ZipFile | None = None
    target: IO[bytes] | None = None
    try:
        with Prefetcher(store, chunks, transfer.budget, transfer.concurrency, first) as fetched:
            archive = zipfile.ZipFile(
                cast(IO[bytes], sink), mode="w", allowZip64=True, compresslevel=DEFLATE_LEVEL
            )
            for chunk, data in _translated(fetched):
                if cancel is not None and cancel.is_set():
                    raise JobCancelled("shutting down: the job did not finish in the grace period")
                entry = plan.entries[chunk.entry]
                if chunk.start == 0:
                    sink.hold(sink.tell())  # its local header is patched when the entry ends
                    info = _zip_info(entry, infos[entry.source].size, plan, _method(entry, data))
                    target = archive.open(info, mode="w")
                assert target is not None
                target.write(data)
                done += len(data)
                if chunk.last:
                    target.close()
                    sink.release()
                if progress is not None:
                    files_done = chunk.entry + 1 if chunk.last else chunk.entry
                    progress(Progress(files_done, len(plan.entries), done, total))
            archive.close()
            return sink.close()
    except BaseException:
        sink.abort()
        _discard(archive, target)
        raise
    finally:
        first.release_all()


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
