import json
from pathlib import Path

import pytest

from archiver.app.cli.schemas import render, schemas
from archiver.domain.errors import ErrorCode, PermanentError
from archiver.domain.job import ObjectRef
from archiver.domain.notifications import (
    FIT_MARGIN,
    MAX_MESSAGE_CHARS,
    MAX_NOTIFICATION_BYTES,
    NOTIFICATION_ADAPTER,
    ArchiveInfo,
    JobFailed,
    check_metadata_fits,
    failed,
    fitted,
    notification_body,
    succeeded,
)

SCHEMA_DIR = Path(__file__).parents[2] / "schemas"


def test_success_keeps_the_fields_current_consumers_read() -> None:
    archive = ArchiveInfo(bucket="b", key="k.zip", size_bytes=10, file_count=2, crc32="EjRWeA==")
    notification = succeeded("job-1", "https://cdn/k.zip", archive, {"u": 1})
    message = json.loads(notification.model_dump_json())
    assert message == {
        "status": "succeeded",
        "job_id": "job-1",
        "url": "https://cdn/k.zip",
        "archive": archive.model_dump(),
        "metadata": {"u": 1},
        "substitutions": {"archiver_URL": "https://cdn/k.zip"},
        "report_url": None,  # set when `archive.missing` had to be cut
    }


def test_failure_names_code_reason_and_sources() -> None:
    error = PermanentError(ErrorCode.SOURCE_NOT_FOUND, "1 source(s) cannot be read", ["s3://b/k"])
    message = json.loads(failed("job-2", error, None).model_dump_json())
    assert message == {
        "status": "failed",
        "job_id": "job-2",
        "error": {
            "code": "source_not_found",
            "message": "1 source(s) cannot be read",
            "sources": ["s3://b/k"],
            "sources_omitted": 0,
        },
        "metadata": None,
        "report_url": None,
    }


def test_notifications_round_trip_through_the_published_union() -> None:
    archive = ArchiveInfo(bucket="b", key="k", size_bytes=1, file_count=1, crc32="AAAAAA==")
    for message in (
        succeeded("j", "u", archive, {}),
        failed("j", PermanentError(ErrorCode.TOO_MANY_FILES, "x"), {"a": "b"}),
    ):
        assert NOTIFICATION_ADAPTER.validate_json(message.model_dump_json()) == message


def test_published_schemas_are_current() -> None:
    """Regenerate with `make schemas` when a model changes."""
    for name, schema in schemas().items():
        assert (SCHEMA_DIR / name).read_text(encoding="utf-8") == render(schema), name


def test_long_source_lists_are_cut_to_fit_one_sqs_message_and_counted() -> None:
    sources = [f"s3://bucket/{'k' * 1000}-{number}" for number in range(10_000)]
    error = PermanentError(ErrorCode.SOURCE_NOT_FOUND, "10000 source(s) cannot be read", sources)
    notification = failed("job", error, {"m": "x" * 200_000})
    body = notification_body(notification)
    assert len(body.encode()) <= MAX_NOTIFICATION_BYTES
    assert notification.error.sources == sources[: len(notification.error.sources)]
    assert len(notification.error.sources) + notification.error.sources_omitted == 10_000
    assert notification.error.sources_omitted > 0


def test_missing_sources_of_a_success_are_cut_the_same_way() -> None:
    missing = [f"s3://bucket/{'k' * 1000}-{number}" for number in range(1_000)]
    archive = ArchiveInfo(
        bucket="b", key="k", size_bytes=1, file_count=1, crc32="AAAAAA==", missing=missing
    )
    notification = succeeded("job", "https://cdn/k", archive, {})
    assert len(notification_body(notification).encode()) <= MAX_NOTIFICATION_BYTES
    assert len(notification.archive.missing) + notification.archive.missing_omitted == 1_000


def test_messages_are_bounded_and_always_have_a_utf8_form() -> None:
    error = PermanentError(ErrorCode.INVALID_PAYLOAD, "bad \ud800 " + "x" * 10_000)
    notification = failed("job", error, None)
    assert len(notification.error.message) == MAX_MESSAGE_CHARS
    assert notification.error.message.startswith("bad \\ud800 x")
    notification_body(notification).encode("utf-8")  # would raise on a lone surrogate


def test_the_body_escapes_what_sqs_refuses_and_reads_back_the_same() -> None:
    metadata = {"odd": "\ufffe\uffff", "nul": "\x00", "astral": "\U0001f600"}
    archive = ArchiveInfo(bucket="b", key="k", size_bytes=1, file_count=1, crc32="AAAAAA==")
    body = notification_body(succeeded("job", "u", archive, metadata))
    assert "\ufffe" not in body
    assert "\uffff" not in body
    assert json.loads(body)["metadata"] == metadata


def test_an_answer_is_cut_to_fit_its_queue_and_counts_what_it_left_out() -> None:
    sources = [f"gone/{number:05d}.jpg" for number in range(2000)]  # ~40 KiB listed
    error = PermanentError(ErrorCode.SOURCE_NOT_FOUND, "2000 sources are missing", sources)
    whole = failed("job-1", error, {"user": "a"})
    assert fitted(whole, 1024 * 1024) == whole  # fits as it is
    cut = fitted(whole, 16 * 1024)
    assert isinstance(cut, JobFailed)
    assert len(notification_body(cut).encode()) <= 16 * 1024 - FIT_MARGIN
    assert cut.error.sources == sources[: len(cut.error.sources)]
    assert cut.error.sources_omitted == len(sources) - len(cut.error.sources) > 0
    assert fitted(cut, 16 * 1024) == cut  # once is enough


def test_metadata_must_leave_room_in_the_success_answer_for_everything_else() -> None:
    """The boundary is the job's own success answer: a presigned URL twice (`url`, the
    substitution), the key, every count at its widest; metadata of exactly the room left fits."""
    queue = 256 * 1024
    archive = ObjectRef("zip-storage", "job-1/" + "é" * 300 + ".zip")
    url = (
        "https://zip-storage.s3.amazonaws.com/"
        + "%C3%A9" * 300
        + "?X-Amz-Security-Token="
        + "t" * 1200
    )
    with pytest.raises(PermanentError) as refused:
        check_metadata_fits({"n": "x" * queue}, queue, "job-1", url, archive)
    assert refused.value.code == ErrorCode.INVALID_PAYLOAD
    assert f"at most {queue:,} bytes (MaximumMessageSize)" in refused.value.message
    room = int(refused.value.message.split("leaves ")[1].split(" ")[0].replace(",", ""))
    fits = {"n": "x" * (room - len('{"n":""}'))}
    check_metadata_fits(fits, queue, "job-1", url, archive)
    with pytest.raises(PermanentError):
        check_metadata_fits({"n": "x" * (room - len('{"n":""}') + 1)}, queue, "job-1", url, archive)
    info = ArchiveInfo(
        bucket=archive.bucket, key=archive.key, size_bytes=5 * 1024**4, file_count=100_000,
        crc32="AAAAAA==",
    )  # fmt: skip
    answer = succeeded("job-1", url, info, fits)
    assert len(notification_body(answer).encode()) <= queue - FIT_MARGIN


def test_a_failure_whose_metadata_is_too_big_for_its_queue_goes_without_it() -> None:
    error = PermanentError(ErrorCode.INVALID_PAYLOAD, "metadata: too large")
    answer = fitted(failed("job-1", error, {"n": "x" * 20_000}), 16 * 1024)
    assert isinstance(answer, JobFailed)
    assert answer.metadata is None
    assert len(notification_body(answer).encode()) <= 16 * 1024 - FIT_MARGIN
