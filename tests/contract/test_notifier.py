from archiver.domain.errors import ErrorCode, PermanentError
from archiver.domain.notifications import ArchiveInfo, failed, succeeded
from archiver.domain.ports import Notifier
from tests.contract.conftest import Published


def test_published_notifications_arrive_intact(
    notifier_and_reader: tuple[Notifier, Published],
) -> None:
    notifier, published = notifier_and_reader
    archive = ArchiveInfo(bucket="b", key="j/a.zip", size_bytes=3, file_count=1, crc32="AAAAAA==")
    success = succeeded("j1", "https://cdn/j/a.zip", archive, {"user": "ü"})
    failure = failed("j2", PermanentError(ErrorCode.SOURCE_NOT_FOUND, "gone", ["s3://b/k"]), None)
    notifier.publish(success)
    notifier.publish(failure)
    assert sorted(published(), key=lambda n: n.job_id) == [success, failure]


def test_text_sqs_refuses_raw_arrives_intact(
    notifier_and_reader: tuple[Notifier, Published],
) -> None:
    notifier, published = notifier_and_reader
    notifier.check()
    archive = ArchiveInfo(bucket="b", key="j/a.zip", size_bytes=3, file_count=1, crc32="AAAAAA==")
    metadata = {"odd": "\ufffe\uffff", "control": "\x00\x01\x1f", "astral": "\U0001f600"}
    success = succeeded("j1", "https://cdn/j/a.zip", archive, metadata)
    notifier.publish(success)
    assert published() == [success]
