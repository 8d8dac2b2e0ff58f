from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from archiver.adapters.memory import MemoryObjectStore
from archiver.adapters.memory_queue import MemoryNotifier, MemoryQueue
from archiver.app.jobs.service import ArchiveService, BuildOptions, LinkOptions
from archiver.domain.plan import ArchivePolicy

SOURCE = "source-images"
DESTINATION = "zip-storage"
SENT = datetime(2026, 11, 27, 8, 30, 15, tzinfo=UTC)


@pytest.fixture
def store() -> MemoryObjectStore:
    store = MemoryObjectStore()
    store.create_bucket(SOURCE)
    store.create_bucket(DESTINATION)
    return store


@pytest.fixture
def queue() -> MemoryQueue:
    return MemoryQueue("input-queue")


@pytest.fixture
def notifier() -> MemoryNotifier:
    return MemoryNotifier()


ServiceFactory = Callable[..., ArchiveService]


@pytest.fixture
def make_service(store: MemoryObjectStore) -> ServiceFactory:
    def make(
        *,
        policy: ArchivePolicy | None = None,
        build: BuildOptions | None = None,
        links: LinkOptions | None = None,
    ) -> ArchiveService:
        return ArchiveService(
            store,
            policy or ArchivePolicy(SOURCE, DESTINATION),
            build or BuildOptions(),
            links or LinkOptions(base_url="https://cdn.example.com/"),
        )

    return make
