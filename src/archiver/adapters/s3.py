"""S3 adapter for the ObjectStore port."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Final, cast

from archiver.adapters.errors import translated
from archiver.domain.errors import TransientError
from archiver.domain.job import ObjectRef
from archiver.domain.ports import Buffer, ObjectHeaders, ObjectInfo

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

# Every part carries a CRC-32 that S3 verifies; the completed object gets a composite checksum.
CHECKSUM: Final = "CRC32"


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


class S3ObjectStore:
    def __init__(self, client: S3Client) -> None:
        self._client = client

    def stat(self, ref: ObjectRef) -> ObjectInfo:
        with translated(str(ref)):
            head = self._client.head_object(Bucket=ref.bucket, Key=ref.key)
        return ObjectInfo(ref, head["ContentLength"], head.get("ETag"))

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
        data = bytearray(length)  # filled in place: no list of chunks joined at the end
        view = memoryview(data)
        filled = 0
        with translated(str(ref)):
            body: Any = self._client.get_object(**arguments)["Body"]  # stubs lack readinto(buffer)
            try:
                while filled < length and (count := body.readinto(view[filled:])):
                    filled += count
            finally:
                body.close()
        if filled != length:
            raise TransientError(f"{ref}: {filled} bytes at {start}, expected {length}")
        return data

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

    def upload_part(self, number: int, data: Buffer) -> None:
        with translated(f"{self._ref} part {number}"):
            response = self._client.upload_part(
                Bucket=self._ref.bucket,
                Key=self._ref.key,
                UploadId=self.upload_id,
                PartNumber=number,
                Body=cast(bytes, data),  # botocore takes a bytearray as is; its stubs do not say so
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
