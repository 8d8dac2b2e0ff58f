"""Folders (`prefix`) and file lists in S3 (`files_from`): parsed, resolved, planned, built."""

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from archiver.adapters.memory import MemoryObjectStore, SyntheticBody
from archiver.app.jobs import resolve as resolve_module
from archiver.domain.errors import ErrorCode, InvalidPayload, PermanentError
from archiver.domain.file_list import parse_file_list
from archiver.domain.job import ObjectRef, parse_job
from archiver.domain.plan import ArchivePolicy, MissingFiles
from tests.unit.conftest import DESTINATION, SENT, SOURCE, ServiceFactory
from tests.zipcheck import contents

SCHEMA = json.loads((Path(__file__).parents[2] / "schemas" / "job.schema.json").read_text())
OTHER = "other-bucket"


def put(store: MemoryObjectStore, key: str, body: bytes, bucket: str = SOURCE) -> None:
    store.add(ObjectRef(bucket, key), body)


VALID = [
    {"files": [{"prefix": "albums/2026/wedding/", "destination": "Wedding"}]},
    {"files": [{"prefix": "s3://other-bucket/albums/"}, {"source": "a.png"}]},
    {"files_from": "s3://lists/job-42.jsonl", "metadata": {"id": 7}},
    {"files_from": "lists/job-42.json"},
]
INVALID = [
    ({"files": [{"prefix": "albums/", "name": "x.png"}]}, "a prefix takes no name"),
    ({"files": [{"prefix": "albums/", "source": "a.png"}]}, "not both"),
    ({"files": [{"destination": "a"}]}, "source is required (or prefix)"),
    ({"files": [{"prefix": "albums/../secret/"}]}, "'..' segment"),
    ({"files": [{"prefix": "https://example.com/albums/"}]}, "unsupported scheme"),
    ({"files_from": "s3://lists/a.jsonl", "files": [{"source": "a"}]}, "not both"),
    ({}, "files is required (or files_from)"),
]


@pytest.mark.parametrize("job", VALID)
def test_each_form_parses_and_the_schema_accepts_it(job: dict[str, Any]) -> None:
    parse_job(json.dumps(job))
    jsonschema.validate(job, SCHEMA)


@pytest.mark.parametrize(("job", "reason"), INVALID)
def test_hostile_forms_are_refused_clearly(job: dict[str, Any], reason: str) -> None:
    with pytest.raises(InvalidPayload, match=reason.replace("(", r"\(").replace(")", r"\)")):
        parse_job(json.dumps(job))
    if "'..'" not in reason and "scheme" not in reason:  # patterns the schema does not carry
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(job, SCHEMA)


def test_a_file_list_is_a_json_array_or_json_lines_and_errors_name_the_line() -> None:
    lines = '{"source": "a.png"}\n\n{"prefix": "albums/", "destination": "x"}\n'
    assert [spec.source or spec.prefix for spec in parse_file_list(lines, "files_from")] == [
        "a.png",
        "albums/",
    ]
    array = '[{"source": "a.png"}, {"source": "b.png", "name": "c.png"}]'
    assert [spec.name for spec in parse_file_list(array, "files_from")] == [None, "c.png"]
    with pytest.raises(InvalidPayload, match="files_from line 3: destnation"):
        parse_file_list('{"source": "a"}\n\n{"source": "b", "destnation": "x"}', "files_from")
    with pytest.raises(InvalidPayload, match="files_from line 2 is not JSON"):
        parse_file_list('{"source": "a"}\n{"source": ', "files_from")
    with pytest.raises(InvalidPayload, match="files_from item 1"):
        parse_file_list('[{"source": "a"}, 3]', "files_from")


def test_a_prefix_becomes_every_object_under_it_in_key_order(
    store: MemoryObjectStore, make_service: ServiceFactory
) -> None:
    bodies = {
        "albums/2026/wedding/b.jpg": b"b",
        "albums/2026/wedding/a.jpg": b"a",
        "albums/2026/wedding/church/c.jpg": b"c",
        "albums/2026/wedding/empty/": b"",  # a folder marker: skipped
        "albums/2026/other/d.jpg": b"d",  # not under the prefix
    }
    for key, body in bodies.items():
        put(store, key, body)
    put(store, "albums/e.jpg", b"e", bucket=OTHER)
    policy = ArchivePolicy(SOURCE, DESTINATION, allowed_source_buckets=frozenset({OTHER}))
    service = make_service(policy=policy)
    request = parse_job(
        json.dumps(
            {
                "files": [
                    {"prefix": "albums/2026/wedding/", "destination": "Wedding"},
                    {"source": "albums/2026/other/d.jpg"},
                    {"prefix": f"s3://{OTHER}/albums/"},
                ]
            }
        )
    )
    plan = service.plan("job-1", request, SENT)
    assert [entry.name for entry in plan.entries] == [
        "Wedding/a.jpg",
        "Wedding/b.jpg",
        "Wedding/church/c.jpg",
        "d.jpg",
        "e.jpg",
    ]
    service.build(plan)
    data = store.objects[plan.archive]
    assert isinstance(data, bytes)
    assert contents(data) == {
        "Wedding/a.jpg": b"a",
        "Wedding/b.jpg": b"b",
        "Wedding/church/c.jpg": b"c",
        "d.jpg": b"d",
        "e.jpg": b"e",
    }


@pytest.mark.parametrize("missing_files", [MissingFiles.FAIL, MissingFiles.SKIP])
def test_a_prefix_that_matches_nothing_is_a_missing_source(
    store: MemoryObjectStore, make_service: ServiceFactory, missing_files: MissingFiles
) -> None:
    put(store, "a.png", b"a")
    put(store, "nothing-here/", b"")  # only a folder marker
    service = make_service(policy=ArchivePolicy(SOURCE, DESTINATION, missing_files=missing_files))
    request = parse_job('{"files": [{"source": "a.png"}, {"prefix": "nothing-here/"}]}')
    plan = service.plan("job-1", request, SENT)
    if missing_files is MissingFiles.FAIL:
        with pytest.raises(PermanentError) as failure:
            service.build(plan)
        assert failure.value.code is ErrorCode.SOURCE_NOT_FOUND
        assert failure.value.sources == [f"s3://{SOURCE}/nothing-here/"]
        return
    archive = service.build(plan)
    assert archive.missing == [f"s3://{SOURCE}/nothing-here/"]
    assert archive.file_count == 1


def test_listing_stops_as_soon_as_the_files_pass_max_files(
    store: MemoryObjectStore, make_service: ServiceFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    for number in range(50):
        put(store, f"many/{number:03d}.txt", b"x")
    listed: list[ObjectRef] = []
    list_prefix = store.list_prefix

    def counting(prefix: ObjectRef) -> Any:
        for info in list_prefix(prefix):
            listed.append(info.ref)
            yield info

    monkeypatch.setattr(store, "list_prefix", counting)
    service = make_service(policy=ArchivePolicy(SOURCE, DESTINATION, max_files=10))
    request = parse_job('{"files": [{"source": "a.png"}, {"prefix": "many/"}]}')
    with pytest.raises(PermanentError) as failure:
        service.plan("job-1", request, SENT)
    assert failure.value.code is ErrorCode.TOO_MANY_FILES
    assert len(listed) == 10  # the 11th file ended it


def test_a_prefix_in_a_bucket_not_allowed_is_never_listed(
    store: MemoryObjectStore, make_service: ServiceFactory
) -> None:
    put(store, "albums/e.jpg", b"e", bucket=OTHER)
    store.faults[ObjectRef(OTHER, "albums/")] = AssertionError("listed")
    request = parse_job(json.dumps({"files": [{"prefix": f"s3://{OTHER}/albums/"}]}))
    with pytest.raises(PermanentError) as failure:
        make_service().plan("job-1", request, SENT)
    assert failure.value.code is ErrorCode.SOURCE_BUCKET_NOT_ALLOWED


@pytest.mark.parametrize("form", ["jsonl", "array"])
def test_a_file_list_in_s3_builds_the_archive(
    store: MemoryObjectStore, make_service: ServiceFactory, form: str
) -> None:
    items = [{"source": f"f/{n}.txt", "destination": "list"} for n in range(20)]
    items.append({"prefix": "albums/"})
    for n in range(20):
        put(store, f"f/{n}.txt", f"file {n}".encode())
    put(store, "albums/x.jpg", b"x")
    text = "\n".join(map(json.dumps, items)) if form == "jsonl" else json.dumps(items)
    put(store, "lists/job.list", text.encode())
    service = make_service()
    plan = service.plan("job-1", parse_job('{"files_from": "lists/job.list"}'), SENT)
    service.build(plan)
    data = store.objects[plan.archive]
    assert isinstance(data, bytes)
    assert contents(data) == {
        **{f"list/{n}.txt": f"file {n}".encode() for n in range(20)},
        "x.jpg": b"x",
    }


@pytest.mark.parametrize(
    ("files_from", "code", "reason"),
    [
        (f"s3://{DESTINATION}/lists/job.jsonl", ErrorCode.INVALID_PAYLOAD, "destination bucket"),
        (f"s3://{OTHER}/lists/job.jsonl", ErrorCode.SOURCE_BUCKET_NOT_ALLOWED, "may not read"),
        ("lists/missing.jsonl", ErrorCode.SOURCE_NOT_FOUND, "cannot be read"),
        ("lists/huge.jsonl", ErrorCode.INVALID_PAYLOAD, "the limit is 1,000"),
        ("lists/binary.jsonl", ErrorCode.INVALID_PAYLOAD, "not UTF-8"),
        ("lists/bad-line.jsonl", ErrorCode.INVALID_PAYLOAD, "files_from line 2"),
        ("lists/empty.jsonl", ErrorCode.INVALID_PAYLOAD, "lists no file"),
        ("lists/foreign.jsonl", ErrorCode.SOURCE_BUCKET_NOT_ALLOWED, "may not read"),
    ],
)
def test_hostile_file_lists_are_answered_with_a_clear_failure(
    store: MemoryObjectStore,
    make_service: ServiceFactory,
    monkeypatch: pytest.MonkeyPatch,
    files_from: str,
    code: ErrorCode,
    reason: str,
) -> None:
    monkeypatch.setattr(resolve_module, "MAX_FILE_LIST_BYTES", 1000)
    put(store, "lists/job.jsonl", b'{"source": "a"}', bucket=DESTINATION)
    put(store, "lists/job.jsonl", b'{"source": "a"}', bucket=OTHER)
    put(store, "lists/huge.jsonl", b'{"source": "a"}\n' * 100)
    put(store, "lists/binary.jsonl", b"\xff\xfe{}")
    put(store, "lists/bad-line.jsonl", b'{"source": "a"}\n{"source": 3}')
    put(store, "lists/empty.jsonl", b"\n\n")
    put(store, "lists/foreign.jsonl", f'{{"source": "s3://{OTHER}/a"}}'.encode())
    with pytest.raises(PermanentError) as failure:
        make_service().plan("job-1", parse_job(json.dumps({"files_from": files_from})), SENT)
    assert failure.value.code is code
    assert reason in failure.value.message


@pytest.mark.parametrize(
    ("name", "file_name", "disposition"),
    [
        ("Wedding 2026.zip", "Wedding 2026.zip", 'attachment; filename="Wedding 2026.zip"'),
        (
            "Mariage été",
            "Mariage été.zip",
            'attachment; filename="Mariage _t_.zip"; '
            "filename*=UTF-8''Mariage%20%C3%A9t%C3%A9.zip",
        ),
        ("../../evil", "evil.zip", 'attachment; filename="evil.zip"'),
        ("albums/2026", "albums_2026.zip", 'attachment; filename="albums_2026.zip"'),
        ("\u202egpj.exe", "gpj.exe.zip", 'attachment; filename="gpj.exe.zip"'),
        ("....", "download-2026-11-27.zip", 'attachment; filename="download-2026-11-27.zip"'),
    ],
)
def test_an_archive_name_sets_the_key_and_the_download_name(
    store: MemoryObjectStore,
    make_service: ServiceFactory,
    name: str,
    file_name: str,
    disposition: str,
) -> None:
    put(store, "a.png", b"a")
    service = make_service()
    request = parse_job(json.dumps({"files": [{"source": "a.png"}], "archive": {"name": name}}))
    plan = service.plan("job-1", request, SENT)
    assert plan.archive == ObjectRef(DESTINATION, f"job-1/{file_name}")
    service.build(plan)
    assert store.headers[plan.archive].content_disposition == disposition


def test_a_1_gib_list_is_refused_by_its_size_without_being_read(
    store: MemoryObjectStore, make_service: ServiceFactory
) -> None:
    ref = ObjectRef(SOURCE, "lists/1gib.jsonl")
    store.add(ref, SyntheticBody(1024**3))
    fetched: list[int] = []
    fetch = store.fetch

    def counting(ref: ObjectRef, start: int, length: int, etag: str | None = None) -> bytes:
        fetched.append(length)
        return bytes(fetch(ref, start, length, etag))

    store.fetch = counting  # type: ignore[method-assign]
    with pytest.raises(InvalidPayload, match="the limit is 67,108,864"):
        make_service().plan("job-1", parse_job('{"files_from": "lists/1gib.jsonl"}'), SENT)
    assert fetched == []


def test_a_path_too_long_names_the_item_it_comes_from(
    store: MemoryObjectStore, make_service: ServiceFactory
) -> None:
    put(store, "a.png", b"a")
    put(store, "deep/a.txt", b"short")  # entry 1; the long one is entry 2, of item 1
    put(store, f"deep/{'d' * 250}/{'e' * 250}/{'f' * 250}/{'h' * 250}/x.txt", b"x")
    request = parse_job(
        json.dumps({"files": [{"source": "a.png"}, {"prefix": "deep/", "destination": "g" * 300}]})
    )
    with pytest.raises(InvalidPayload, match=r"^files\.1: its path"):
        make_service().plan("job-1", request, SENT)
