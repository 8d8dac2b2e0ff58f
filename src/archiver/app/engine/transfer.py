"""The engine's bottom: what its modules pass each other, and the narrow views they take of
one another. Imports nothing of the engine but the byte budget, so no arrow points back up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from archiver.app.engine.budget import ByteBudget
from archiver.domain.errors import ObjectUnavailable
from archiver.domain.job import ObjectRef
from archiver.domain.notifications import Progress
from archiver.domain.plan import PlannedEntry
from archiver.domain.policy import Admitted
from archiver.domain.ports import ObjectInfo

ProgressCallback = Callable[[Progress], None]


@dataclass(frozen=True)
class Transfer:
    """How sources are fetched: the process's byte budget, a job's threads, the range size."""

    budget: ByteBudget
    concurrency: int  # DOWNLOAD_CONCURRENCY
    range_size: int


@dataclass(frozen=True)
class Chunk:
    """One ranged read of one entry's source, in job order."""

    entry: int  # index in the plan's entries
    ref: ObjectRef
    start: int
    length: int
    etag: str | None
    last: bool  # the entry's final chunk
    probed: bool = False  # already read by the size check (FirstChunks)
    entry_size: int = 0  # the whole entry's size
    copied: bool = False  # stands for an entry the store copies: only what probing read


class SizedSources(Protocol):
    """What the chunk feed and the writer read of the sizing, as each source gets sized."""

    def outcome(self, ref: ObjectRef) -> ObjectInfo | ObjectUnavailable:
        """The source's size, waiting for it."""
        ...

    def is_sized(self, ref: ObjectRef) -> bool: ...

    def probed_size(self, ref: ObjectRef) -> int | None:
        """How many of its first bytes the size check kept, if any."""
        ...

    def stored(self, entry: PlannedEntry) -> bool:
        """Whether the entry is known to be stored (never deflated) before it is written."""
        ...

    def checksum(self, ref: ObjectRef) -> int | None:
        """The source's CRC-32 from its stored checksum, if known."""
        ...

    def settle(self) -> Admitted:
        """Wait for every size, then apply the job's policy (raises if it refuses the job)."""
        ...
