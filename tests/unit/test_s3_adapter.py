"""The S3 adapter as botocore drives it, without a network: part uploads, cut bodies."""

import io
import tracemalloc
import zlib
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.response import StreamingBody
from botocore.stub import Stubber
from urllib3.exceptions import ProtocolError as URLLib3ProtocolError

from archiver.adapters.errors import classify
from archiver.adapters.s3 import S3ObjectStore
from archiver.adapters.s3_multipart import PartBody, S3MultipartUpload
from archiver.domain.checksum import crc32_text
from archiver.domain.errors import (
    CopyRefused,
    ErrorCode,
    ObjectUnavailable,
    TransientError,
    Unavailable,
)
from archiver.domain.job import ObjectRef
from archiver.domain.policy import source_failure
from tests.support import MIB


class CannedResponse:
    """What urllib3 would have returned: enough for botocore to parse an empty 200."""

    def __init__(self) -> None:
        self.headers: dict[str, str] = {}

    def stream(self, *args: Any, **kwargs: Any) -> Any:
        return iter(())


def decode_aws_chunked(body: bytearray) -> bytes:
    """The payload of an aws-chunked body: `size;\r\ndata\r\n` ... `0\r\ntrailers`."""
    payload, rest = b"", body
    while True:
        size_line, rest = rest.split(b"\r\n", 1)
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            return payload
        payload, rest = payload + rest[:size], rest[size + 2 :]


def test_a_part_goes_to_s3_whole_and_is_not_copied_on_the_way() -> None:
    client = boto3.client(
        "s3",
        endpoint_url="https://s3.example.invalid",  # HTTPS: the checksum goes in a trailer
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 1}),
    )
    sent: list[bytearray] = []

    def capture(request: Any, **kwargs: Any) -> AWSResponse:
        body, received = request.body, bytearray()
        body.seek(0)  # as botocore does before a retry
        while chunk := body.read(64 * 1024):  # as the connection sends it
            received += chunk
        sent.append(received)
        response = AWSResponse(request.url, 200, {"ETag": '"e"'}, CannedResponse())
        response._content = b""  # a canned response, read by botocore's parser
        return response

    client.meta.events.register("before-send.s3.UploadPart", capture)
    part = bytearray(b"\x5a" * (6 * MIB))
    upload = S3MultipartUpload(client, ObjectRef("archives", "job/archive.zip"), "upload-1")
    tracemalloc.start()
    try:
        upload.upload_part(1, part)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    [body] = sent
    assert decode_aws_chunked(body) == part
    assert b"x-amz-checksum-crc32:" in body
    assert peak - len(body) < len(part) // 2  # what was sent, plus chunks: no second part


def test_part_body_reads_and_seeks_like_a_file() -> None:
    body = PartBody(bytearray(b"0123456789"))
    assert len(body) == 10
    assert body.read(4) == b"0123"
    buffer = bytearray(4)
    assert body.readinto(buffer) == 4
    assert buffer == b"4567"
    assert body.read() == b"89"
    assert body.read(1) == b""
    assert body.seek(-3, 2) == 7
    assert body.read() == b"789"
    assert body.seek(0) == 0
    assert body.tell() == 0


class BrokenStream(io.RawIOBase):
    """A response body that breaks off after `cut` bytes, as a reset connection does."""

    def __init__(self, data: bytes, cut: int | None) -> None:
        super().__init__()
        self._data, self._cut, self._position = data, cut, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._cut is not None and self._position >= self._cut:
            raise URLLib3ProtocolError("Connection broken: IncompleteRead")
        end = len(self._data) if self._cut is None else self._cut
        count = min(len(buffer), end - self._position)
        buffer[:count] = self._data[self._position : self._position + count]
        self._position += count
        return count


def _ranged(data: bytes, start: int, cut: int | None) -> dict[str, Any]:
    body = data[start:]
    return {
        "Body": StreamingBody(BrokenStream(body, cut), len(body)),
        "ContentLength": len(body),
        "ContentRange": f"bytes {start}-{len(data) - 1}/{len(data)}",
        "ETag": '"v1"',
    }


def _client() -> Any:
    return boto3.client(
        "s3",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def test_a_body_cut_mid_transfer_resumes_from_its_first_missing_byte_on_the_same_version() -> None:
    data = bytes(range(256)) * 4096  # 1 MiB
    client = _client()
    naps: list[float] = []
    store = S3ObjectStore(client, sleep=naps.append)
    with Stubber(client) as stub:
        stub.add_response(
            "get_object",
            _ranged(data, 0, cut=300_000),
            {"Bucket": "b", "Key": "k", "Range": f"bytes=0-{len(data) - 1}", "IfMatch": '"v1"'},
        )
        stub.add_response(
            "get_object",
            _ranged(data, 300_000, cut=400_000),
            {
                "Bucket": "b",
                "Key": "k",
                "Range": f"bytes=300000-{len(data) - 1}",
                "IfMatch": '"v1"',
            },
        )
        stub.add_response(
            "get_object",
            _ranged(data, 700_000, cut=None),
            {
                "Bucket": "b",
                "Key": "k",
                "Range": f"bytes=700000-{len(data) - 1}",
                "IfMatch": '"v1"',
            },
        )
        fetched = store.fetch(ObjectRef("b", "k"), 0, len(data), '"v1"')
        stub.assert_no_pending_responses()
    assert bytes(fetched) == data
    assert naps == [0.25, 0.5]


def test_a_body_that_keeps_breaking_gives_the_job_back_after_a_bounded_number_of_resumes() -> None:
    data = b"x" * 1000
    client = _client()
    naps: list[float] = []
    store = S3ObjectStore(client, sleep=naps.append)
    with Stubber(client) as stub:
        for attempt in range(5):
            start = attempt * 10
            stub.add_response("get_object", _ranged(data, start, cut=10))
        with pytest.raises(TransientError, match="4 resumes did not finish it"):
            store.fetch(ObjectRef("b", "k"), 0, len(data))
        stub.assert_no_pending_responses()
    assert naps == [0.25, 0.5, 1.0, 2.0]


def test_a_probe_cut_short_resumes_too() -> None:
    data = bytes(range(256)) * 100
    client = _client()
    store = S3ObjectStore(client, sleep=lambda _: None)
    with Stubber(client) as stub:
        stub.add_response("get_object", _ranged(data, 0, cut=5000))
        stub.add_response(
            "get_object",
            _ranged(data, 5000, cut=None),
            {"Bucket": "b", "Key": "k", "Range": f"bytes=5000-{len(data) - 1}", "IfMatch": '"v1"'},
        )
        info, first = store.probe(ObjectRef("b", "k"), len(data))
    assert info.size == len(data)
    assert bytes(first) == data


def stubbed() -> tuple[Any, Stubber]:
    client = boto3.client(
        "s3",
        endpoint_url="http://127.0.0.1:9",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    return client, Stubber(client)


REF = ObjectRef("src", "clip.mp4")


def test_a_full_object_checksum_is_taken_as_it_is() -> None:
    client, stub = stubbed()
    stub.add_response(
        "head_object",
        {
            "ContentLength": 10,
            "ETag": '"a-2"',
            "ChecksumCRC32": crc32_text(0xCAFE),
            "ChecksumType": "FULL_OBJECT",
        },
        {"Bucket": "src", "Key": "clip.mp4", "ChecksumMode": "ENABLED", "IfMatch": '"a-2"'},
    )
    with stub:
        assert S3ObjectStore(client).checksum(REF, '"a-2"') == 0xCAFE


def test_a_composite_checksum_is_rebuilt_from_every_page_of_parts() -> None:
    client, stub = stubbed()
    pieces = [b"a" * 7, b"b" * 5, b"c" * 3]
    stub.add_response(
        "head_object",
        {
            "ContentLength": 15,
            "ETag": '"e-3"',
            "ChecksumCRC32": "AAAAAA==-3",
            "ChecksumType": "COMPOSITE",
        },
    )
    for marker, chunk, truncated in ((0, pieces[:2], True), (2, pieces[2:], False)):
        first = 1 + marker
        parts = [
            {"PartNumber": first + n, "Size": len(p), "ChecksumCRC32": crc32_text(zlib.crc32(p))}
            for n, p in enumerate(chunk)
        ]
        listing = {"TotalPartsCount": 3, "IsTruncated": truncated, "Parts": parts}
        if truncated:
            listing["NextPartNumberMarker"] = 2
        stub.add_response(
            "get_object_attributes",
            {"ETag": "e-3", "ObjectParts": listing},
            {
                "Bucket": "src",
                "Key": "clip.mp4",
                "ObjectAttributes": ["ObjectParts", "ETag"],
                "MaxParts": 1000,
                "PartNumberMarker": marker,
            },
        )
    with stub:
        assert S3ObjectStore(client).checksum(REF, '"e-3"') == zlib.crc32(b"".join(pieces))


@pytest.mark.parametrize(
    "head",
    [
        {"ContentLength": 15, "ETag": '"e"'},  # no checksum stored
        {
            "ContentLength": 15,
            "ETag": '"e-3"',
            "ChecksumCRC32": crc32_text(1),
        },  # untyped, multipart
    ],
)
def test_no_checksum_or_an_unexplained_one_means_reading_the_source(head: dict[str, Any]) -> None:
    client, stub = stubbed()
    stub.add_response("head_object", head)
    if "ChecksumCRC32" in head:  # the parts are asked for, and the store has none to give
        stub.add_response("get_object_attributes", {"ETag": "e-3", "ObjectParts": {}})
    with stub:
        assert S3ObjectStore(client).checksum(REF, None) is None


def test_parts_that_do_not_add_up_or_a_forbidden_listing_mean_reading_the_source() -> None:
    client, stub = stubbed()
    composite = {
        "ContentLength": 15,
        "ETag": '"e-2"',
        "ChecksumCRC32": "x-2",
        "ChecksumType": "COMPOSITE",
    }
    parts = [{"PartNumber": 1, "Size": 7, "ChecksumCRC32": crc32_text(1)}]
    stub.add_response("head_object", composite)
    stub.add_response(
        "get_object_attributes",
        {"ETag": "e-2", "ObjectParts": {"TotalPartsCount": 1, "Parts": parts}},
    )
    stub.add_response("head_object", composite)
    stub.add_client_error("get_object_attributes", "AccessDenied", http_status_code=403)
    with stub:
        assert S3ObjectStore(client).checksum(REF, None) is None
        assert S3ObjectStore(client).checksum(REF, None) is None


@pytest.mark.parametrize(
    ("code", "status", "raised"),
    [
        ("AccessDenied", 403, CopyRefused),
        ("NotImplemented", 501, CopyRefused),
        ("InvalidRequest", 400, CopyRefused),
        ("PreconditionFailed", 412, TransientError),
        ("NoSuchUpload", 404, TransientError),
        ("NoSuchKey", 404, ObjectUnavailable),
        ("SlowDown", 503, TransientError),
    ],
)
def test_a_copy_failure_says_whose_it_is(code: str, status: int, raised: type[Exception]) -> None:
    client, stub = stubbed()
    stub.add_client_error("upload_part_copy", code, http_status_code=status)
    upload = S3MultipartUpload(client, ObjectRef("dst", "a.zip"), "upload-1")
    with stub, pytest.raises(raised) as failure:
        upload.copy_part(2, REF, 100, 6 * MIB, '"e"')
    if raised is ObjectUnavailable:
        assert "clip.mp4" in str(failure.value)


def test_a_copy_part_is_a_range_pinned_to_the_etag() -> None:
    client, stub = stubbed()
    stub.add_response(
        "upload_part_copy",
        {"CopyPartResult": {"ETag": '"p"', "ChecksumCRC32": crc32_text(5)}},
        {
            "Bucket": "dst",
            "Key": "a.zip",
            "UploadId": "upload-1",
            "PartNumber": 2,
            "CopySource": {"Bucket": "src", "Key": "clip.mp4"},
            "CopySourceRange": "bytes=100-199",
            "CopySourceIfMatch": '"e"',
        },
    )
    with stub:
        upload = S3MultipartUpload(client, ObjectRef("dst", "a.zip"), "upload-1")
        upload.copy_part(2, REF, 100, 100, '"e"')


@pytest.mark.parametrize("write", [False, True])
@pytest.mark.parametrize(
    ("head_status", "raised"),
    [(None, None), ("404", ObjectUnavailable), ("403", TransientError), ("503", TransientError)],
)
def test_a_bucket_check_without_an_error_code_asks_head_bucket(
    write: bool, head_status: str | None, raised: type[Exception] | None
) -> None:
    """A bare 404 (the error document lost) is no proof the bucket is missing: HeadBucket's
    status decides; when it cannot (forbidden, throttled), the check is retried."""
    client, stub = stubbed()
    operation = "list_multipart_uploads" if write else "get_object"
    stub.add_client_error(operation, service_error_code="404", http_status_code=404)
    if head_status is None:
        stub.add_response("head_bucket", {}, {"Bucket": "src"})
    else:
        status = int(head_status)
        stub.add_client_error(
            "head_bucket", service_error_code=head_status, http_status_code=status
        )
    store = S3ObjectStore(client)
    with stub:
        if raised is None:
            store.check_bucket("src", write=write)
        else:
            with pytest.raises(raised):
                store.check_bucket("src", write=write)
        stub.assert_no_pending_responses()


def test_an_archived_source_is_named_as_archived_not_unreadable() -> None:
    """S3 answers a GET of an object in a Glacier class or archive tier with InvalidObjectState
    (403): the failure says it needs a restore."""
    refused = ClientError(
        {
            "Error": {"Code": "InvalidObjectState", "Message": "not valid for the storage class"},
            "ResponseMetadata": {"HTTPStatusCode": 403},
        },
        "GetObject",
    )
    archived = classify(refused, "s3://photos/2019/raw.cr2")
    assert isinstance(archived, ObjectUnavailable)
    assert archived.reason is Unavailable.ARCHIVED
    failure = source_failure([archived])
    assert failure.code is ErrorCode.SOURCE_UNREADABLE  # the published code stays
    assert "1 archived, to be restored before they can be read" in failure.message
    assert failure.sources == ["s3://photos/2019/raw.cr2"]


def _parts(numbers: range) -> list[dict[str, Any]]:
    return [
        {"PartNumber": n, "ETag": f'"e{n}"', "Size": 5 * MIB, "ChecksumCRC32": crc32_text(n)}
        for n in numbers
    ]


def test_a_resumed_upload_lists_every_page_up_to_its_checkpoints_last_part() -> None:
    """ListParts answers 1,000 parts a page: every page up to part `parts` is read, the next
    is not asked for, and a part past it (sent by an attempt after the checkpoint) is not
    named at completion."""
    client = _client()
    store = S3ObjectStore(client)
    ref = ObjectRef("b", "job/archive.zip")
    first = {"Bucket": "b", "Key": "job/archive.zip", "UploadId": "u1", "PartNumberMarker": 0}
    with Stubber(client) as stub:
        stub.add_response(
            "list_parts",
            {"Parts": _parts(range(1, 1001)), "IsTruncated": True, "NextPartNumberMarker": 1000},
            first,
        )
        stub.add_response(
            "list_parts",
            {"Parts": _parts(range(1001, 2001)), "IsTruncated": True, "NextPartNumberMarker": 2000},
            {**first, "PartNumberMarker": 1000},
        )
        upload, sizes = store.resume_upload(ref, "u1", 1500)
        stub.assert_no_pending_responses()
        assert sorted(sizes) == list(range(1, 1501))
        stub.add_response(
            "complete_multipart_upload",
            {},
            {
                "Bucket": "b",
                "Key": "job/archive.zip",
                "UploadId": "u1",
                "ChecksumCRC32": crc32_text(7),
                "ChecksumType": "FULL_OBJECT",
                "MultipartUpload": {
                    "Parts": [
                        {"PartNumber": n, "ETag": f'"e{n}"', "ChecksumCRC32": crc32_text(n)}
                        for n in range(1, 1501)
                    ]
                },
            },
        )
        upload.complete(7)
        stub.assert_no_pending_responses()
