"""What many tests share: byte sizes, waiting with a deadline, and driving the worker loop."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from typing import Any

from archiver.adapters.memory import MemoryObjectStore
from archiver.app.composition.settings import Settings
from archiver.app.engine.budget import ByteBudget
from archiver.app.jobs.answer import Jobs
from archiver.app.jobs.service import ArchiveService, BuildOptions, LinkOptions
from archiver.app.worker.loop import Ops, Worker
from archiver.app.worker.ops import Liveness, Metrics, ScaleInProtection
from archiver.app.worker.outcomes import Outcome
from archiver.app.worker.progress import ProgressTracker
from archiver.domain.multipart import STAGING_PREFIX
from archiver.domain.ports import Notifier, Queue

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB


def wait_until(condition: Callable[[], object], timeout: float, interval: float = 0.05) -> None:
    """Poll `condition` until it holds; fail the test if it does not within `timeout` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for a condition"
        time.sleep(interval)


def drive(worker: Worker, polls: int = 1) -> list[Outcome]:
    """Run the worker's production loop for `polls` receives and wait for the jobs they
    brought; return how they ended (in `Outcome`'s order)."""
    ended = worker.run(threading.Event(), max_polls=polls)
    return sorted(ended.elements(), key=list(Outcome).index)


def all_returned(budget: ByteBudget) -> bool:
    """Whether every byte of the budget is back (checked by taking it all, then returning it)."""
    if not budget.try_acquire(budget.capacity):
        return False
    budget.release(budget.capacity)
    return True


def defaults() -> Settings:
    """The settings model's defaults, the environment not read."""
    return Settings.model_construct()


def build_options(**overrides: Any) -> BuildOptions:
    return dataclasses.replace(defaults().build_options(), **overrides)


def link_options(**overrides: Any) -> LinkOptions:
    return dataclasses.replace(defaults().link_options(), **overrides)


def make_worker(
    queue: Queue,
    notifier: Notifier,
    service: ArchiveService,
    *,
    delete_offloaded: bool = False,
    max_receives: int | None = None,
    progress_log_seconds: float | None = None,
    progress_notify_seconds: float | None = None,
    liveness: Liveness | None = None,
    metrics: Metrics | None = None,
    protection: ScaleInProtection | None = None,
    **options: Any,
) -> Worker:
    """A worker wired as the container wires it, on the settings' defaults but for what is
    given (`options` are `WorkerOptions` fields)."""
    settings = defaults()
    liveness = liveness or Liveness(None)
    progress = ProgressTracker(
        progress_log_seconds or settings.progress_log_seconds,
        progress_notify_seconds or settings.progress_notify_seconds,
        notifier,
        liveness.beat,
    )
    ops = Ops(liveness, metrics or Metrics(enabled=False), protection or ScaleInProtection(None))
    return Worker(
        queue,
        notifier,
        Jobs(service, delete_offloaded=delete_offloaded, message_bytes=notifier.max_bytes),
        dataclasses.replace(settings.worker_options(), **options),
        progress,
        ops,
        max_receives=max_receives,
    )


def staging_left(store: MemoryObjectStore) -> list[str]:
    """Staging objects and open uploads still in the store: none may be once a job ends."""
    objects = [ref.key for ref in store.objects if ref.key.startswith(STAGING_PREFIX)]
    return objects + [upload.ref.key for upload in store.uploads.values()]
