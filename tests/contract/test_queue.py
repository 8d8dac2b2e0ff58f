from datetime import UTC, datetime, timedelta

from archiver.domain.ports import Queue


def test_send_receive_release_delete(queue: Queue) -> None:
    assert queue.receive(max_messages=1, wait_seconds=0) == []
    message_id = queue.send('{"files": [{"source": "é.png"}]}')

    [first] = queue.receive(max_messages=10, wait_seconds=1)
    assert first.message_id == message_id
    assert first.body == '{"files": [{"source": "é.png"}]}'
    assert first.receive_count == 1
    assert abs(first.sent_at - datetime.now(UTC)) < timedelta(minutes=5)
    assert queue.receive(max_messages=10, wait_seconds=0) == []  # invisible while in flight

    queue.release(first)
    [second] = queue.receive(max_messages=10, wait_seconds=1)
    assert second.message_id == message_id
    assert second.receive_count == 2
    assert second.sent_at == first.sent_at

    queue.delete(second)
    queue.release(second)  # releasing a deleted message changes nothing
    assert queue.receive(max_messages=10, wait_seconds=1) == []
