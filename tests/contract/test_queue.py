from datetime import UTC, datetime, timedelta

import pytest

from archiver.domain.errors import ConfigurationError
from archiver.domain.ports import Queue
from tests.contract.conftest import REDRIVE_LIMIT


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
