"""S3 adapter for the ObjectStore port."""

from __future__ import annotations

import io
import threading
from typing import IO, TYPE_CHECKING, Any, Final, cast

from botocore.exceptions import ClientError

from archiver.adapters.errors import error_code, translated
from archiver.domain.errors import TransientError
from archiver.domain.job import ObjectRef
from archiver.domain.ports import Buffer, ObjectHeaders, ObjectInfo

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

# Every part carries a CRC-32 that S3 verifies; the completed object gets a composite checksum.
CHECKSUM: Final = "CRC32"
READ_SLICE = 256 * 1024


def _put_arguments(ref: ObjectRef, headers: ObjectHeaders) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "Bucket": ref.bucket,
        "Key": ref.key,
        "ContentType": headers.content_type,
        "Metadata": dict(headers.metadata),
    }
    if headers.content_disposition:
        arguments["ContentDisposition"] = headers.content_disposition
    return arguments


def _read_exactly(body: Any, length: int, ref: ObjectRef) -> bytearray:
    """Fill one preallocated buffer (no chunks joined at the end); raise if the body is short."""
    data = bytearray(length)
    view = memoryview(data)
    filled = 0
    try:
        # urllib3 reads each request into a temporary first: ask for slices.
        while filled < length and (count := body.readinto(view[filled : filled + READ_SLICE])):
            filled += count
    finally:
        body.close()
    if filled != length:
        raise TransientError(f"{ref}: {filled} of {length} bytes (cut short), will retry")
    return data


class PartBody(io.RawIOBase):
    """A part's bytes as the seekable file botocore reads, without copying them.

    Over HTTPS botocore sends the checksum in a trailer and streams the body for it, wrapping
    bytes in `io.BytesIO`, which copies a bytearray: every part in flight would be held twice.
    Over HTTP (a local endpoint) it signs and checksums the bytes in place, and sends them in
    one call, so there they go as they are.
    """

    def __init__(self, data: Buffer) -> None:
        super().__init__()
        self._view = memoryview(data).cast("B")
        self._position = 0

    def __len__(self) -> int:
        return len(self._view)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        target = memoryview(buffer).cast("B")
        count = min(len(target), len(self._view) - self._position)
        target[:count] = self._view[self._position : self._position + count]
        self._position += count
        return count

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: len(self._view)}
        self._position = max(0, base[whence] + offset)
        return self._position

    def tell(self) -> int:
        return self._position


class S3ObjectStore:
    def __init__(self, client: S3Client) -> None:
        self._client = client

    def stat(self, ref: ObjectRef) -> ObjectInfo:
        with translated(str(ref)):
            head = self._client.head_object(Bucket=ref.bucket, Key=ref.key)
        return ObjectInfo(ref, head["ContentLength"], head.get("ETag"))

    def probe(self, ref: ObjectRef, length: int) -> tuple[ObjectInfo, Buffer]:
        """One ranged GET sizes a source and brings its first bytes: one request per small file."""
        with translated(str(ref)):
            try:
                response = self._client.get_object(
                    Bucket=ref.bucket, Key=ref.key, Range=f"bytes=0-{length - 1}"
                )
            except ClientError as error:
                if error_code(error) not in ("InvalidRange", "416"):
                    raise
                return self.stat(ref), b""  # an empty object has no byte 0 to range over
            received = response["ContentLength"]
            total = int(response.get("ContentRange", f"/{received}").rsplit("/", 1)[1])
            data = _read_exactly(response["Body"], received, ref)
        return ObjectInfo(ref, total, response.get("ETag")), data

    def fetch(self, ref: ObjectRef, start: int, length: int, etag: str | None = None) -> Buffer:
        if length == 0:
            return b""
        arguments: dict[str, Any] = {
            "Bucket": ref.bucket,
            "Key": ref.key,
            "Range": f"bytes={start}-{start + length - 1}",
        }
        if etag:
            arguments["IfMatch"] = etag
        with translated(str(ref)):
            return _read_exactly(self._client.get_object(**arguments)["Body"], length, ref)

    def put(self, ref: ObjectRef, data: bytes, headers: ObjectHeaders) -> None:
        with translated(str(ref)):
            self._client.put_object(Body=data, **_put_arguments(ref, headers))

    def start_upload(self, ref: ObjectRef, headers: ObjectHeaders) -> S3MultipartUpload:
        with translated(str(ref)):
            created = self._client.create_multipart_upload(
                ChecksumAlgorithm=CHECKSUM, **_put_arguments(ref, headers)
            )
        return S3MultipartUpload(self._client, ref, created["UploadId"])

    def presigned_url(self, ref: ObjectRef, expires_in: int) -> str:
        return self._client.generate_presigned_url(
            "get_object", Params={"Bucket": ref.bucket, "Key": ref.key}, ExpiresIn=expires_in
        )

    def abort_uploads(self, ref: ObjectRef) -> int:
        with translated(str(ref)):
            listing = self._client.list_multipart_uploads(Bucket=ref.bucket, Prefix=ref.key)
            stale = [up for up in listing.get("Uploads", []) if up.get("Key") == ref.key]
            for upload in stale:
                S3MultipartUpload(self._client, ref, upload["UploadId"]).abort()
        return len(stale)


class S3MultipartUpload:
    """Parts may be uploaded from several threads and in any order."""

    def __init__(self, client: S3Client, ref: ObjectRef, upload_id: str) -> None:
        self._client = client
        self._ref = ref
        self.upload_id = upload_id
        self._parts: dict[int, CompletedPartTypeDef] = {}
        self._lock = threading.Lock()
        self._as_file = client.meta.endpoint_url.startswith("https:")  # see PartBody

    def upload_part(self, number: int, data: Buffer) -> None:
        with translated(f"{self._ref} part {number}"):
            response = self._client.upload_part(
                Bucket=self._ref.bucket,
                Key=self._ref.key,
                UploadId=self.upload_id,
                PartNumber=number,
                Body=cast(IO[bytes], PartBody(data) if self._as_file else data),
                ChecksumAlgorithm=CHECKSUM,
            )
        part: CompletedPartTypeDef = {"PartNumber": number, "ETag": response["ETag"]}
        if "ChecksumCRC32" in response:
            part["ChecksumCRC32"] = response["ChecksumCRC32"]
        with self._lock:
            self._parts[number] = part

    def complete(self) -> None:
        with self._lock:
            parts = [self._parts[number] for number in sorted(self._parts)]
        with translated(str(self._ref)):
            self._client.complete_multipart_upload(
                Bucket=self._ref.bucket,
                Key=self._ref.key,
                UploadId=self.upload_id,
                MultipartUpload={"Parts": parts},
            )

    def abort(self) -> None:
        with translated(str(self._ref)):
            self._client.abort_multipart_upload(
                Bucket=self._ref.bucket, Key=self._ref.key, UploadId=self.upload_id
            )
