"""Server-side copy on a strict S3 endpoint (LocalStack: it checks a completed upload's full-object
CRC, BadDigest else, and stamps unchecksummed uploads with CRC64NVME as S3 does since 2025):
sources with each kind of checksum, archives read back by every ZIP reader here, and a store that
refuses part copies."""

from __future__ import annotations

import hashlib
import json
import random
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
import pytest
from botocore.config import Config
from structlog.testing import capture_logs

from archiver.adapters.s3 import S3ObjectStore
from archiver.app.cli.dev import DevResources
from archiver.app.composition.container import Container
from archiver.app.worker.outcomes import Outcome
from archiver.domain.checksum import crc32_text
from archiver.domain.job import ObjectRef
from archiver.domain.multipart import STAGING_PREFIX
from tests.checksums import crc64nvme_text
from tests.compat.readers import READERS, missing_tools
from tests.conftest import strict_only
from tests.faults import Fault
from tests.integration.conftest import Drain
from tests.integration.test_faults import proxied_container
from tests.support import MIB, drive
from tests.zipcheck import check_layout, contents

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from tests.faults import FaultProxy

pytestmark = pytest.mark.integration

rng = random.Random(13)
SOURCES = {
    "media/full.mp4": rng.randbytes(12 * MIB),  # PutObject with a CRC-32: full-object
    "media/composite.mov": rng.randbytes(11 * MIB + 7),  # multipart: a composite checksum
    "media/plain.mkv": rng.randbytes(10 * MIB + 1),  # none sent: the store stamps CRC64NVME
    "media/nvme.avi": rng.randbytes(10 * MIB + 3),  # CRC64NVME, as the AWS CLI v2 sends
    "media/small.jpg": rng.randbytes(6 * MIB),  # one copied part
    "docs/notes.txt": b"deflated, never copied\n" * 100_000,
}
COPIED = (
    "media/full.mp4",
    "media/composite.mov",
    "media/plain.mkv",
    "media/nvme.avi",
    "media/small.jpg",
)


def plain_client(s3: S3Client) -> S3Client:
    """A client that sends no checksum unless required, as SDKs did before 2025."""
    return boto3.client(
        "s3",
        endpoint_url=s3.meta.endpoint_url,
        config=Config(
            s3={"addressing_style": "path"}, request_checksum_calculation="when_required"
        ),
    )


def upload_sources(s3: S3Client, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="media/full.mp4", Body=SOURCES["media/full.mp4"])
    body = SOURCES["media/composite.mov"]
    created = s3.create_multipart_upload(
        Bucket=bucket, Key="media/composite.mov", ChecksumAlgorithm="CRC32"
    )
    parts = []
    for number, start in enumerate(range(0, len(body), 6 * MIB), start=1):
        sent = s3.upload_part(
            Bucket=bucket,
            Key="media/composite.mov",
            UploadId=created["UploadId"],
            PartNumber=number,
            Body=body[start : start + 6 * MIB],
            ChecksumAlgorithm="CRC32",
        )
        parts.append(
            {"PartNumber": number, "ETag": sent["ETag"], "ChecksumCRC32": sent["ChecksumCRC32"]}
        )
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key="media/composite.mov",
        UploadId=created["UploadId"],
        MultipartUpload={"Parts": parts},  # type: ignore[typeddict-item]
    )
    plain = plain_client(s3)
    for key in ("media/plain.mkv", "media/small.jpg", "docs/notes.txt"):
        plain.put_object(Bucket=bucket, Key=key, Body=SOURCES[key])
    body = SOURCES["media/nvme.avi"]
    plain.put_object(
        Bucket=bucket, Key="media/nvme.avi", Body=body, ChecksumCRC64NVME=crc64nvme_text(body)
    )


def test_the_store_holds_the_checksums_the_tests_mean(
    resources: DevResources, s3: S3Client, request: pytest.FixtureRequest
) -> None:
    """What S3 documents for each upload; the copy tests below rely on each kind being there."""
    strict_only(request, "moto stores no checksum for an upload that sent none")
    upload_sources(s3, resources.source_bucket)

    def stored(key: str) -> dict[str, str]:
        head = s3.head_object(Bucket=resources.source_bucket, Key=key, ChecksumMode="ENABLED")
        names = ("ChecksumCRC32", "ChecksumCRC64NVME", "ChecksumType")
        return {name: str(head[name]) for name in names if name in head}  # type: ignore[literal-required]

    full = SOURCES["media/full.mp4"]
    assert stored("media/full.mp4") == {
        "ChecksumCRC32": crc32_text(zlib.crc32(full)),
        "ChecksumType": "FULL_OBJECT",
    }
    composite = stored("media/composite.mov")
    assert composite["ChecksumType"] == "COMPOSITE"
    assert composite["ChecksumCRC32"].endswith("-2")  # of the parts' CRCs: not the object's
    for key in ("media/plain.mkv", "media/nvme.avi"):
        assert stored(key) == {
            "ChecksumCRC64NVME": crc64nvme_text(SOURCES[key]),
            "ChecksumType": "FULL_OBJECT",
        }, key


def test_the_adapter_gives_a_stored_crc32_or_none_never_a_wrong_one(
    resources: DevResources, s3: S3Client
) -> None:
    upload_sources(s3, resources.source_bucket)
    store = S3ObjectStore(s3)
    for key, body in SOURCES.items():
        ref = ObjectRef(resources.source_bucket, key)
        found = store.checksum(ref, store.stat(ref).etag)
        assert found in (None, zlib.crc32(body)), key
    full = ObjectRef(resources.source_bucket, "media/full.mp4")
    assert store.checksum(full, None) == zlib.crc32(SOURCES["media/full.mp4"])
    plain = ObjectRef(resources.source_bucket, "media/plain.mkv")
    assert store.checksum(plain, None) is None


def job(bucket: str) -> str:
    return json.dumps({"files": [{"source": key, "destination": "job"} for key in SOURCES]})


def check_archive(s3: S3Client, bucket: str, notification: dict[str, object]) -> bytes:
    """Entries, layout and the stored whole-object CRC-32 (which a strict store checked when
    the upload completed: a wrong one is BadDigest, see the contract suite)."""
    assert notification["status"] == "succeeded"
    archive = notification["archive"]
    assert isinstance(archive, dict)
    data = s3.get_object(Bucket=bucket, Key=archive["key"])["Body"].read()
    assert contents(data) == {f"job/{key.rsplit('/', 1)[1]}": body for key, body in SOURCES.items()}
    check_layout(data)
    assert archive["crc32"] == crc32_text(zlib.crc32(data))
    head = s3.head_object(Bucket=bucket, Key=archive["key"], ChecksumMode="ENABLED")
    assert head["ChecksumCRC32"] == archive["crc32"]
    assert head.get("ChecksumType", "FULL_OBJECT") == "FULL_OBJECT"
    assert not s3.list_multipart_uploads(Bucket=bucket).get("Uploads")
    assert not s3.list_objects_v2(Bucket=bucket, Prefix=STAGING_PREFIX).get("Contents")
    return data


def test_large_stored_sources_are_copied_by_the_store(
    container: Container, resources: DevResources, s3: S3Client, drain: Drain, tmp_path: Path
) -> None:
    upload_sources(s3, resources.source_bucket)
    container.source_queue().send(job(resources.source_bucket))
    with capture_logs() as logs:
        assert drive(container.worker(max_receives=None)) == [Outcome.SUCCEEDED]
    [notification] = drain(resources.destination_queue_url)
    data = check_archive(s3, resources.destination_bucket, notification)
    [uploaded] = [e for e in logs if e["event"] == "archive_uploaded"]
    copied = sum(len(SOURCES[key]) for key in COPIED)
    # One top-up for the job: the other copied entries' headers go with staging objects.
    assert copied - 5 * MIB <= uploaded["copied_bytes"] < copied
    assert uploaded["size_bytes"] == len(data)
    archive = tmp_path / "copied.zip"
    archive.write_bytes(data)
    expected = {
        f"job/{key.rsplit('/', 1)[1]}": hashlib.sha256(body).hexdigest()
        for key, body in SOURCES.items()
    }
    for reader, (read, tools) in READERS.items():
        if reader != "zipdetails" and not missing_tools(tools):
            assert read(archive) == expected, reader


def test_a_store_that_refuses_part_copies_gets_the_job_streamed(
    resources: DevResources,
    s3: S3Client,
    drain: Drain,
    proxy: FaultProxy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    upload_sources(s3, resources.source_bucket)
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)  # the worker's clients go through it
    refusals = proxy.add(Fault("501", method="PUT", target="UploadPartCopy", times=-1))
    container = proxied_container(resources, proxy)
    container.source_queue().send(job(resources.source_bucket))
    with capture_logs() as logs:
        assert drive(container.worker(max_receives=None)) == [
            Outcome.SUCCEEDED
        ]  # on the first delivery
    [notification] = drain(resources.destination_queue_url)
    check_archive(s3, resources.destination_bucket, notification)
    assert refusals.hits >= 1
    refused = [e for e in logs if e["event"] == "server_side_copy_refused"]
    assert len(refused) == 1
    assert "NotImplemented" in refused[0]["reason"]
    [uploaded] = [e for e in logs if e["event"] == "archive_uploaded"]
    assert uploaded["copied_bytes"] == 0


def test_copied_entries_of_every_checksum_kind_are_neither_read_nor_sent_by_the_worker(
    resources: DevResources,
    s3: S3Client,
    drain: Drain,
    proxy: FaultProxy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """8 x 40 MiB (4 sent with CRC64NVME, 2 sent with none: the store stamps CRC64NVME, 2 with
    CRC32) between 10 small files: the worker reads and sends at most 2.5 % of the large
    entries' bytes each way (small files and request overhead aside); nothing is left."""
    large = {f"big/{n}.mp4": random.Random(100 + n).randbytes(40 * MIB) for n in range(8)}
    small = {f"small/{n}.jpg": random.Random(200 + n).randbytes(20_000) for n in range(10)}
    plain = plain_client(s3)
    for n, (key, body) in enumerate(large.items()):
        if n < 4:
            plain.put_object(
                Bucket=resources.source_bucket, Key=key, Body=body,
                ChecksumCRC64NVME=crc64nvme_text(body),
            )  # fmt: skip
        elif n < 6:
            plain.put_object(Bucket=resources.source_bucket, Key=key, Body=body)
        else:
            s3.put_object(Bucket=resources.source_bucket, Key=key, Body=body)
    for key, body in small.items():
        s3.put_object(Bucket=resources.source_bucket, Key=key, Body=body)
    order = [key for pair in zip(small, [*large, "", ""], strict=True) for key in pair if key]
    sources = {**large, **small}
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
    container = proxied_container(resources, proxy)
    body = json.dumps({"files": [{"source": key} for key in order]})
    container.source_queue().send(body)
    before_sent, before_read = proxy.sent_bytes, proxy.read_bytes
    assert drive(container.worker(max_receives=None)) == [Outcome.SUCCEEDED]
    sent, read = proxy.sent_bytes - before_sent, proxy.read_bytes - before_read
    [notification] = drain(resources.destination_queue_url)
    assert notification["status"] == "succeeded"
    key = notification["archive"]["key"]
    data = s3.get_object(Bucket=resources.destination_bucket, Key=key)["Body"].read()
    assert contents(data) == {name.rsplit("/", 1)[1]: sources[name] for name in order}
    check_layout(data)
    large_bytes, small_bytes = sum(map(len, large.values())), sum(map(len, small.values()))
    overhead = 256 * 1024  # XML answers, queue messages, headers, the central directory
    print(
        f"\nlarge entries {large_bytes / MIB:.0f} MiB: worker read {read / MIB:.2f} MiB "
        f"({read / large_bytes:.2%}), sent {sent / MIB:.2f} MiB ({sent / large_bytes:.2%})"
    )
    assert read - small_bytes - overhead <= 0.025 * large_bytes
    assert sent - small_bytes - overhead <= 0.025 * large_bytes
    bucket = resources.destination_bucket
    assert not s3.list_multipart_uploads(Bucket=bucket).get("Uploads")
    assert not s3.list_objects_v2(Bucket=bucket, Prefix=STAGING_PREFIX).get("Contents")
