"""The fetch-ahead controller against simulated endpoints: a clock that advances by what each
chunk costs at the current depth."""

import random
from collections.abc import Callable

from archiver.app.fetch_depth import FetchDepth

MIB = 1024 * 1024
RANGE = 8 * MIB
PER_CONNECTION = 90e6  # bytes/s one request gets from S3


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def run(
    rate_at: Callable[[int], float],
    chunks: int,
    *,
    start: int = 2 * RANGE,
    waited: bool = True,
    room: bool = True,
) -> tuple[FetchDepth, list[int]]:
    """Hand `chunks` ranges to the writer, each after the time the endpoint needs for it at
    the depth of the moment; returns the controller and the depth after every chunk."""
    clock = Clock()
    depth = FetchDepth(start, ceiling=9 * RANGE, floor=RANGE, clock=clock)
    seen = []
    for _ in range(chunks):
        fetching = RANGE / rate_at(depth.value)  # the writer itself takes no time
        clock.now += fetching
        depth.handed(RANGE, fetching if waited else 0.0, lambda: room)
        seen.append(depth.value)
    return depth, seen


def per_request(depth: int) -> float:
    """S3: each request in flight adds its own 90 MB/s."""
    return PER_CONNECTION * depth / RANGE


def saturated(depth: int) -> float:
    """An endpoint (or a CPU) that gives the same rate however many requests wait on it."""
    return 60e6


def test_it_deepens_while_each_request_in_flight_adds_throughput() -> None:
    depth, _ = run(per_request, 1_000)
    assert depth.value == 9 * RANGE  # the budget's ceiling


def test_a_saturated_endpoint_keeps_it_where_it_started() -> None:
    depth, seen = run(saturated, 2_000)
    assert depth.value == 2 * RANGE
    assert max(seen) == 3 * RANGE  # it did probe one range deeper...
    assert seen.count(3 * RANGE) < len(seen) / 10  # ...ever more rarely


def test_noise_on_a_saturated_endpoint_does_not_deepen_it() -> None:
    rng = random.Random(7)
    depth, seen = run(lambda _: 60e6 * rng.uniform(0.9, 1.1), 2_000)
    assert depth.value == 2 * RANGE
    assert max(seen) <= 3 * RANGE


def test_no_deeper_while_the_upload_is_the_slower_side() -> None:
    _, seen = run(per_request, 500, room=False)
    assert max(seen) == 2 * RANGE


def test_a_writer_that_never_waits_makes_it_shallower_down_to_the_floor() -> None:
    depth, seen = run(per_request, 100, start=4 * RANGE, waited=False)
    assert depth.value == RANGE
    assert seen == sorted(seen, reverse=True)  # never deeper on the way
