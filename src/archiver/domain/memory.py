"""How a process's memory budget (`MEMORY_BUDGET_MB`) is shared (pure arithmetic).

Each of `WORKER_CONCURRENCY` jobs gets an equal share. A job's upload side holds its parts in
flight, the part being filled, and three held parts: the two a streamed entry's unpatched
header may straddle, and a part's worth for copied entries' headers waiting for S3's CRC-32
(`holds_too_much`). Parts grow with the archive (10,000 at most), so the upload side is
counted at the parts' real size: fewer parts go out at once as they grow, and a job whose parts
cannot fit its share even one at a time is refused. What the upload sides leave bounds the
source bytes fetched ahead of the writers, for all jobs together: never less than two ranges
a job, one in hand and one in flight.
"""

from __future__ import annotations

HELD_PARTS = 3
"""Parts held until headers are patched: a streamed entry's two, and copied entries' one."""


def held_bytes(part_size: int) -> int:
    return HELD_PARTS * part_size


def sink_bytes(part_size: int, in_flight: int) -> int:
    """One job's upload side: parts in flight, the part being filled, the held parts."""
    return (in_flight + 1) * part_size + held_bytes(part_size)


def parts_in_flight(share: int, part_size: int, upload_concurrency: int, range_size: int) -> int:
    """The most parts (up to `upload_concurrency`) one job may upload at once with parts of
    `part_size` within its `share`, two ranges of prefetch kept; 0 when not even one fits."""
    room = share - 2 * range_size - sink_bytes(part_size, 0)
    return max(0, min(upload_concurrency, room // part_size))


def least_share(part_size: int, range_size: int) -> int:
    """The smallest share in which a job with parts of `part_size` runs (one part in flight)."""
    return sink_bytes(part_size, 1) + 2 * range_size


def prefetch_bytes(
    budget: int, part_size: int, upload_concurrency: int, jobs: int, range_size: int
) -> int:
    """What the upload sides leave of the budget at the smallest part size, for all jobs."""
    in_flight = parts_in_flight(budget // jobs, part_size, upload_concurrency, range_size)
    left = budget - jobs * sink_bytes(part_size, max(1, in_flight))
    return max(left, 2 * range_size * jobs)
