from datetime import UTC, datetime

import pytest

from archiver.domain.errors import ErrorCode, InvalidPayload, PermanentError
from archiver.domain.job import FileSpec, JobRequest, ObjectRef
from archiver.domain.naming import MAX_PATH_BYTES
from archiver.domain.plan import (
    ArchivePolicy,
    CompressionMode,
    EntryMethod,
    entry_method,
    plan_archive,
)

SENT = datetime(2026, 3, 9, 23, 59, 59, tzinfo=UTC)
POLICY = ArchivePolicy(source_bucket="source-images", destination_bucket="zip-storage")


def job(*sources: str, **extra: str) -> JobRequest:
    return JobRequest(files=[FileSpec(source=source, **extra) for source in sources])


def test_archive_key_is_job_id_then_prefix_and_sent_date() -> None:
    plan = plan_archive("msg-1", job("a.png"), SENT, POLICY)
    assert plan.archive == ObjectRef("zip-storage", "msg-1/download-2026-03-09.zip")
    assert plan.download_name == "download-2026-03-09.zip"
    assert plan.created_at == SENT


def test_custom_prefix_is_used_without_stray_slashes() -> None:
    policy = ArchivePolicy("s", "d", file_prefix="/exports/")
    assert plan_archive("m", job("a"), SENT, policy).archive.key == "m/exports-2026-03-09.zip"


def test_entries_keep_job_order_and_resolve_buckets() -> None:
    policy = ArchivePolicy("source-images", "zip-storage", frozenset({"other-bucket"}))
    request = JobRequest(
        files=[
            FileSpec(source="dir/a.png", destination="album_1"),
            FileSpec(source="s3://other-bucket/dir/a.png", destination="album_1"),
            FileSpec(source="notes.txt"),
        ]
    )
    plan = plan_archive("m", request, SENT, policy)
    assert [(entry.source, entry.name) for entry in plan.entries] == [
        (ObjectRef("source-images", "dir/a.png"), "album_1/a.png"),
        (ObjectRef("other-bucket", "dir/a.png"), "album_1/a (1).png"),
        (ObjectRef("source-images", "notes.txt"), "notes.txt"),
    ]


def test_buckets_outside_the_allow_list_are_refused_all_at_once() -> None:
    request = job("ok.png", "s3://evil-bucket/a", "s3://other/b", "s3://source-images/c")
    with pytest.raises(PermanentError) as caught:
        plan_archive("m", request, SENT, POLICY)
    assert caught.value.code == ErrorCode.SOURCE_BUCKET_NOT_ALLOWED
    assert caught.value.sources == ["s3://evil-bucket/a", "s3://other/b"]


def test_star_allows_any_bucket() -> None:
    policy = ArchivePolicy("source-images", "zip-storage", frozenset({"*"}))
    plan = plan_archive("m", job("s3://anything/a"), SENT, policy)
    assert plan.entries[0].source == ObjectRef("anything", "a")


def test_too_many_files() -> None:
    policy = ArchivePolicy("s", "d", max_files=2)
    with pytest.raises(PermanentError) as caught:
        plan_archive("m", job("a", "b", "c"), SENT, policy)
    assert caught.value.code == ErrorCode.TOO_MANY_FILES
    assert "3 files or more; the limit is 2" in caught.value.message


@pytest.mark.parametrize(
    ("mode", "name", "key", "method"),
    [
        (CompressionMode.AUTO, "a.txt", "a.txt", EntryMethod.SAMPLE),
        (CompressionMode.AUTO, "a.JPG", "a.JPG", EntryMethod.STORED),
        (CompressionMode.AUTO, "cover", "uuid.png", EntryMethod.STORED),
        (CompressionMode.AUTO, "movie.mov", "x", EntryMethod.STORED),
        (CompressionMode.AUTO, "data.csv", "data.csv", EntryMethod.SAMPLE),
        (CompressionMode.AUTO, ".png", ".png", EntryMethod.SAMPLE),
        (CompressionMode.STORED, "a.txt", "a.txt", EntryMethod.STORED),
        (CompressionMode.DEFLATED, "a.jpg", "a.jpg", EntryMethod.DEFLATED),
    ],
)
def test_entry_method(mode: CompressionMode, name: str, key: str, method: EntryMethod) -> None:
    assert entry_method(mode, name, key) is method


def test_a_path_no_extractor_can_create_is_refused_naming_the_file() -> None:
    folder = "/".join(["d" * 250] * 4)  # 1,003 bytes: the file name takes it past the bound
    request = JobRequest(
        files=[
            FileSpec(source="ok.png"),
            FileSpec(source="dir/a-long-enough-name.png", destination=folder),
        ]
    )
    with pytest.raises(InvalidPayload) as raised:
        plan_archive("job", request, SENT, POLICY)
    assert raised.value.message.startswith("files.1: its path in the archive would be 1,026 bytes")
    assert raised.value.sources == ["s3://source-images/dir/a-long-enough-name.png"]


def test_a_path_at_the_bound_is_kept() -> None:
    name = "n" * (MAX_PATH_BYTES - 1004)
    folder = "/".join(["d" * 250] * 4)
    request = JobRequest(files=[FileSpec(source="k", destination=folder, name=name)])
    [entry] = plan_archive("job", request, SENT, POLICY).entries
    assert len(entry.name.encode()) == MAX_PATH_BYTES
