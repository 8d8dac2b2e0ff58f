"""Exponential backoff: the one rule every retry in archiver waits by (pure arithmetic)."""

from __future__ import annotations


def backoff(attempt: int, first: float, cap: float) -> float:
    """The wait before retry `attempt` (0 for the first retry): `first` doubled each time, at
    most `cap`."""
    return float(min(first * 2 ** max(attempt, 0), cap))
