"""Every job is answered, whatever it holds: generated hostile bodies through the real worker.

Each class the issue names (lone surrogates anywhere, deep or huge metadata, non-standard
numbers, over-long paths, drive letters, dot segments, SNS envelopes around all of these) is
generated, handled by `Worker.handle` against the fakes, and must end with exactly one
notification that SQS would accept and the job deleted: never a crash, never silence.
"""

from __future__ import annotations

import json
import threading
import unicodedata
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archiver.adapters.memory import MemoryObjectStore
from archiver.adapters.memory_queue import MemoryNotifier, MemoryQueue
from archiver.adapters.memory_secrets import MemorySecretStore
from archiver.app.jobs.service import ArchiveService
from archiver.app.worker.loop import Worker
from archiver.app.worker.outcomes import Outcome
from archiver.domain.document import MAX_METADATA_BYTES
from archiver.domain.job import ObjectRef
from archiver.domain.naming import MAX_PATH_BYTES
from archiver.domain.notifications import MAX_NOTIFICATION_BYTES, JobSucceeded
from archiver.domain.plan import ArchivePolicy
from archiver.domain.ports import ReceivedMessage
from tests.support import build_options, link_options, make_worker
from tests.zipcheck import contents

SOURCE, DESTINATION = "source-images", "zip-storage"
KEYS = ["dir/a.png", "dir/b.txt", "C:/x.txt", "dir/e\u0301.txt"]

surrogates = st.sampled_from(["\ud800", "\udbff", "\udc00", "\udfff"])
hostile_text = st.one_of(
    st.text(max_size=12),
    st.builds(lambda a, s, b: a + s + b, st.text(max_size=4), surrogates, st.text(max_size=4)),
    st.sampled_from(
        [
            "../C:/Windows",
            "/C:/x",
            "C:D:/x",
            "e\u202e\u0301",
            "a/./b",
            "..",
            "\\\\server\\share\\x",
            "\ufffe\uffff",
            "\x00\x1f",
            "x" * 300,
            "/".join(["d" * 250] * 5),
        ]
    ),
)
sources = st.one_of(
    st.sampled_from(KEYS),
    st.sampled_from(["dir/../dir/a.png", "./dir/a.png", "s3://other/x", "s3://Bad/x", ""]),
    hostile_text,
)
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), hostile_text),
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(hostile_text, children, max_size=3)
    ),
    max_leaves=12,
)


def _nested(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = {"d": value}
    return value


metadata = st.one_of(
    st.dictionaries(hostile_text, json_values, max_size=4),
    st.integers(1, 400).map(lambda depth: {"deep": _nested(depth)}),
    st.integers(MAX_METADATA_BYTES - 64, MAX_METADATA_BYTES + 64).map(
        lambda size: {"blob": "x" * size}
    ),
)
files = st.lists(
    st.fixed_dictionaries(
        {"source": sources}, optional={"destination": hostile_text, "name": hostile_text}
    ),
    max_size=4,
)


@st.composite
def bodies(draw: st.DrawFn) -> str:
    document: Any = {"files": draw(st.one_of(files, st.just(3))), "metadata": draw(metadata)}
    text = json.dumps(document)  # ASCII: surrogates travel as \ud800 escapes, as over SQS
    if draw(st.booleans()):
        literal = draw(st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999", "-1e400"]))
        text = text.replace('"metadata": {', f'"metadata": {{"n": {literal}, ', 1)
    if draw(st.booleans()):
        text = json.dumps({"Type": "Notification", "Message": text, "Subject": "\ud800"})
    return text


def _worker(max_receives: int | None) -> tuple[Worker, MemoryNotifier, MemoryObjectStore]:
    store = MemoryObjectStore()
    store.create_bucket(DESTINATION)
    for key in KEYS:
        store.add(ObjectRef(SOURCE, key), key.encode("utf-8", "surrogatepass"))
    notifier = MemoryNotifier()
    service = ArchiveService(
        store,
        MemorySecretStore(),
        ArchivePolicy(SOURCE, DESTINATION),
        build_options(),
        link_options(base_url="https://cdn.example.com/"),
    )
    worker = make_worker(
        MemoryQueue(), notifier, service, wait_seconds=0, max_receives=max_receives
    )
    return worker, notifier, store


def _delivered(body: str) -> ReceivedMessage:
    return ReceivedMessage("job-1", body, "receipt", datetime(2026, 11, 28, tzinfo=UTC), 1)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bodies())
def test_every_generated_job_is_answered_once_and_deleted(body: str) -> None:
    # Every delivery is the last: a crash would be answered too, as internal_error, and fail below.
    worker, notifier, store = _worker(max_receives=1)
    message = _delivered(body)

    outcome = worker.handle(message, threading.Event())

    assert outcome in (Outcome.SUCCEEDED, Outcome.FAILED)
    [sent] = notifier.bodies
    assert len(sent.encode("utf-8")) <= MAX_NOTIFICATION_BYTES
    assert "\ufffe" not in sent
    assert "\uffff" not in sent
    notification = json.loads(sent)
    if isinstance(notifier.published[0], JobSucceeded):
        document = json.loads(body)
        document = json.loads(document["Message"]) if "Message" in document else document
        assert notification["metadata"] == document["metadata"]  # echoed exactly
        archive = store.objects[ObjectRef(DESTINATION, notification["archive"]["key"])]
        assert isinstance(archive, bytes)
        for name in contents(archive):
            assert unicodedata.is_normalized("NFC", name)
            assert len(name.encode("utf-8")) <= MAX_PATH_BYTES
            assert not name.startswith("/")
            assert ":" not in name.split("/", 1)[0][:2]
            assert ".." not in name.split("/")
    else:  # a planned failure, never a crash given up on
        assert notification["error"]["code"] != "internal_error"


def test_a_lone_surrogate_in_an_invalid_jobs_metadata_still_gets_its_failure() -> None:
    worker, notifier, _ = _worker(max_receives=None)
    assert (
        worker.handle(_delivered(r'{"files":3,"metadata":{"x":"\ud800"}}'), threading.Event())
        is Outcome.FAILED
    )
    [sent] = notifier.published
    assert sent.status == "failed"
    assert sent.error.code == "invalid_payload"
    assert sent.metadata is None  # it cannot be echoed, so it is not


def test_metadata_near_the_message_limit_is_refused_not_built_and_never_announced() -> None:
    worker, notifier, store = _worker(max_receives=None)
    body = json.dumps({"files": [{"source": "dir/a.png"}], "metadata": {"x": "y" * 1_000_000}})
    assert worker.handle(_delivered(body), threading.Event()) is Outcome.FAILED
    [sent] = notifier.published
    assert sent.status == "failed"
    assert "metadata" in sent.error.message
    assert "256" in sent.error.message
    assert not any(ref.bucket == DESTINATION for ref in store.objects)
