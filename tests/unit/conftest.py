import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest

from archiver.adapters.memory import MemoryObjectStore
from archiver.adapters.memory_queue import MemoryNotifier, MemoryQueue
from archiver.adapters.memory_secrets import MemorySecretStore
from archiver.app.jobs.service import ArchiveService, BuildOptions, LinkOptions
from archiver.domain.plan import ArchivePolicy
from tests.slow_store import SlowStore
from tests.support import build_options, link_options

SOURCE = "source-images"
DESTINATION = "zip-storage"
SENT = datetime(2026, 11, 27, 8, 30, 15, tzinfo=UTC)


@pytest.fixture
def store() -> MemoryObjectStore:
    store = MemoryObjectStore()
    store.create_bucket(SOURCE)
    store.create_bucket(DESTINATION)
    return store


@pytest.fixture(autouse=True)
def no_thread_outlives_its_test() -> Iterator[None]:
    """Every thread a test starts has ended by its end (a second to wind down)."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 1.0
    left = [thread for thread in threading.enumerate() if thread not in before]
    for thread in left:
        thread.join(max(deadline - time.monotonic(), 0))
    assert [thread.name for thread in left if thread.is_alive()] == []


@pytest.fixture
def queue() -> Iterator[MemoryQueue]:
    queue = MemoryQueue("input-queue")
    yield queue
    queue.close()  # a long poll a stopped worker left behind ends with the test


@pytest.fixture
def notifier() -> MemoryNotifier:
    return MemoryNotifier()


@pytest.fixture
def secrets() -> MemorySecretStore:
    return MemorySecretStore()


ServiceFactory = Callable[..., ArchiveService]


@pytest.fixture
def make_service(store: MemoryObjectStore, secrets: MemorySecretStore) -> ServiceFactory:
    def make(
        *,
        policy: ArchivePolicy | None = None,
        build: BuildOptions | None = None,
        links: LinkOptions | None = None,
    ) -> ArchiveService:
        return ArchiveService(
            store,
            secrets,
            policy or ArchivePolicy(SOURCE, DESTINATION),
            build or build_options(),
            links or link_options(base_url="https://cdn.example.com/"),
        )

    return make


@pytest.fixture
def slow() -> SlowStore:
    """A store whose source reads take 50 ms each (`delay`), every archive part logged."""
    store = SlowStore(delay=0.05, source=SOURCE)
    store.create_bucket(SOURCE)
    store.create_bucket(DESTINATION)
    return store
