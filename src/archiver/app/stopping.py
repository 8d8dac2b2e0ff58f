"""How soon a wait anywhere in the process notices a stop: the one interval every loop that
watches a stop or cancel event polls at (the worker's loop, its long poll, start-up, a job
waiting for its last sources to be sized, the command line's main thread)."""

from __future__ import annotations

import threading
from typing import Protocol

STOP_POLL_SECONDS = 0.1


class Signal(Protocol):
    """What a running job polls: whether it is to stop for a checkpoint, or to stop now
    (`threading.Event` is one)."""

    def is_set(self) -> bool: ...


class AnyOf:
    """Set once any of its events is: the receipt's hold is over, or the worker stops."""

    def __init__(self, *events: threading.Event) -> None:
        self._events = events

    def is_set(self) -> bool:
        return any(event.is_set() for event in self._events)
