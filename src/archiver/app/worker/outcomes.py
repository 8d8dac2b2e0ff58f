"""How a job's message ended, as the worker's loop counts it and its metrics name it."""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple


class Outcome(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # permanent: failure notified, message deleted
    DEFERRED = "deferred"  # transient, or a crash before the last delivery: redelivered later
    RELEASED = "released"  # shutting down: handed back for another worker at once
    CONTINUED = "continued"  # checkpointed: a continuation message carries the job on


class Done(NamedTuple):
    """How a job ended, for its metrics."""

    outcome: Outcome
    code: str | None = None
    archive_bytes: int = 0
    file_count: int = 0
