"""A one-line progress display for operators running `archiver build` in a terminal."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from archiver.domain.notifications import Progress

MIB = 1024 * 1024


class ProgressLine:
    def __init__(self, stream: TextIO = sys.stderr, interval: float = 0.2) -> None:
        self._stream = stream
        self._interval = interval
        self._started = time.monotonic()
        self._shown = 0.0

    def __call__(self, progress: Progress) -> None:
        now = time.monotonic()
        finished = progress.files_done == progress.files_total
        if now - self._shown < self._interval and not finished:
            return
        self._shown = now
        rate = progress.bytes_done / MIB / max(now - self._started, 1e-6)
        self._stream.write(
            f"\r{progress.files_done}/{progress.files_total} files  "
            f"{progress.bytes_done / MIB:,.1f}/{progress.bytes_total / MIB:,.1f} MiB  "
            f"{rate:,.1f} MiB/s "
        )
        if finished:
            self._stream.write("\n")
        self._stream.flush()
