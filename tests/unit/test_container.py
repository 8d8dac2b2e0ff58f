import json

import pytest

from archiver.adapters.memory import MemoryObjectStore
from archiver.adapters.memory_queue import MemoryNotifier, MemoryQueue
from archiver.adapters.s3 import S3ObjectStore
from archiver.adapters.sqs import SqsNotifier, SqsQueue
from archiver.app.composition.container import build_container
from archiver.app.composition.settings import Settings
from archiver.app.worker.outcomes import Outcome
from archiver.domain.job import ObjectRef
from archiver.domain.notifications import JobSucceeded
from tests.support import drive

SETTINGS = Settings(
    sqs_source_queue="https://sqs.eu-west-3.amazonaws.com/1/input-queue",
    sqs_destination_queue="https://sqs.eu-west-3.amazonaws.com/1/output-queue",
    s3_source_bucket="source-images",
    s3_destination_bucket="zip-storage",
    aws_region="eu-west-3",
    archive_base_url="https://cdn.example.com",
)


def test_wires_real_adapters_without_touching_the_network() -> None:
    container = build_container(SETTINGS)
    assert isinstance(container.object_store(), S3ObjectStore)
    assert isinstance(container.source_queue(), SqsQueue)
    assert isinstance(container.notifier(), SqsNotifier)
    assert container.s3_client().meta.region_name == "eu-west-3"


def test_ports_can_be_overridden_with_fakes() -> None:
    container = build_container(SETTINGS)
    store, queue, notifier = MemoryObjectStore(), MemoryQueue(), MemoryNotifier()
    store.add(ObjectRef("source-images", "a.txt"), b"a")
    store.create_bucket("zip-storage")
    with (
        container.object_store.override(store),
        container.source_queue.override(queue),
        container.notifier.override(notifier),
    ):
        worker = container.worker(max_receives=None)
        queue.send(json.dumps({"files": [{"source": "a.txt"}]}))
        assert drive(worker) == [Outcome.SUCCEEDED]
    [notification] = notifier.published
    assert isinstance(notification, JobSucceeded)
    assert notification.url.startswith("https://cdn.example.com/")


def test_missing_queue_is_reported_when_the_port_is_built() -> None:
    from archiver.domain.errors import ConfigurationError

    container = build_container(Settings(s3_source_bucket="a", aws_region="eu-west-3"))
    with pytest.raises(ConfigurationError, match="SQS_SOURCE_QUEUE"):
        container.source_queue()


def test_missing_region_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from archiver.domain.errors import ConfigurationError

    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    container = build_container(Settings(s3_source_bucket="a"))
    with pytest.raises(ConfigurationError, match="AWS_REGION"):
        container.s3_client()


@pytest.mark.parametrize(
    ("presign_endpoint", "link_start"),
    [
        (None, "http://localstack:4566/zip-storage/job/a%20b.zip?"),
        ("http://localhost:4566", "http://localhost:4566/zip-storage/job/a%20b.zip?"),
    ],
)
def test_presigned_links_name_the_endpoint_users_reach(
    monkeypatch: pytest.MonkeyPatch, presign_endpoint: str | None, link_start: str
) -> None:
    """docker compose: the worker talks to localstack:4566, the browser to localhost:4566."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://localstack:4566")
    settings = SETTINGS.model_copy(
        update={
            "archive_base_url": None,
            "aws_endpoint_url": "http://localstack:4566",
            "presign_endpoint_url": presign_endpoint,
        }
    )
    container = build_container(settings)
    link = container.object_store().presigned_url(ObjectRef("zip-storage", "job/a b.zip"), 60)
    assert link.startswith(link_start)
    assert "X-Amz-Signature=" in link
    assert container.s3_client().meta.endpoint_url == "http://localstack:4566"
