"""Size a job's sources in the background, so writing starts with the first one sized.

Every distinct source is sized in job order by a pool of `concurrency` threads, which the
prefetcher then shares: sizing and fetching together never have more requests in flight. A
source is sized by a ranged GET of its first bytes, kept for the writer while the budget has
room (a small file then costs one request), past that by a HEAD. The job's policy (missing
files, largest archive) is applied once, when the last source is sized; the writer checks it
as it goes, so a job that must fail stops as soon as that is known.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass

from isal import isal_zlib

from archiver.app.pool import JobOrderPool
from archiver.app.prefetch import ByteBudget, Chunk, FirstChunks, entry_chunks
from archiver.app.zipstream import DEFLATE_LEVEL
from archiver.domain.errors import JobCancelled, ObjectUnavailable
from archiver.domain.job import ObjectRef
from archiver.domain.plan import ArchivePlan, EntryMethod, PlannedEntry
from archiver.domain.ports import Buffer, ObjectInfo, ObjectStore

PROBE_BYTES = 1024 * 1024
SAMPLE_BYTES = 16 * 1024  # enough to tell random or compressed data from text
MIN_SAVING = 0.03  # deflate must save at least 3 % of a sample to be worth its CPU
CANCEL_POLL_SECONDS = 0.2  # how soon a wait for the last sizes notices a shutdown
# Local header + central directory record + ZIP64 extras, beyond the name (twice).
ENTRY_OVERHEAD = 30 + 46 + 2 * 32
END_RECORDS = 22 + 56 + 20


@dataclass(frozen=True)
class Transfer:
    """How sources are fetched: the shared budget, threads, and the size of ranged GETs."""

    budget: ByteBudget
    concurrency: int = 16
    range_size: int = 8 * 1024 * 1024


@dataclass
class SourceCheck:
    """Every source sized: what can be read, and what cannot."""

    infos: dict[ObjectRef, ObjectInfo]
    unavailable: list[ObjectUnavailable]


@dataclass(frozen=True)
class Admitted:
    """What the job's policy made of the sized sources: the entries to write."""

    plan: ArchivePlan
    missing: list[str]


Admit = Callable[[SourceCheck], Admitted]
"""The job's policy: raises PermanentError when the job cannot be done."""


def worth_deflating(first_bytes: Buffer) -> bool:
    """A quick level-1 trial on the first bytes: random or already-compressed data is stored."""
    sample = first_bytes[:SAMPLE_BYTES]
    if not sample:
        return False  # an empty entry stored is 0 bytes; deflated it is 2
    trial = isal_zlib.compressobj(DEFLATE_LEVEL, isal_zlib.DEFLATED, -15)  # as the writer will
    compressed = len(trial.compress(sample)) + len(trial.flush())
    return compressed <= len(sample) * (1 - MIN_SAVING)


def expected_archive_size(plan: ArchivePlan, infos: dict[ObjectRef, ObjectInfo]) -> int:
    """An upper estimate (stored sizes) used to choose the upload's part sizes."""
    return END_RECORDS + sum(
        infos[entry.source].size + ENTRY_OVERHEAD + 2 * len(entry.name.encode("utf-8"))
        for entry in plan.entries
    )


class Sizing:
    def __init__(
        self,
        store: ObjectStore,
        plan: ArchivePlan,
        transfer: Transfer,
        admit: Admit,
        cancel: threading.Event | None = None,
    ) -> None:
        self.plan = plan
        self._cancel = cancel
        self.first_chunks = FirstChunks(transfer.budget)
        self.executor = JobOrderPool(transfer.concurrency, "fetch")
        self._store = store
        self._admit = admit
        self._cap = transfer.budget.capacity
        self._uses = Counter(entry.source for entry in plan.entries)
        self._to_sample = {e.source for e in plan.entries if e.method is EntryMethod.SAMPLE}
        self._compressible: dict[ObjectRef, bool] = {}
        self._lock = threading.Lock()
        self._left = len(self._uses)
        self._all_sized = threading.Event()
        self._known_bytes = 0
        self._unavailable_entries = 0
        self._admitted: Admitted | None = None
        self._expected_bytes = 0  # set with _admitted: asked for by every part the sink begins
        self._refused: BaseException | None = None
        if not self._uses:
            self._all_sized.set()
        first_use: dict[ObjectRef, int] = {}
        for index, entry in enumerate(plan.entries):
            first_use.setdefault(entry.source, index)
        self._outcomes: dict[ObjectRef, Future[ObjectInfo | ObjectUnavailable]] = {
            ref: self.executor.submit(index, self._size, ref) for ref, index in first_use.items()
        }

    def _size(self, ref: ObjectRef) -> ObjectInfo | ObjectUnavailable:
        outcome: ObjectInfo | ObjectUnavailable | None = None
        try:
            outcome = self._probe_or_stat(ref)
        except ObjectUnavailable as unavailable:
            outcome = unavailable
        finally:
            self._count(ref, outcome)  # before the outcome is published: it comes with totals
        return outcome

    def _count(self, ref: ObjectRef, outcome: ObjectInfo | ObjectUnavailable | None) -> None:
        with self._lock:
            if isinstance(outcome, ObjectInfo):
                self._known_bytes += outcome.size * self._uses[ref]
            elif outcome is not None:
                self._unavailable_entries += self._uses[ref]
            self._left -= 1
            if self._left == 0:
                self._all_sized.set()

    def _probe_or_stat(self, ref: ObjectRef) -> ObjectInfo:
        kept = self.first_chunks
        if not kept.reserve(PROBE_BYTES, self._cap):
            return self._store.stat(ref)
        try:
            info, data = self._store.probe(ref, PROBE_BYTES)
        except BaseException:
            kept.unreserve(PROBE_BYTES)
            raise
        if ref in self._to_sample:  # tried here, so the writer's thread does not have to
            self._compressible[ref] = worth_deflating(data)
        kept.keep(ref, data, PROBE_BYTES)
        return info

    def outcome(self, ref: ObjectRef) -> ObjectInfo | ObjectUnavailable:
        """The source's size, waiting for it; TransientError if it could not be sized."""
        return self._outcomes[ref].result()

    def compressible(self, ref: ObjectRef) -> bool | None:
        """The deflate trial on the source's first bytes, if it was made while sizing."""
        return self._compressible.get(ref)

    def is_sized(self, ref: ObjectRef) -> bool:
        return self._outcomes[ref].done()

    def check_cancel(self) -> None:
        """Raise JobCancelled once the worker has asked running jobs to stop."""
        if self._cancel is not None and self._cancel.is_set():
            raise JobCancelled("shutting down: the job did not finish in the grace period")

    def settle(self) -> Admitted:
        """Wait for every source, then apply the job's policy (once): the entries to write.
        A shutdown ends the wait: the last sources of a large job may take a while to size."""
        while not self._all_sized.wait(CANCEL_POLL_SECONDS):
            self.check_cancel()
        with self._lock:
            if self._admitted is None and self._refused is None:
                try:
                    check = self._check()
                    self._admitted = self._admit(check)
                    self._expected_bytes = expected_archive_size(self._admitted.plan, check.infos)
                except BaseException as refused:
                    self._refused = refused
            if self._refused is not None:
                raise self._refused
            assert self._admitted is not None
            return self._admitted

    def check_policy(self) -> None:
        """Raise as soon as every source is sized and the job's policy refuses it."""
        if self._all_sized.is_set():
            self.settle()

    def expected_size(self, wait: bool) -> int | None:
        """The archive's upper estimate once every source is sized (for the part sizes)."""
        if not wait and not self._all_sized.is_set():
            return None
        self.settle()
        return self._expected_bytes

    def totals(self) -> tuple[int, int]:
        """Entries and bytes to write, as far as known: exact once every source is sized."""
        with self._lock:
            return len(self.plan.entries) - self._unavailable_entries, self._known_bytes

    def _check(self) -> SourceCheck:
        infos: dict[ObjectRef, ObjectInfo] = {}
        unavailable: list[ObjectUnavailable] = []
        for future in self._outcomes.values():
            outcome = future.result()
            if isinstance(outcome, ObjectInfo):
                infos[outcome.ref] = outcome
            else:
                unavailable.append(outcome)
        return SourceCheck(infos, unavailable)

    def close(self) -> None:
        """Stop sizing; every byte kept for the writer goes back to the budget."""
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.first_chunks.release_all()


class ChunkFeed:
    """The chunks of the entries to write, in job order, each entry's once it is sized.

    An unreadable source stops the job unless the policy skips it, which is only known once
    every source is sized.
    """

    def __init__(self, entries: Sequence[PlannedEntry], sizing: Sizing, range_size: int) -> None:
        self._entries = entries
        self._sizing = sizing
        self._range_size = range_size
        self._next_entry = 0
        self._current: Iterator[Chunk] = iter(())
        self._peeked: Chunk | None = None
        self._probes_used: set[ObjectRef] = set()

    def __iter__(self) -> ChunkFeed:
        return self

    def ready(self) -> bool:
        """Whether the next chunk is known without waiting for a source to be sized."""
        if self._peeked is None:
            self._peeked = next(self._current, None)
        if self._peeked is not None or self._next_entry >= len(self._entries):
            return True
        return self._sizing.is_sized(self._entries[self._next_entry].source)

    def __next__(self) -> Chunk:
        chunk, self._peeked = self._peeked or next(self._current, None), None
        if chunk is not None:
            return chunk
        while self._next_entry < len(self._entries):
            index = self._next_entry
            self._next_entry += 1
            source = self._entries[index].source
            outcome = self._sizing.outcome(source)
            if isinstance(outcome, ObjectUnavailable):
                self._sizing.settle()  # raises unless the policy skips missing files
                continue
            # A repeated source is fetched again: its probed bytes went to its first entry.
            probed = (
                None if source in self._probes_used else self._sizing.first_chunks.size_of(source)
            )
            self._probes_used.add(source)
            self._current = entry_chunks(index, outcome, self._range_size, probed)
            return next(self._current)
        raise StopIteration
