"""`archiver demo`: a real job on the embedded endpoint, from upload to a verified download."""

from __future__ import annotations

import io
import json
import os
import random
import sys
import threading
import urllib.request
import zipfile

from archiver.app.cli.dev import create_resources, embedded_endpoint, free_port
from archiver.app.cli.submit import await_answer
from archiver.app.cli.usage import WORKER_VARIABLES, configured

NOTIFICATION_TIMEOUT = 60.0


def _samples() -> dict[str, bytes]:
    rng = random.Random(2026)  # noqa: S311 - sample data, not secrets
    png = b"\x89PNG\r\n\x1a\n" + rng.randbytes(300_000)
    text = "".join(f"line {n}: archiver streams S3 objects into one zip\n" for n in range(5000))
    return {
        "example-directory/uuid1.png": png,
        "example-directory/uuid2.jpg": b"\xff\xd8\xff\xe0" + rng.randbytes(120_000),
        "example-directory/notes.txt": text.encode(),
        "example-directory/résumé.txt": "Grüße aus dem Archiv\n".encode(),
    }


def _job() -> dict[str, object]:
    return {
        "files": [
            {"source": "example-directory/uuid1.png", "destination": "album_1"},
            {
                "source": "example-directory/uuid2.jpg",
                "destination": "album_1",
                "name": "cover.jpg",
            },
            {"source": "example-directory/notes.txt", "destination": "album_2/text"},
            {"source": "example-directory/résumé.txt"},
            {"source": "example-directory/uuid1.png", "destination": "ALBUM_1"},
        ],
        "metadata": {"user_email": "someone@example.com"},
    }


def _show_archive(url: str, samples: dict[str, bytes]) -> bool:
    with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 - our own endpoint
        data = response.read()
    expected = set(samples.values())
    intact = True
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        print(f"\n{len(data):,} bytes, {len(archive.infolist())} entries:")
        for info in archive.infolist():
            content = archive.read(info)  # checks the CRC-32
            method = "deflated" if info.compress_type == zipfile.ZIP_DEFLATED else "stored"
            ok = content in expected
            intact &= ok
            verdict = "ok" if ok else "MISMATCH"
            print(f"  {info.file_size:>9,}  {method:<8}  {verdict:<8}  {info.filename}")
    return intact


def run_demo(port: int = 0, *, fifo: bool = False) -> int:
    with embedded_endpoint(port=port or free_port(), fifo=fifo) as endpoint:
        os.environ["SQS_WAIT_TIME_SECONDS"] = "1"
        _, container = configured(WORKER_VARIABLES)
        resources = create_resources(
            container.s3_client(),
            container.sqs_client(),
            source_queue=os.environ["SQS_SOURCE_QUEUE"],  # set by the embedded endpoint
            destination_queue=os.environ["SQS_DESTINATION_QUEUE"],
        )
        samples = _samples()
        for key, body in samples.items():
            container.s3_client().put_object(Bucket=resources.source_bucket, Key=key, Body=body)
        stop = threading.Event()
        worker = threading.Thread(
            target=container.worker(max_receives=None).run, args=(stop,), daemon=True
        )
        worker.start()
        try:
            job_id = container.source_queue().send(json.dumps(_job()))
            print(f"endpoint {endpoint}; submitted job {job_id}")
            print(f"jobs {resources.source_queue_url}\nanswers {resources.destination_queue_url}")
            notification = await_answer(
                container.sqs_client(),
                resources.destination_queue_url,
                job_id,
                NOTIFICATION_TIMEOUT,
                take=True,
            )
        finally:
            stop.set()
            worker.join(timeout=10)
        if notification is None:
            print(f"archiver: no notification within {NOTIFICATION_TIMEOUT:.0f} s", file=sys.stderr)
            return 1
        print(json.dumps(notification, indent=2))
        if notification.get("status") != "succeeded":
            return 1
        url = str(notification["url"])
        print(f"\nURL: {url}")
        return 0 if _show_archive(url, samples) else 1
