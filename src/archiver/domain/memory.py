"""How a process's memory budget (`MEMORY_BUDGET_MB`) is shared (pure arithmetic).

Each running job's upload side holds its parts in flight, the part being filled, the two
parts a streamed entry's unpatched header may straddle, and a part's worth of parts kept for
copied entries' headers waiting for S3's CRC-32 (`holds_too_much`); what is left, for all
jobs together, bounds the source bytes fetched ahead of the writers.
"""

from __future__ import annotations


def held_bytes(part_size: int) -> int:
    """Parts held until headers are patched: a streamed entry's (it may straddle two), and
    copied entries' (a part's worth in all)."""
    return 3 * part_size


def sink_bytes(part_size: int, upload_concurrency: int) -> int:
    """One job's upload side: parts in flight, the part being filled, the held parts."""
    return (upload_concurrency + 1) * part_size + held_bytes(part_size)


def prefetch_bytes(
    budget: int, part_size: int, upload_concurrency: int, jobs: int, range_size: int
) -> int:
    """What is left of the budget for fetched-but-unwritten source bytes, for all jobs; never
    less than two ranges, so a job always has one in hand and one in flight."""
    left = budget - jobs * sink_bytes(part_size, upload_concurrency)
    return max(left, 2 * range_size)
