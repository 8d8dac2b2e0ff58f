"""Size a job's sources in the background, so writing starts with the first one sized.

Every distinct source is sized in job order by a pool of `concurrency` threads, which the
prefetcher then shares: sizing and fetching together never have more requests in flight, and
only a few sources per thread are queued at a time, so a job's length costs one kept outcome
per source (its size, or why it cannot be read) and nothing more. A
source is sized by a ranged GET of its first bytes, kept for the writer while the budget has
room (a small file then costs one request), past that by a HEAD. The job's policy (missing
files, largest archive) is applied once, when the last source is sized; the writer checks it
as it goes, so a job that must fail stops as soon as that is known. A source the store may
copy (`copying.py`) has its stored checksum looked up too, still before it counts as sized.
"""

from __future__ import annotations

import sys
import threading
from collections import Counter
from collections.abc import Callable
from datetime import datetime

from archiver.app.engine.budget import FirstChunks
from archiver.app.engine.deflate import worth_deflating
from archiver.app.engine.pool import JobOrderPool
from archiver.app.engine.transfer import Transfer
from archiver.app.stopping import STOP_POLL_SECONDS, Signal
from archiver.domain.checkpoint import Carried
from archiver.domain.errors import JobCancelled, ObjectUnavailable, Unavailable
from archiver.domain.job import ObjectRef
from archiver.domain.multipart import Copies, Estimate, estimate, worth_copying
from archiver.domain.plan import ArchivePlan, EntryMethod, PlannedEntry
from archiver.domain.policy import NOTHING, Admitted, SourceCheck
from archiver.domain.ports import ObjectInfo, ObjectStore
from archiver.domain.zipformat import archive_size_bound, local_header_size

PROBE_BYTES = 256 * 1024
SIZING_AHEAD = 2
"""Sources queued for sizing per thread of the job's pool: enough that no thread waits for the
next, few enough that queued requests cost nothing against the job's length."""

Admit = Callable[[SourceCheck], Admitted]
"""The job's policy: raises PermanentError when the job cannot be done."""


class Sizing:
    def __init__(
        self,
        store: ObjectStore,
        plan: ArchivePlan,
        transfer: Transfer,
        admit: Admit,
        cancel: Signal | None = None,
        may_copy: bool = False,
        carried: Carried = NOTHING,
    ) -> None:
        """`carried`: what a resumed job wrote before its checkpoint (`plan` lists the rest)."""
        self.plan = plan
        self.carried = carried
        self.may_copy = may_copy  # whether the store may copy stored entries (server-side copy)
        self._cancel = cancel
        self.first_chunks = FirstChunks(transfer.budget)
        self.executor = JobOrderPool(transfer.concurrency, "fetch")
        self._store = store
        self._admit = admit
        self._cap = transfer.budget.capacity
        self._uses = Counter(entry.source for entry in plan.entries)
        self._to_sample = {e.source for e in plan.entries if e.method is EntryMethod.SAMPLE}
        self._compressible: dict[ObjectRef, bool] = {}
        self._checksums: dict[ObjectRef, int | None] = {}  # of the sources that may be copied
        self._to_store = {e.source for e in plan.entries if e.method is EntryMethod.STORED}
        self._lock = threading.Lock()
        self._sized = threading.Condition(self._lock)  # notified as each outcome is recorded
        self._outcomes: dict[ObjectRef, ObjectInfo | ObjectUnavailable] = {}
        self._errors: dict[ObjectRef, BaseException] = {}  # could not be sized: not the job's fault
        self._left = len(self._uses)
        self._all_sized = threading.Event()
        self._closed = False
        self._known_bytes = 0
        self._unavailable_entries = 0
        self._admitted: Admitted | None = None
        self._estimate = Estimate(0, 0)  # set with _admitted: asked for by every part begun
        self._refused: BaseException | None = None
        if not self._uses:
            self._all_sized.set()
        first_use: dict[ObjectRef, int] = {}
        for index, entry in enumerate(plan.entries):
            first_use.setdefault(entry.source, index)
        # Queued a few at a time, not all at once: a queued request costs ~1.5 KiB (its future),
        # and a job may list 100,000 sources.
        self._unqueued = iter(first_use.items())
        with self._lock:
            for _ in range(SIZING_AHEAD * max(1, transfer.concurrency)):
                self._queue_next()

    def _queue_next(self) -> None:
        """Queue the next source to size, if any (holding the lock)."""
        if self._closed:
            return
        upcoming = next(self._unqueued, None)
        if upcoming is not None:
            ref, index = upcoming
            self.executor.submit(index, self._size, ref)

    def _size(self, ref: ObjectRef) -> None:
        outcome: ObjectInfo | ObjectUnavailable | None = None
        try:
            info = self._probe_or_stat(ref)
            if self.may_copy and worth_copying(info.size) and self._stored_somewhere(ref):
                self._checksums[ref] = self._store.checksum(ref, info.etag)
            outcome = info
        except ObjectUnavailable as unavailable:
            # Kept until the job ends, for every missing source: a copy that was never raised
            # holds no traceback and no cause (botocore's response, its frames: ~20 KiB each).
            outcome = ObjectUnavailable(
                unavailable.location, unavailable.reason, sys.intern(unavailable.detail)
            )
        except BaseException as error:
            self._record(ref, None, error)
            raise
        self._record(ref, outcome, None)

    def _record(
        self,
        ref: ObjectRef,
        outcome: ObjectInfo | ObjectUnavailable | None,
        error: BaseException | None,
    ) -> None:
        with self._lock:
            if isinstance(outcome, ObjectInfo):
                self._known_bytes += outcome.size * self._uses[ref]
            elif outcome is not None:
                self._unavailable_entries += self._uses[ref]
            if outcome is not None:
                self._outcomes[ref] = outcome
            else:
                assert error is not None
                self._errors[ref] = error
            self._left -= 1
            if self._left == 0:
                self._all_sized.set()
            self._sized.notify_all()
            self._queue_next()

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
        with self._lock:
            while ref not in self._outcomes and ref not in self._errors:
                if self._closed:
                    raise JobCancelled("sizing was stopped before this source was sized")
                self._sized.wait(STOP_POLL_SECONDS)
            if ref in self._errors:
                raise self._errors[ref]
            return self._outcomes[ref]

    def compressible(self, ref: ObjectRef) -> bool | None:
        """The deflate trial on the source's first bytes, if it was made while sizing."""
        return self._compressible.get(ref)

    def _stored_somewhere(self, ref: ObjectRef) -> bool:
        return ref in self._to_store or self._compressible.get(ref) is False

    def stored(self, entry: PlannedEntry) -> bool:
        """Whether the entry is known to be stored before any of it is written: `stored`, or
        `sample` with the trial made while sizing showing it does not shrink."""
        return entry.method is EntryMethod.STORED or (
            entry.method is EntryMethod.SAMPLE and self._compressible.get(entry.source) is False
        )

    def checksum(self, ref: ObjectRef) -> int | None:
        """The source's CRC-32 from its stored checksum, if it was looked up and it has one."""
        return self._checksums.get(ref)

    def probed_size(self, ref: ObjectRef) -> int | None:
        return self.first_chunks.size_of(ref)

    def modified(self, ref: ObjectRef) -> datetime | None:
        """The source's modification time, as its size check read it."""
        with self._lock:
            outcome = self._outcomes.get(ref)
        return outcome.modified if isinstance(outcome, ObjectInfo) else None

    def is_sized(self, ref: ObjectRef) -> bool:
        with self._lock:
            return ref in self._outcomes or ref in self._errors

    def check_cancel(self) -> None:
        """Raise JobCancelled once the worker has asked running jobs to stop (at the end of
        the shutdown grace, or as the receipt's 12 hours run out)."""
        if self._cancel is not None and self._cancel.is_set():
            raise JobCancelled("stopped: the job did not finish in the time it had")

    def settle(self) -> Admitted:
        """Wait for every source, then apply the job's policy (once): the entries to write.
        A shutdown ends the wait: the last sources of a large job may take a while to size."""
        while not self._all_sized.wait(STOP_POLL_SECONDS):
            self.check_cancel()
        with self._lock:
            if self._admitted is None and self._refused is None:
                try:
                    check = self._check()
                    self._admitted = self._admit(check)
                    self._estimate = self._estimated(self._admitted.plan, check.infos)
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

    def expected_size(self, wait: bool) -> Estimate | None:
        """What the archive will upload and copy, once every source is sized (for the sink's
        part sizes)."""
        if not wait and not self._all_sized.is_set():
            return None
        self.settle()
        return self._estimate

    def _estimated(self, plan: ArchivePlan, infos: dict[ObjectRef, ObjectInfo]) -> Estimate:
        """Upper bounds, the feed's copy decisions replayed: they depend only on the sizes
        (and on which entries are stored)."""
        carried = self.carried
        bound = carried.upload_bytes + archive_size_bound(
            (e.name, infos[e.source].size) for e in plan.entries
        )
        written = (
            (infos[entry.source].size, self.stored(entry), local_header_size(entry.name, True))
            for entry in self.plan.entries
            if entry.source in infos and self.may_copy
        )
        rest = estimate(bound, written, self.copies())
        return rest._replace(copy_parts=rest.copy_parts + carried.copy_parts_used)

    def copies(self) -> Copies:
        """The job's copy decisions as they stand before its first entry to write."""
        return Copies(*self.carried.copies) if self.carried.copies else Copies()

    def totals(self) -> tuple[int, int]:
        """Entries and bytes to write, as far as known: exact once every source is sized."""
        with self._lock:
            return len(self.plan.entries) - self._unavailable_entries, self._known_bytes

    def _check(self) -> SourceCheck:
        infos: dict[ObjectRef, ObjectInfo] = {}
        unavailable = [
            ObjectUnavailable(str(prefix), Unavailable.NOT_FOUND, "no object under this prefix")
            for prefix in self.plan.unmatched
        ]
        if self._errors:
            raise next(iter(self._errors.values()))
        for ref in self._uses:  # in job order, as the report lists them
            outcome = self._outcomes[ref]
            if isinstance(outcome, ObjectInfo):
                infos[outcome.ref] = outcome
            else:
                unavailable.append(outcome)
        return SourceCheck(infos, unavailable)

    def close(self) -> None:
        """Stop sizing; every byte kept for the writer goes back to the budget."""
        with self._lock:
            self._closed = True
            self._sized.notify_all()
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.first_chunks.release_all()
