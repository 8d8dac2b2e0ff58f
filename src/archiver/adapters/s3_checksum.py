"""A source's stored CRC-32, as S3 keeps it: full-object, or rebuilt from its parts'."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import structlog

from archiver.adapters.errors import translated
from archiver.domain.checksum import combine, crc32_value
from archiver.domain.errors import ObjectUnavailable, TransientError
from archiver.domain.job import ObjectRef

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = structlog.get_logger(__name__)

ATTRIBUTE_PAGES = 10  # 1,000 parts a page: every part of the largest multipart object


def stored_crc32(
    client: S3Client, ref: ObjectRef, etag: str | None, payer: Mapping[str, Any]
) -> int | None:
    """A full-object CRC-32 is the HEAD's (checksum mode on). A composite one (a multipart
    upload's, "checksum of checksums") is rebuilt from its parts' CRC-32s and sizes.

    A value without a type is trusted only for a single-part object (its ETag has no
    "-N"): some S3-compatible stores return a composite value without saying so. `payer`
    holds what a Requester Pays source adds to each request.
    """
    arguments: dict[str, Any] = {"Bucket": ref.bucket, "Key": ref.key, **payer}
    if etag:
        arguments["IfMatch"] = etag
    with translated(str(ref)):
        head = client.head_object(ChecksumMode="ENABLED", **arguments)
    text = head.get("ChecksumCRC32")
    if text is None:
        return None
    kind = head.get("ChecksumType")
    single_part = "-" not in str(head.get("ETag", "-"))
    if kind == "FULL_OBJECT" or (kind is None and single_part):
        return crc32_value(text)
    return _composite(client, ref, head["ContentLength"], etag, payer)


def _composite(
    client: S3Client, ref: ObjectRef, size: int, etag: str | None, payer: Mapping[str, Any]
) -> int | None:
    """The parts' CRC-32s combined, if every part has one and their sizes add up."""
    pieces: list[tuple[int, int]] = []
    marker = 0
    for _ in range(ATTRIBUTE_PAGES):
        try:
            with translated(str(ref)):
                answer = client.get_object_attributes(
                    Bucket=ref.bucket,
                    Key=ref.key,
                    ObjectAttributes=["ObjectParts", "ETag"],
                    MaxParts=1000,
                    PartNumberMarker=marker,
                    **payer,
                )
        except ObjectUnavailable as unavailable:  # no s3:GetObjectAttributes: read it
            log.info("part_checksums_unavailable", source=str(ref), error=str(unavailable))
            return None
        if etag and answer.get("ETag", "").strip('"') != etag.strip('"'):
            raise TransientError(f"{ref}: changed while read (ETag), will retry")
        listing = answer.get("ObjectParts", {})
        for part in listing.get("Parts", []):
            crc = crc32_value(part.get("ChecksumCRC32", ""))
            if crc is None or "Size" not in part:
                return None
            pieces.append((crc, part["Size"]))
        if not listing.get("IsTruncated"):
            break
        marker = listing.get("NextPartNumberMarker", 0)
    else:
        return None
    counted = listing.get("TotalPartsCount", len(pieces))
    if not pieces or counted != len(pieces) or sum(n for _, n in pieces) != size:
        return None
    return combine(pieces)
