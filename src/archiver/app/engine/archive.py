"""Carry out an archive plan: stream every source, as soon as it is sized, into a zip sink."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass

from archiver.app.engine.aes import Encryption
from archiver.app.engine.chunks import ChunkFeed
from archiver.app.engine.deflate import worth_deflating
from archiver.app.engine.fetching import Prefetcher
from archiver.app.engine.parts import SentParts
from archiver.app.engine.sink import ArchiveSink, SinkResult
from archiver.app.engine.sizing import Sizing
from archiver.app.engine.transfer import Chunk, ProgressCallback, Transfer
from archiver.app.engine.zipstream import ZipStream
from archiver.app.stopping import Signal
from archiver.domain.errors import ObjectUnavailable
from archiver.domain.notifications import Progress
from archiver.domain.plan import EntryMethod, PlannedEntry
from archiver.domain.policy import source_failure
from archiver.domain.ports import Buffer, ObjectStore
from archiver.domain.zipformat import Entry


def _deflate(entry: PlannedEntry, first_chunk: Buffer, sampled_already: bool | None) -> bool:
    """`auto` deflates what a trial on the first bytes shows to shrink (tried at sizing when the
    probe kept them, off the writer's thread)."""
    sampled = entry.method is EntryMethod.SAMPLE and (
        sampled_already if sampled_already is not None else worth_deflating(first_chunk)
    )
    return entry.method is EntryMethod.DEFLATED or sampled


@dataclass(frozen=True)
class Stopped:
    """Where a build stopped for a checkpoint: after entry `next_entry - 1` of the plan."""

    sent: SentParts
    entries: list[Entry]
    next_entry: int
    copies: tuple[int, int | None] | None  # `Copies.state`


def write_archive(
    sizing: Sizing,
    store: ObjectStore,
    sink: ArchiveSink,
    transfer: Transfer,
    encryption: Encryption | None,
    progress: ProgressCallback | None = None,
    *,
    written: list[Entry] | None = None,
    due: Signal | None = None,
) -> SinkResult | Stopped:
    """Stream every planned entry into the sink; on any failure abort it, leaving nothing.

    Entries are written as their sources are sized; the job's policy is checked as the writing
    goes, and once more, with every source sized, before the archive is finished. A shutdown
    (the sizing's `cancel`) is seen between two chunks. With `encryption`, every entry is
    encrypted (and the sizing must not let the store copy any). Once `due` is set, the build
    stops at the next entry's end for a checkpoint, leaving the upload as it is (`Stopped`).
    A resumed build goes on after the entries it had `written`.
    """
    plan = sizing.plan
    copies = sizing.copies() if sizing.may_copy else None
    feed = ChunkFeed(plan.entries, sizing, transfer.range_size, copies)
    files_done, bytes_done = sizing.carried.files, sizing.carried.source_bytes
    try:
        with closing(
            Prefetcher(
                store,
                feed,
                transfer.budget,
                sizing.first_chunks,
                sizing.executor,
                ready=feed.ready,
                pace=sink.wait_for_room,
            )
        ) as fetched:
            stream = ZipStream(sink, plan.created_at, encryption, written)
            archive = _Writer(sizing, store, stream)
            for chunk, data in _translated(fetched):
                sizing.check_cancel()
                sizing.check_policy()
                bytes_done += archive.write(chunk, data)
                del data  # written: not kept while the next chunk is fetched
                files_done += chunk.last
                if progress is not None:
                    files_total, bytes_total = sizing.totals()
                    progress(
                        Progress.model_construct(
                            files_done=files_done,
                            files_total=sizing.carried.files + files_total,
                            bytes_done=bytes_done,
                            bytes_total=sizing.carried.source_bytes + bytes_total,
                        )
                    )
                if chunk.last and due is not None and due.is_set():
                    sizing.settle()  # the policy applies before anything is recorded
                    entries = stream.settle()
                    state = None if copies is None else copies.state
                    return Stopped(sink.pause(), entries, chunk.entry + 1, state)
            sizing.settle()
            archive.stream.close()
            return sink.close()
    except ObjectUnavailable as unavailable:  # a copied source, gone since it was sized
        sink.abort()
        raise source_failure([unavailable]) from unavailable
    except BaseException:
        sink.abort()
        raise


class _Writer:
    """Chunks, in job order, into the ZIP stream: each entry written whole, streamed, or
    copied by the store after its first bytes."""

    def __init__(self, sizing: Sizing, store: ObjectStore, stream: ZipStream) -> None:
        self.stream = stream
        self._sizing = sizing
        self._store = store

    def write(self, chunk: Chunk, data: Buffer) -> int:
        """Write a chunk (or have a copied entry copied); the entry's bytes now done."""
        entry = self._sizing.plan.entries[chunk.entry]
        if chunk.copied:
            return self._copy(entry, chunk, data)
        if chunk.start == 0:
            deflate = _deflate(entry, data, self._sizing.compressible(entry.source))
            modified = self._sizing.modified(entry.source)
            if chunk.last:  # all here: written complete, nothing held
                self.stream.add(entry.name, data, deflate, modified)
            else:
                self.stream.begin(entry.name, chunk.entry_size, deflate, modified)
                self.stream.write(data)
        else:
            self.stream.write(data)
            if chunk.last:
                self.stream.end()
        return len(data)

    def _copy(self, entry: PlannedEntry, chunk: Chunk, data: Buffer) -> int:
        """An entry the store copies: of its bytes, only what a top-up needs is read."""
        probed = bytes(data)

        def first_bytes(count: int) -> Buffer:
            if count <= len(probed):
                return probed[:count]
            rest = self._store.fetch(chunk.ref, len(probed), count - len(probed), chunk.etag)
            return probed + rest

        stored_crc = self._sizing.checksum(entry.source)
        self.stream.copy(
            entry.name,
            chunk.ref,
            chunk.etag,
            stored_crc,
            chunk.entry_size,
            first_bytes,
            self._sizing.modified(entry.source),
        )
        return chunk.entry_size


def _translated(fetched: Iterable[tuple[Chunk, Buffer]]) -> Iterator[tuple[Chunk, Buffer]]:
    """A source that became unreadable after it was sized is the job's problem, as before
    (a copy's failures come from the sink: see `write_archive`)."""
    try:
        yield from fetched
    except ObjectUnavailable as unavailable:
        raise source_failure([unavailable]) from unavailable
