"""S3 adapter for the ObjectStore port."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import structlog
from botocore.exceptions import ClientError

from archiver.adapters.errors import error_code, translated
from archiver.adapters.s3_checksum import stored_crc32
from archiver.adapters.s3_multipart import CHECKSUM, S3MultipartUpload
from archiver.domain.backoff import backoff
from archiver.domain.errors import ObjectUnavailable, TransientError
from archiver.domain.job import ObjectRef
from archiver.domain.ports import Buffer, ObjectHeaders, ObjectInfo

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = structlog.get_logger(__name__)

READ_SLICE = 256 * 1024
RESUMES = 4
"""Times a body cut mid-transfer is asked again for the rest, before the job is given back."""
RESUME_DELAY = 0.25  # seconds, doubled at each resume
MAX_RESUME_DELAY = 4.0
NO_SUCH_KEY = "archiver-start-up-check"  # a key read to learn whether its bucket exists
UPLOAD_CHECK_KEY = NO_SUCH_KEY  # in the archive bucket: an upload made and aborted at start-up


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


class _Filling:
    """One preallocated buffer filled from one or more responses (no chunks joined at the end)."""

    def __init__(self, length: int) -> None:
        self.data = bytearray(length)
        self.filled = 0

    @property
    def missing(self) -> int:
        return len(self.data) - self.filled

    def drain(self, body: Any) -> None:
        """Read a response body into the rest of the buffer; `filled` counts even a cut one."""
        view = memoryview(self.data)
        try:
            # urllib3 reads each request into a temporary first: ask for slices.
            while self.missing and (
                count := body.readinto(view[self.filled : self.filled + READ_SLICE])
            ):
                self.filled += count
        finally:
            body.close()


class S3ObjectStore:
    def __init__(
        self,
        client: S3Client,
        sleep: Callable[[float], None] = time.sleep,
        *,
        signer: S3Client | None = None,
        requester_pays: bool = False,
    ) -> None:
        """`signer` presigns links for another endpoint than `client` talks to (the address
        users reach S3 at); signing is local, it never sends a request. `requester_pays`:
        every read, listing and copy says we pay for it, as a Requester Pays bucket requires
        (S3 refuses those requests with 403 otherwise; it ignores the word elsewhere)."""
        self._client = client
        self._signer = signer or client
        self._sleep = sleep
        self._payer: dict[str, Any] = {"RequestPayer": "requester"} if requester_pays else {}

    def stat(self, ref: ObjectRef) -> ObjectInfo:
        with translated(str(ref)):
            head = self._client.head_object(Bucket=ref.bucket, Key=ref.key, **self._payer)
        return ObjectInfo(ref, head["ContentLength"], head.get("ETag"), head.get("LastModified"))

    def probe(self, ref: ObjectRef, length: int) -> tuple[ObjectInfo, Buffer]:
        """One ranged GET sizes a source and brings its first bytes: one request per small file."""
        with translated(str(ref)):
            try:
                response = self._client.get_object(
                    Bucket=ref.bucket, Key=ref.key, Range=f"bytes=0-{length - 1}", **self._payer
                )
            except ClientError as error:
                if error_code(error) not in ("InvalidRange", "416"):
                    raise
                return self.stat(ref), b""  # an empty object has no byte 0 to range over
        received = response["ContentLength"]
        total = int(response.get("ContentRange", f"/{received}").rsplit("/", 1)[1])
        info = ObjectInfo(ref, total, response.get("ETag"), response.get("LastModified"))
        filling = _Filling(received)
        self._drain(ref, 0, filling, response["Body"], info.etag)
        return info, filling.data

    def fetch(self, ref: ObjectRef, start: int, length: int, etag: str | None = None) -> Buffer:
        if length == 0:
            return b""
        filling = _Filling(length)
        response = self._get_range(ref, start, length, etag)
        self._drain(ref, start, filling, response["Body"], etag or response.get("ETag"))
        return filling.data

    def _get_range(self, ref: ObjectRef, start: int, length: int, etag: str | None) -> Any:
        arguments: dict[str, Any] = {
            "Bucket": ref.bucket,
            "Key": ref.key,
            "Range": f"bytes={start}-{start + length - 1}",
            **self._payer,
        }
        if etag:
            arguments["IfMatch"] = etag  # every range of one source comes from one version
        with translated(str(ref)):
            return self._client.get_object(**arguments)

    def _drain(
        self, ref: ObjectRef, start: int, filling: _Filling, body: Any, etag: str | None
    ) -> None:
        """Read a body whole; one cut mid-transfer asks for the rest, not for the job again.

        botocore retries failed requests, not bodies that break off once the answer has begun:
        those resume here, from the first byte not yet read, pinned to the same version.
        """
        for resume in range(RESUMES + 1):
            try:
                with translated(str(ref)):
                    filling.drain(body)
                if not filling.missing:
                    return
                cut = TransientError(f"{ref}: the body ended {filling.missing} bytes early")
            except TransientError as error:
                cut = error
            if resume == RESUMES:
                raise TransientError(f"{cut} ({RESUMES} resumes did not finish it)") from cut
            log.info("body_resumed", source=str(ref), read=filling.filled, error=str(cut))
            self._sleep(backoff(resume, RESUME_DELAY, MAX_RESUME_DELAY))
            offset = start + filling.filled
            body = self._get_range(ref, offset, filling.missing, etag)["Body"]

    def check_bucket(self, bucket: str, *, write: bool) -> None:
        """Raise ObjectUnavailable unless the bucket exists (and, to write, takes our uploads).

        Writing checks the permission a redelivered job needs to find stale uploads, then makes
        and aborts one upload: listing proves no s3:PutObject, nor, in an SSE-KMS bucket, the
        kms:GenerateDataKey every upload needs. Reading needs no s3:ListBucket, so there a
        missing (or forbidden) key is fine, a bucket is not.
        """
        with translated(f"s3://{bucket}"):
            try:
                if write:
                    self._client.list_multipart_uploads(Bucket=bucket, MaxUploads=1)
                    self._check_upload(bucket)
                    return
                response = self._client.get_object(
                    Bucket=bucket, Key=NO_SUCH_KEY, Range="bytes=0-0", **self._payer
                )
            except ClientError as error:
                code = error_code(error)
                if not write and code in ("NoSuchKey", "AccessDenied", "InvalidRange", "416"):
                    return  # the bucket answered for a key in it
                if code.isdigit():  # a bare status: the error document was lost on the way
                    self._confirm_bucket(bucket, code)
                    return
                raise
            response["Body"].close()

    def _check_upload(self, bucket: str) -> None:
        ref = ObjectRef(bucket, UPLOAD_CHECK_KEY)
        try:
            upload = self.start_upload(ref, ObjectHeaders("application/octet-stream"))
        except ObjectUnavailable as refused:
            raise ObjectUnavailable(
                str(ref),
                refused.reason,
                f"{refused.detail}: creating an upload was refused (s3:PutObject; in an SSE-KMS "
                "bucket also kms:GenerateDataKey on its key)",
            ) from refused
        try:
            upload.abort()
        except (ObjectUnavailable, TransientError) as error:  # the lifecycle rule takes it
            log.warning("start_up_upload_not_aborted", key=str(ref), error=str(error))

    def _confirm_bucket(self, bucket: str, status: str) -> None:
        """A reply whose error code could not be read says nothing of the bucket: HeadBucket
        (whose answer is its status alone) tells a missing bucket (404) from one that is there;
        a forbidden HeadBucket (it needs s3:ListBucket) leaves the check to be retried."""
        try:
            self._client.head_bucket(Bucket=bucket)
        except ClientError as error:
            if error_code(error) in ("404", "NoSuchBucket"):
                raise
            raise TransientError(
                f"s3://{bucket}: {status} without an error code; HeadBucket: {error_code(error)}"
            ) from error

    def checksum(self, ref: ObjectRef, etag: str | None) -> int | None:
        return stored_crc32(self._client, ref, etag, self._payer)

    def list_prefix(self, prefix: ObjectRef) -> Iterator[ObjectInfo]:
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=prefix.bucket,
            Prefix=prefix.key,
            PaginationConfig={"PageSize": 1000},
            **self._payer,
        )
        with translated(str(prefix)):
            for page in pages:
                for item in page.get("Contents", []):
                    ref = ObjectRef(prefix.bucket, item["Key"])
                    yield ObjectInfo(ref, item["Size"], item.get("ETag"), item.get("LastModified"))

    def delete(self, ref: ObjectRef) -> None:
        with translated(str(ref)):
            self._client.delete_object(Bucket=ref.bucket, Key=ref.key)

    def put(self, ref: ObjectRef, data: bytes, headers: ObjectHeaders) -> None:
        with translated(str(ref)):
            self._client.put_object(Body=data, **_put_arguments(ref, headers))

    def start_upload(self, ref: ObjectRef, headers: ObjectHeaders) -> S3MultipartUpload:
        with translated(str(ref)):
            created = self._client.create_multipart_upload(
                ChecksumAlgorithm=CHECKSUM,
                ChecksumType="FULL_OBJECT",
                **_put_arguments(ref, headers),
            )
        return S3MultipartUpload(self._client, ref, created["UploadId"], self._payer)

    def resume_upload(
        self, ref: ObjectRef, upload_id: str, parts: int
    ) -> tuple[S3MultipartUpload, dict[int, int]]:
        """ListParts, every page up to part `parts`: the parts' ETags and CRC-32s are what
        completing needs."""
        upload = S3MultipartUpload(self._client, ref, upload_id, self._payer)
        sizes: dict[int, int] = {}
        marker = 0
        with translated(str(ref)):
            while True:
                page = self._client.list_parts(
                    Bucket=ref.bucket, Key=ref.key, UploadId=upload_id, PartNumberMarker=marker
                )
                for part in page.get("Parts", []):
                    if part["PartNumber"] <= parts:
                        upload.uploaded(part["PartNumber"], part["ETag"], part.get("ChecksumCRC32"))
                        sizes[part["PartNumber"]] = part["Size"]
                marker = int(page.get("NextPartNumberMarker", 0))
                if not page.get("IsTruncated") or not marker or marker >= parts:
                    return upload, sizes

    def presigned_url(self, ref: ObjectRef, expires_in: int) -> str:
        return self._signer.generate_presigned_url(
            "get_object", Params={"Bucket": ref.bucket, "Key": ref.key}, ExpiresIn=expires_in
        )

    def abort_uploads(self, ref: ObjectRef, *, under: bool = False, keep: str | None = None) -> int:
        """One listing page (1,000 uploads): a job leaves far fewer."""
        with translated(str(ref)):
            listing = self._client.list_multipart_uploads(Bucket=ref.bucket, Prefix=ref.key)
            stale = [
                up
                for up in listing.get("Uploads", [])
                if (under or up.get("Key") == ref.key) and up.get("UploadId") != keep
            ]
            for up in stale:
                key = ObjectRef(ref.bucket, up["Key"])
                S3MultipartUpload(self._client, key, up["UploadId"]).abort()
        return len(stale)
