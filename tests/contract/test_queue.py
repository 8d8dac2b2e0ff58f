from datetime import UTC, datetime, timedelta

import pytest

from archiver.domain.checkpoint import Continuation
from archiver.domain.errors import ConfigurationError
from archiver.domain.ports import Queue
from tests.contract.conftest import REDRIVE_LIMIT

TOKEN = "kept-in-the-checkpoint-0123456789"


def test_send_receive_release_delete(queue: Queue) -> None:
    assert queue.receive(max_messages=1, wait_seconds=0, visibility_seconds=30) == []
    message_id = queue.send('{"files": [{"source": "é.png"}]}')

    [first] = queue.receive(max_messages=10, wait_seconds=1, visibility_seconds=30)
    assert first.message_id == message_id
    assert first.body == '{"files": [{"source": "é.png"}]}'
    assert first.receive_count == 1
    assert abs(first.sent_at - datetime.now(UTC)) < timedelta(minutes=5)
    assert (
        queue.receive(max_messages=10, wait_seconds=0, visibility_seconds=30) == []
    )  # invisible while in flight

    queue.set_visibility(first, 0)
    [second] = queue.receive(max_messages=10, wait_seconds=1, visibility_seconds=30)
    assert second.message_id == message_id
    assert second.receive_count == 2
    assert second.sent_at == first.sent_at

    queue.delete(second)
    queue.set_visibility(second, 0)  # a deleted message stays deleted
    assert queue.receive(max_messages=10, wait_seconds=1, visibility_seconds=30) == []


def test_extending_visibility_keeps_the_message_hidden(queue: Queue) -> None:
    queue.send("long job")
    [message] = queue.receive(max_messages=1, wait_seconds=1, visibility_seconds=30)
    queue.set_visibility(message, 60)
    assert queue.receive(max_messages=1, wait_seconds=0, visibility_seconds=30) == []
    queue.delete(message)


def test_the_redrive_limit_is_read_from_the_queue(queue: Queue) -> None:
    assert queue.redrive_limit() == REDRIVE_LIMIT


def test_a_queue_url_that_names_no_queue_is_a_configuration_error(missing_queue: Queue) -> None:
    with pytest.raises(ConfigurationError):
        missing_queue.redrive_limit()


def test_a_continuation_carries_its_job_on(queue: Queue) -> None:
    """A checkpointed job's continuation: a new message, the job's own id, date, holds and
    token."""
    created = datetime(2026, 12, 7, 8, 0, 1, 250_000, tzinfo=UTC)
    message_id = queue.send('{"files": []}', Continuation("first-message-id", created, 2, TOKEN))

    [message] = queue.receive(max_messages=1, wait_seconds=1, visibility_seconds=30)

    assert message.message_id == message_id != "first-message-id"
    assert message.job_id == "first-message-id"
    assert message.created_at == created
    assert message.continued == Continuation("first-message-id", created, 2, TOKEN)
    queue.delete(message)
    queue.send("a job")
    [plain] = queue.receive(max_messages=1, wait_seconds=1, visibility_seconds=30)
    assert plain.continued is None
    assert plain.job_id == plain.message_id
    assert plain.created_at == plain.sent_at
    queue.delete(plain)
