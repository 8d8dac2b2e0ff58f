"""A multipart upload to S3: parts uploaded from memory or copied from other objects."""

from __future__ import annotations

import io
import threading
from typing import IO, TYPE_CHECKING, Any, Final, cast

from botocore.exceptions import BotoCoreError, ClientError

from archiver.adapters.errors import classify, error_code, translated
from archiver.domain.checksum import crc32_text, crc32_value
from archiver.domain.errors import CopyRefused, TransientError
from archiver.domain.job import ObjectRef
from archiver.domain.ports import Buffer

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

# Every part carries a CRC-32 that S3 verifies, and so does the completed object (full-object).
CHECKSUM: Final = "CRC32"
# UploadPartCopy answers meaning "this store will not copy for us": stream instead.
COPY_REFUSALS: Final = frozenset({"AccessDenied", "NotImplemented", "InvalidRequest", "501"})


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


class S3MultipartUpload:
    """Parts may be uploaded from several threads and in any order."""

    def __init__(
        self, client: S3Client, ref: ObjectRef, upload_id: str, payer: dict[str, Any] | None = None
    ) -> None:
        """`payer`: what a copy from a Requester Pays source adds (`RequestPayer`)."""
        self._client = client
        self._payer = payer or {}
        self._ref = ref
        self.upload_id = upload_id
        self._parts: dict[int, CompletedPartTypeDef] = {}
        self._lock = threading.Lock()
        self._as_file = client.meta.endpoint_url.startswith("https:")  # see PartBody

    def uploaded(self, number: int, etag: str, crc32: str | None) -> None:
        """Part `number` is already in the upload (ListParts said so): completing names it."""
        part: CompletedPartTypeDef = {"PartNumber": number, "ETag": etag}
        if crc32 is not None:
            part["ChecksumCRC32"] = crc32
        with self._lock:
            self._parts[number] = part

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

    def copy_part(
        self, number: int, source: ObjectRef, start: int, length: int, etag: str | None
    ) -> int | None:
        arguments: dict[str, Any] = {
            "Bucket": self._ref.bucket,
            "Key": self._ref.key,
            "UploadId": self.upload_id,
            "PartNumber": number,
            "CopySource": {"Bucket": source.bucket, "Key": source.key},
            "CopySourceRange": f"bytes={start}-{start + length - 1}",
            **self._payer,
        }
        if etag:
            arguments["CopySourceIfMatch"] = etag  # a replaced source fails, never mixes
        try:
            result = self._client.upload_part_copy(**arguments)["CopyPartResult"]
        except ClientError as error:
            code = error_code(error)
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in COPY_REFUSALS or status == 501:
                raise CopyRefused(f"{source} into {self._ref}: {code or status}") from error
            if code == "NoSuchUpload":  # ours, not the source's
                raise TransientError(f"{self._ref} part {number}: {code}") from error
            raise classify(error, str(source)) from error
        except BotoCoreError as error:
            raise TransientError(f"{self._ref} part {number}: {error}") from error
        part: CompletedPartTypeDef = {"PartNumber": number, "ETag": result["ETag"]}
        if "ChecksumCRC32" in result:
            part["ChecksumCRC32"] = result["ChecksumCRC32"]
        with self._lock:
            self._parts[number] = part
        # The copied range's own CRC-32: S3 computes it for an upload created with CRC32.
        return crc32_value(result["ChecksumCRC32"]) if "ChecksumCRC32" in result else None

    def complete(self, crc32: int) -> None:
        with self._lock:
            parts = [self._parts[number] for number in sorted(self._parts)]
        with translated(str(self._ref)):
            self._client.complete_multipart_upload(
                Bucket=self._ref.bucket,
                Key=self._ref.key,
                UploadId=self.upload_id,
                MultipartUpload={"Parts": parts},
                ChecksumCRC32=crc32_text(crc32),  # verified by S3 against the assembled object
                ChecksumType="FULL_OBJECT",
            )

    def abort(self) -> None:
        with translated(str(self._ref)):
            self._client.abort_multipart_upload(
                Bucket=self._ref.bucket, Key=self._ref.key, UploadId=self.upload_id
            )
