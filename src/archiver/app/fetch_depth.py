"""How far ahead of the writer to fetch: as shallow as keeps it busy, deeper only while it pays.

Fetching further ahead helps when each request is slow but the endpoint has capacity to spare
(S3 gives one connection about 90 MB/s: a large source needs several ranges in flight). It
does nothing when the endpoint, the network or the CPU is already saturated, or when the
upload is the slower side: the bytes would only sit in memory because the budget allows them.

So the depth is probed: when the writer spends a good share of its time waiting for bytes while
the upload has room, the
window is deepened by one chunk, and kept only if, once that chunk is in flight, the rate at
which the writer gets its bytes stays above the best rate before by a share worth the memory
(every measurement of the probe must show it: one lucky burst on a noisy endpoint does not).
A probe that did not pay is undone, and the next waits longer (doubling, up to `MAX_REST`
measurements). A measurement in which the writer hardly waited makes the window one chunk
shallower, down to `floor`.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

EPOCH_DEPTHS = 4  # a measurement spans this many windows' worth of written bytes
STARVED = 0.2  # share of a measurement the writer waited for bytes, with room to upload them
IDLE = 0.02  # share below which the window is deeper than the writer needs
PROBE_EPOCHS = 2  # measurements a deeper window must pay in
MIN_GAIN = 0.1  # a deeper window must raise the rate by this share at least...
SHARE_OF_IDEAL = 0.5  # ...and by half of what its extra bytes in flight would add, ideally
FIRST_REST = 8  # measurements without a probe after one that did not pay; doubles each time
MAX_REST = 64  # up to this


@dataclass
class _Probe:
    before: int  # the depth it deepened
    base: float  # the best rate of the last measurements at that depth
    rates: list[float] = field(default_factory=list)


class FetchDepth:
    def __init__(
        self,
        start: int,
        ceiling: int,
        floor: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.value = min(start, ceiling)
        self._floor = self.value if floor is None else min(floor, self.value)
        self._ceiling = ceiling
        self._clock = clock
        self._waited = 0.0  # seconds the writer waited for chunks, this measurement
        self._starved = 0.0  # of which the upload had room: fetching held the writer back
        self._began: float | None = None
        self._bytes = 0
        self._settling = False  # the depth just changed: the next window's rate says nothing
        self._recent: deque[float] = deque(maxlen=PROBE_EPOCHS)  # rates at this depth
        self._probe: _Probe | None = None
        self._rest = 0
        self._next_rest = FIRST_REST

    def handed(self, size: int, waited: float, room: Callable[[], bool]) -> None:
        """A fetched chunk went to the writer after it `waited` seconds for it; `room`: whether
        the upload side has room (asked after a wait)."""
        now = self._clock()
        if self._began is None:
            self._began = now  # the rate counts the bytes handed after this one
            return
        self._bytes += size
        if waited > 0:
            self._waited += waited
            if room():
                self._starved += waited
        if self._bytes >= (1 if self._settling else EPOCH_DEPTHS) * self.value:
            elapsed = max(now - self._began, 1e-9)
            if self._settling:
                self._settling = False
            else:
                self._measured(
                    self._bytes / elapsed, self._waited / elapsed, self._starved / elapsed, size
                )
            self._began, self._bytes, self._waited, self._starved = now, 0, 0.0, 0.0

    def _change(self, value: int) -> None:
        self.value = value
        self._recent.clear()
        self._settling = True

    def _measured(self, rate: float, waited: float, starved: float, step: int) -> None:
        """`waited` and `starved`: shares of the measurement's time (see `handed`)."""
        probe = self._probe
        if probe is None:
            if waited < IDLE and self.value > self._floor:  # the chunks were there already
                self._change(max(self.value - step, self._floor))
                return
            self._recent.append(rate)
            if self._rest > 0:
                self._rest -= 1
            elif (
                starved >= STARVED
                and self.value < self._ceiling
                and len(self._recent) == PROBE_EPOCHS
            ):
                self._probe = _Probe(self.value, max(self._recent))
                self._change(min(self.value + step, self._ceiling))
            return
        probe.rates.append(rate)
        if len(probe.rates) < PROBE_EPOCHS:
            return
        self._probe = None
        needed = max(MIN_GAIN, SHARE_OF_IDEAL * (self.value - probe.before) / probe.before)
        if min(probe.rates) >= probe.base * (1 + needed):
            self._next_rest = FIRST_REST
            self._recent.clear()
            return
        self._change(probe.before)  # it did not pay: back, and wait longer before the next probe
        self._rest = self._next_rest
        self._next_rest = min(2 * self._next_rest, MAX_REST)
