"""The contenders, each run in a process of its own: `python -m bench.contenders NAME SPEC`.

SPEC is a JSON file: {"source_bucket", "destination_bucket", "keys": [[key, size], ...]}.
Prints one JSON line: wall and CPU seconds of the work, and the process's peak RSS.
"""

from __future__ import annotations

import io
import json
import resource
import sys
import threading
import time
import uuid
import zipfile
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.config import Config
from isal import isal_zlib

# Imported before the clock starts, as a worker does once at start-up (boto3 is, for all three).
from archiver.app.composition.container import build_container
from archiver.app.composition.settings import Settings
from archiver.app.engine.budget import RANGE_BYTES
from archiver.domain.checksum import combine, crc32_of_rest, crc32_text, crc32_value
from archiver.domain.job import JobRequest
from archiver.domain.multipart import MIN_PART_BYTES, copy_parts

MIB = 1024 * 1024
# The other contenders get archiver's own defaults, read from the settings model.
_DEFAULTS = Settings.model_construct()
CONCURRENCY = _DEFAULTS.download_concurrency
UPLOAD_CONCURRENCY = _DEFAULTS.upload_concurrency
COPY_CONCURRENCY = _DEFAULTS.copy_concurrency
PART = _DEFAULTS.upload_part_size_mb * MIB
RANGE = RANGE_BYTES
BUDGET = _DEFAULTS.memory_budget_mb * MIB


def client() -> Any:
    return boto3.client(
        "s3",
        config=Config(
            s3={"addressing_style": "path"},
            max_pool_connections=CONCURRENCY + UPLOAD_CONCURRENCY + COPY_CONCURRENCY + 4,
            retries={"mode": "standard"},
        ),
    )


def archiver(spec: dict[str, Any], encrypted: bool = False) -> None:
    """The real code path: settings, container, ObjectStore adapter, streaming writer, upload;
    `encrypted`: AES-256 with the workload's secret, read from the endpoint's Secrets Manager."""
    settings = Settings(
        s3_source_bucket=spec["source_bucket"],
        s3_destination_bucket=spec["destination_bucket"],
        archive_compression="auto",
        encryption_secrets=(spec["secret_prefix"],) if encrypted else (),
    )
    service = build_container(settings).service()
    archive = {"encryption": {"secret": spec["secret"]}} if encrypted else {}
    request = JobRequest.model_validate(
        {"files": [{"source": key} for key, _ in spec["keys"]], "archive": archive}
    )
    plan = service.plan(spec["job_id"], request, datetime.now(UTC))
    archive = service.build(plan)
    spec["archive_key"] = archive.key


def naive(spec: dict[str, Any]) -> None:
    """The design being replaced: sequential GETs, zipfile into BytesIO, one upload_fileobj."""
    s3 = client()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for key, _ in spec["keys"]:
            body = s3.get_object(Bucket=spec["source_bucket"], Key=key)["Body"].read()
            archive.writestr(key.rsplit("/", 1)[-1], body)
    buffer.seek(0)
    s3.upload_fileobj(buffer, spec["destination_bucket"], spec["archive_key"])


def copy_limit(spec: dict[str, Any]) -> None:
    """No zip: GET every byte with the same concurrency and ranges, multipart-PUT them all."""
    s3 = client()
    source, destination, key = (
        spec["source_bucket"],
        spec["destination_bucket"],
        spec["archive_key"],
    )
    ranges = [
        (name, start, min(RANGE, size - start))
        for name, size in spec["keys"]
        for start in range(0, size, RANGE)
    ]
    room = threading.Semaphore(BUDGET // RANGE)

    def get(name: str, start: int, length: int) -> bytes:
        span = f"bytes={start}-{start + length - 1}"
        return bytes(s3.get_object(Bucket=source, Key=name, Range=span)["Body"].read())

    upload_id = s3.create_multipart_upload(Bucket=destination, Key=key)["UploadId"]
    parts: dict[int, str] = {}
    slots = threading.Semaphore(UPLOAD_CONCURRENCY)

    def put(number: int, data: bytes) -> None:
        try:
            response = s3.upload_part(
                Bucket=destination, Key=key, UploadId=upload_id, PartNumber=number, Body=data
            )
            parts[number] = response["ETag"]
        finally:
            slots.release()

    with (
        ThreadPoolExecutor(CONCURRENCY) as fetchers,
        ThreadPoolExecutor(UPLOAD_CONCURRENCY) as uploaders,
    ):
        window: deque[Future[bytes]] = deque()
        uploads = []
        pending = iter(ranges)
        part = bytearray()
        number = 0

        def fill() -> None:
            for item in pending:
                room.acquire()
                window.append(fetchers.submit(get, *item))
                if len(window) >= BUDGET // RANGE:
                    return

        fill()
        while window:
            part += window.popleft().result()
            room.release()
            fill()
            while len(part) >= PART or (not window and part):
                number += 1
                slots.acquire()
                uploads.append(uploaders.submit(put, number, bytes(part[:PART])))
                del part[:PART]
        for upload in uploads:
            upload.result()
    s3.complete_multipart_upload(
        Bucket=destination,
        Key=key,
        UploadId=upload_id,
        MultipartUpload={"Parts": [{"PartNumber": n, "ETag": parts[n]} for n in sorted(parts)]},
    )


STAND_IN_HEADER = b"H" * 64  # where a local header would be
STAND_IN_DIRECTORY = b"D" * 1024  # where the central directory would be


def copy_floor(spec: dict[str, Any]) -> None:
    """Server-side copy with nothing zipped, the least work an archive of copied entries takes:
    per source a 5 MiB stitching part (a stand-in header and the source's first bytes), the rest
    copied once by UploadPartCopy (parts of up to 256 MiB, as archiver cuts them),
    `UPLOAD_CONCURRENCY` uploads and `COPY_CONCURRENCY` copies at once. Each copied range's
    CRC-32 is the one the copy answers, else the source's stored full-object one, else the range
    is read (one GET in the copy's thread). Completed with the whole's CRC-32 as a full-object
    checksum, as archiver completes."""
    s3 = client()
    source, destination, key = (
        spec["source_bucket"],
        spec["destination_bucket"],
        spec["archive_key"],
    )
    upload_id = s3.create_multipart_upload(
        Bucket=destination, Key=key, ChecksumAlgorithm="CRC32", ChecksumType="FULL_OBJECT"
    )["UploadId"]
    head_size = MIN_PART_BYTES - len(STAND_IN_HEADER)

    def stored_crc(name: str) -> int | None:
        head = s3.head_object(Bucket=source, Key=name, ChecksumMode="ENABLED")
        if head.get("ChecksumType") != "FULL_OBJECT":
            return None
        return crc32_value(head.get("ChecksumCRC32", ""))

    def stitch(number: int, name: str) -> dict[str, Any]:
        span = f"bytes=0-{head_size - 1}"
        head = s3.get_object(Bucket=source, Key=name, Range=span)["Body"].read()
        body = STAND_IN_HEADER + head
        etag = s3.upload_part(
            Bucket=destination, Key=key, UploadId=upload_id, PartNumber=number, Body=body
        )["ETag"]
        return {"PartNumber": number, "ETag": etag, "crc": isal_zlib.crc32(body), "head": head}

    def copy(number: int, name: str, start: int, length: int, known: bool) -> dict[str, Any]:
        span = f"bytes={start}-{start + length - 1}"
        result = s3.upload_part_copy(
            Bucket=destination,
            Key=key,
            UploadId=upload_id,
            PartNumber=number,
            CopySource={"Bucket": source, "Key": name},
            CopySourceRange=span,
        )["CopyPartResult"]
        crc = crc32_value(result.get("ChecksumCRC32", ""))
        if crc is None and not known:  # neither answered nor stored: read it
            body = s3.get_object(Bucket=source, Key=name, Range=span)["Body"]
            crc = 0
            while block := body.read(RANGE):
                crc = isal_zlib.crc32(block, crc)
        return {"PartNumber": number, "ETag": result["ETag"], "crc": crc, "length": length}

    number = 0
    parts: list[Future[dict[str, Any]]] = []
    entries: list[tuple[int | None, int, list[int]]] = []  # (stored CRC, stitch, copy parts)
    with (
        ThreadPoolExecutor(UPLOAD_CONCURRENCY) as uploads,
        ThreadPoolExecutor(COPY_CONCURRENCY) as copies,
        ThreadPoolExecutor(CONCURRENCY) as heads,
    ):
        stored = list(heads.map(stored_crc, [name for name, _ in spec["keys"]]))
        for (name, size), crc in zip(spec["keys"], stored, strict=True):
            number += 1
            stitched, copied = len(parts), []
            parts.append(uploads.submit(stitch, number, name))
            for start, length in copy_parts(head_size, size - head_size):
                number += 1
                copied.append(len(parts))
                parts.append(copies.submit(copy, number, name, start, length, crc is not None))
            entries.append((crc, stitched, copied))
        number += 1
        last = s3.upload_part(
            Bucket=destination,
            Key=key,
            UploadId=upload_id,
            PartNumber=number,
            Body=STAND_IN_DIRECTORY,
        )
        done = [part.result() for part in parts]
    pieces = []
    for crc, stitched, copied in entries:
        head = done[stitched]["head"]
        pieces.append((done[stitched]["crc"], MIN_PART_BYTES))
        rest = [(done[index]["crc"], done[index]["length"]) for index in copied]
        if any(part_crc is None for part_crc, _ in rest):
            assert crc is not None
            total = sum(length for _, length in rest)
            rest = [(crc32_of_rest(crc, isal_zlib.crc32(head), total), total)]
        pieces += rest
    pieces.append((isal_zlib.crc32(STAND_IN_DIRECTORY), len(STAND_IN_DIRECTORY)))
    listed = [{"PartNumber": p["PartNumber"], "ETag": p["ETag"]} for p in done]
    listed.append({"PartNumber": number, "ETag": last["ETag"]})
    s3.complete_multipart_upload(
        Bucket=destination,
        Key=key,
        UploadId=upload_id,
        MultipartUpload={"Parts": listed},
        ChecksumCRC32=crc32_text(combine(pieces)),
        ChecksumType="FULL_OBJECT",
    )


CONTENDERS = {
    "archiver": archiver,
    "archiver aes": lambda spec: archiver(spec, encrypted=True),
    "naive": naive,
    "copy limit": copy_limit,
    "copy floor": copy_floor,
}


def peak_rss_kib() -> int:
    """This process's own peak (VmHWM). Not ru_maxrss: Linux carries that over from the parent
    across fork and exec, so a child would report the orchestrator's peak."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main() -> None:
    name, spec_path = sys.argv[1], sys.argv[2]
    with open(spec_path, encoding="utf-8") as file:
        spec = json.load(file)
    spec["job_id"] = f"bench-{uuid.uuid4()}"
    spec["archive_key"] = f"{spec['job_id']}/archive.zip"
    started = time.perf_counter()
    cpu_started = time.process_time()
    CONTENDERS[name](spec)
    print(
        json.dumps(
            {
                "wall_s": time.perf_counter() - started,
                "cpu_s": time.process_time() - cpu_started,
                "peak_rss_mib": peak_rss_kib() / 1024,
                "archive_key": spec["archive_key"],
            }
        )
    )


if __name__ == "__main__":
    main()
