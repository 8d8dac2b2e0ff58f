"""What many tests share: byte sizes, and waiting for a condition with a deadline."""

from __future__ import annotations

import time
from collections.abc import Callable

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB


def wait_until(condition: Callable[[], object], timeout: float, interval: float = 0.05) -> None:
    """Poll `condition` until it holds; fail the test if it does not within `timeout` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for a condition"
        time.sleep(interval)
