import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from archiver.domain.errors import ErrorCode, InvalidPayload
from archiver.domain.job import ObjectRef, parse_job, salvage_metadata


def test_parses_the_documented_job() -> None:
    body = json.dumps(
        {
            "files": [
                {"source": "dir/uuid1.png", "destination": "album_1", "name": "cover.png"},
                {"source": "s3://other-bucket/dir/uuid2.png"},
            ],
            "metadata": {"user_email": "someone@example.com", "nested": {"a": [1, 2]}},
        }
    )
    job = parse_job(body)
    assert [spec.ref("source-images") for spec in job.files] == [
        ObjectRef("source-images", "dir/uuid1.png"),
        ObjectRef("other-bucket", "dir/uuid2.png"),
    ]
    assert job.files[0].destination == "album_1"
    assert job.files[0].name == "cover.png"
    assert job.metadata == {"user_email": "someone@example.com", "nested": {"a": [1, 2]}}


def test_metadata_is_optional() -> None:
    assert parse_job('{"files": [{"source": "a.png"}]}').metadata == {}


def test_unwraps_an_sns_envelope() -> None:
    inner = {"files": [{"source": "a.png"}], "metadata": {"k": "v"}}
    envelope = {"Type": "Notification", "MessageId": "x", "Message": json.dumps(inner)}
    job = parse_job(json.dumps(envelope))
    assert job.files[0].source == "a.png"
    assert job.metadata == {"k": "v"}


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("not json", "not JSON"),
        ("", "not JSON"),
        ("[1, 2]", "body"),
        ("{}", "body: files is required (or files_from)"),
        ('{"files": []}', "files: List should have at least 1 item"),
        ('{"files": [{"destination": "a"}]}', "files.0: source is required (or prefix)"),
        ('{"files": [{"source": ""}]}', "files.0.source"),
        ('{"files": [{"source": "a", "destnation": "x"}]}', "files.0.destnation"),
        ('{"files": [{"source": "https://example.com/a.png"}]}', "unsupported scheme"),
        ('{"files": [{"source": "s3://bucket-only"}]}', "key is empty"),
        ('{"files": [{"source": "s3://Bad_Bucket/key"}]}', "invalid bucket name"),
        ('{"files": [{"source": "a"}], "metadata": [1]}', "metadata"),
        ('{"files": [{"source": 5}]}', "files.0.source"),
        ('{"Type": "Notification", "Message": "{oops"}', "SNS Message is not JSON"),
        ("[" * 100_000, "not JSON"),
    ],
)
def test_rejects_bad_bodies_with_a_clear_reason(body: str, fragment: str) -> None:
    with pytest.raises(InvalidPayload) as caught:
        parse_job(body)
    assert caught.value.code == ErrorCode.INVALID_PAYLOAD
    assert fragment in caught.value.message


def test_reports_many_problems_briefly() -> None:
    body = json.dumps({"files": [{"source": 1} for _ in range(50)]})
    with pytest.raises(InvalidPayload) as caught:
        parse_job(body)
    assert "(and 45 more)" in caught.value.message


def test_key_longer_than_s3_allows_is_rejected() -> None:
    with pytest.raises(InvalidPayload, match="longer than 1024 bytes"):
        parse_job(json.dumps({"files": [{"source": "é" * 600}]}))


@pytest.mark.parametrize(
    ("body", "metadata"),
    [
        ('{"files": 3, "metadata": {"user": "u"}}', {"user": "u"}),
        ('{"metadata": "text"}', None),
        ("garbage", None),
        ('{"Type": "Notification", "Message": "{\\"metadata\\": {\\"a\\": 1}}"}', {"a": 1}),
    ],
)
def test_salvages_metadata_from_rejected_bodies(body: str, metadata: object) -> None:
    assert salvage_metadata(body) == metadata


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=20,
)
job_like = st.fixed_dictionaries(
    {},
    optional={
        "files": st.lists(
            st.fixed_dictionaries(
                {},
                optional={
                    "source": json_values | st.text(),
                    "destination": json_values,
                    "name": json_values,
                },
            ),
            max_size=4,
        )
        | json_values,
        "metadata": json_values,
        "Type": json_values,
        "Message": st.text() | json_values,
    },
)


@given(st.text() | st.binary().map(lambda raw: raw.decode("utf-8", "replace")))
def test_any_string_parses_or_raises_invalid_payload(body: str) -> None:
    try:
        parse_job(body)
    except InvalidPayload as error:  # the only exception allowed out
        rejected: InvalidPayload | None = error
    else:
        rejected = None
    assert rejected is None or rejected.code == ErrorCode.INVALID_PAYLOAD
    salvage_metadata(body)


@given(json_values | job_like)
def test_any_json_parses_or_raises_invalid_payload(document: object) -> None:
    body = json.dumps(document)
    try:
        job = parse_job(body)
    except InvalidPayload as error:  # the only exception allowed out
        reason = error.message
    else:
        reason = ""
        assert job.files
        assert all(spec.source for spec in job.files)
    assert reason or job
    metadata = salvage_metadata(body)
    assert metadata is None or isinstance(metadata, dict)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ('{"files": [{"source": "a"}], "metadata": {"x": NaN}}', "NaN is not standard JSON"),
        ('{"files": [{"source": "a"}], "metadata": {"x": -Infinity}}', "-Infinity is not standard"),
        ('{"files": [{"source": "a"}], "metadata": {"x": 1e999}}', "1e999 is out of range"),
        ('{"files": [{"source": "a\\ud800.png"}]}', "files.0.source: the text holds a lone"),
        ('{"files": [{"source": "a", "destination": "\\udc00"}]}', "files.0.destination"),
        ('{"files": [{"source": "a"}], "metadata": {"\\ud800": 1}}', "metadata: a key holds"),
        ('{"files": [{"source": "a"}], "metadata": {"k": ["\\udfff"]}}', "metadata.k.0: the text"),
        ('{"files": [{"source": "dir/../other"}]}', "'.' or '..' segment"),
        ('{"files": [{"source": "./a.png"}]}', "'.' or '..' segment"),
        ('{"files": [{"source": "s3://b-1/a/.."}]}', "'.' or '..' segment"),
    ],
)
def test_refuses_what_it_could_not_echo_or_read_safely(body: str, fragment: str) -> None:
    with pytest.raises(InvalidPayload) as raised:
        parse_job(body)
    assert fragment in raised.value.message


def test_a_surrogate_inside_an_sns_envelope_is_refused_where_it_is() -> None:
    inner = r'{"files": [{"source": "a", "name": "\ud800.png"}]}'
    with pytest.raises(InvalidPayload, match=r"files\.0\.name: the text holds a lone"):
        parse_job(json.dumps({"Type": "Notification", "Message": inner}))


def test_metadata_depth_is_bounded_and_named() -> None:
    deep: object = 1
    for _ in range(300):
        deep = {"a": deep}
    with pytest.raises(InvalidPayload, match=r"metadata: .*more than 32 levels"):
        parse_job(json.dumps({"files": [{"source": "a"}], "metadata": deep}))
    shallow: object = 1
    for _ in range(31):
        shallow = {"a": shallow}
    assert parse_job(json.dumps({"files": [{"source": "a"}], "metadata": shallow}))


def test_metadata_is_kept_exactly_as_sent() -> None:
    metadata = {"big": 2**80, "tiny": 5e-324, "neg_zero": -0.0, "text": "\uffff\x00é", "l": [None]}
    job = parse_job(json.dumps({"files": [{"source": "a"}], "metadata": metadata}))
    assert json.loads(json.dumps(job.metadata)) == metadata


@pytest.mark.parametrize(
    "body",
    [
        r'{"files": 3, "metadata": {"x": "\ud800"}}',
        '{"files": 3, "metadata": {"x": NaN}}',
        '{"files": 3, "metadata": ' + '{"a": ' * 40 + "1" + "}" * 40 + "}",
    ],
)
def test_metadata_that_could_not_be_echoed_is_not_salvaged(body: str) -> None:
    assert salvage_metadata(body) is None
