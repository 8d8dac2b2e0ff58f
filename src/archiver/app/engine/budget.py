"""The byte budget: how many source bytes may sit fetched but unwritten, for all jobs at once."""

from __future__ import annotations

import threading

from archiver.domain.job import ObjectRef
from archiver.domain.ports import Buffer


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
