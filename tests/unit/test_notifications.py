import json
from pathlib import Path

from archiver.app.schemas import render, schemas
from archiver.domain.errors import ErrorCode, PermanentError
from archiver.domain.notifications import NOTIFICATION_ADAPTER, ArchiveInfo, failed, succeeded

SCHEMA_DIR = Path(__file__).parents[2] / "schemas"


def test_success_keeps_the_fields_current_consumers_read() -> None:
    archive = ArchiveInfo(bucket="b", key="k.zip", size_bytes=10, file_count=2, sha256="ab")
    notification = succeeded("job-1", "https://cdn/k.zip", archive, {"u": 1})
    message = json.loads(notification.model_dump_json())
    assert message == {
        "status": "succeeded",
        "job_id": "job-1",
        "url": "https://cdn/k.zip",
        "archive": archive.model_dump(),
        "metadata": {"u": 1},
        "substitutions": {"archiver_URL": "https://cdn/k.zip"},
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
        },
        "metadata": None,
    }


def test_notifications_round_trip_through_the_published_union() -> None:
    archive = ArchiveInfo(bucket="b", key="k", size_bytes=1, file_count=1, sha256=None)
    for message in (
        succeeded("j", "u", archive, {}),
        failed("j", PermanentError(ErrorCode.TOO_MANY_FILES, "x"), {"a": "b"}),
    ):
        assert NOTIFICATION_ADAPTER.validate_json(message.model_dump_json()) == message


def test_published_schemas_are_current() -> None:
    """Regenerate with `make schemas` when a model changes."""
    for name, schema in schemas().items():
        assert (SCHEMA_DIR / name).read_text(encoding="utf-8") == render(schema), name
