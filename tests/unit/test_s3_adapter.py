"""The S3 adapter's part upload as botocore sends it to S3 (HTTPS), without a network."""

import tracemalloc
from typing import Any

import boto3
from botocore.awsrequest import AWSResponse
from botocore.config import Config

from archiver.adapters.s3 import PartBody, S3MultipartUpload
from archiver.domain.job import ObjectRef

MIB = 1024 * 1024


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
