"""The byte budget: how many source bytes may sit fetched but unwritten, for all jobs at once,
and each job's upload side within its share (`JobMemory`)."""

from __future__ import annotations

import threading

from archiver.domain.errors import ErrorCode, PermanentError
from archiver.domain.job import ObjectRef
from archiver.domain.memory import least_share, parts_in_flight, sink_bytes
from archiver.domain.ports import Buffer

RANGE_BYTES = 8 * 1024 * 1024
"""The size of each ranged GET of a source past its first bytes."""


class ByteBudget:
    """Bytes that may sit fetched but unwritten, shared by every job of the process."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._available = capacity
        self._changed = threading.Condition()

    def try_acquire(self, amount: int) -> bool:
        with self._changed:
            if amount > self._available:
                return False
            self._available -= amount
            return True

    def force_acquire(self, amount: int) -> None:
        """Take `amount` even past the capacity (for a job that has nothing else in flight)."""
        with self._changed:
            self._available -= min(amount, self.capacity)

    def release(self, amount: int) -> None:
        with self._changed:
            self._available = min(self.capacity, self._available + min(amount, self.capacity))
            self._changed.notify_all()


class FirstChunks:
    """Bytes the size check already read, kept for the writer with their share of the budget."""

    def __init__(self, budget: ByteBudget) -> None:
        self._budget = budget
        self._data: dict[ObjectRef, Buffer] = {}
        self._held = 0
        self._closed = False
        self._lock = threading.Lock()

    def reserve(self, amount: int, cap: int) -> bool:
        with self._lock:
            if self._closed or self._held + amount > cap:
                return False
            if not self._budget.try_acquire(amount):
                return False
            self._held += amount
            return True

    def unreserve(self, amount: int) -> None:
        with self._lock:
            self._held -= amount
        self._budget.release(amount)

    def keep(self, ref: ObjectRef, data: Buffer, reserved: int) -> None:
        with self._lock:
            closed = self._closed
            if not closed:
                self._data[ref] = data
        self.unreserve(reserved if closed else reserved - len(data))

    def size_of(self, ref: ObjectRef) -> int | None:
        with self._lock:
            data = self._data.get(ref)
            return None if data is None else len(data)

    def hand_over(self, ref: ObjectRef) -> Buffer | None:
        """Hand the bytes, and their reservation, to the caller."""
        with self._lock:
            data = self._data.pop(ref, None)
            if data is not None:
                self._held -= len(data)
            return data

    def release_all(self) -> None:
        """Give every kept byte back; what a size check still running keeps is given back too."""
        with self._lock:
            self._closed = True
            total = sum(len(data) for data in self._data.values())
            self._data.clear()
            self._held -= total
        if total:
            self._budget.release(total)


class JobMemory:
    """One job's upload side within its share of the budget, at the size its parts really are.

    The share at the smallest part size is set aside when the process starts (what is left is
    the prefetch budget); parts larger than that take the difference from the prefetch budget
    while the job runs (so less is fetched ahead), and fewer of them go out at once.
    """

    def __init__(
        self, budget: ByteBudget, share: int, min_part: int, upload_concurrency: int
    ) -> None:
        self._budget = budget
        self._share = share
        self._upload_concurrency = upload_concurrency
        smallest = max(1, parts_in_flight(share, min_part, upload_concurrency, RANGE_BYTES))
        self._set_aside = sink_bytes(min_part, smallest)
        self._taken = 0
        self._lock = threading.Lock()

    def parts_for(self, part_size: int) -> int:
        """Parts that may upload at once now that parts are `part_size`; the memory they need
        past the share set aside is taken from the prefetch budget. PermanentError
        (`archive_too_large`) when even one part at a time does not fit the share."""
        in_flight = parts_in_flight(self._share, part_size, self._upload_concurrency, RANGE_BYTES)
        if in_flight == 0:
            mib = 1024 * 1024
            raise PermanentError(
                ErrorCode.ARCHIVE_TOO_LARGE,
                f"the archive needs parts of {part_size // mib:,} MiB (S3 allows 10,000 parts), "
                f"and one job needs {least_share(part_size, RANGE_BYTES) // mib:,} MiB for "
                f"them; MEMORY_BUDGET_MB gives each job {self._share // mib:,} MiB: raise it, "
                "or lower WORKER_CONCURRENCY",
            )
        with self._lock:
            need = sink_bytes(part_size, in_flight) - self._set_aside
            if need > self._taken:
                self._budget.force_acquire(need - self._taken)
                self._taken = need
        return in_flight

    def release(self) -> None:
        with self._lock:
            taken, self._taken = self._taken, 0
        if taken:
            self._budget.release(taken)
