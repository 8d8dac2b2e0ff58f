"""Entry times on a real S3 endpoint (LocalStack): every entry, a copied one included, carries
its source's LastModified in the extended-timestamp field (0x5455) and as its DOS time."""

from __future__ import annotations

import io
import json
import random
import zipfile
from datetime import UTC
from typing import TYPE_CHECKING

import pytest

from archiver.app.cli.dev import DevResources
from archiver.app.composition.container import Container
from archiver.app.worker.outcomes import Outcome
from tests.integration.conftest import Drain
from tests.support import MIB, drive
from tests.zipcheck import check_layout, unix_times

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

pytestmark = pytest.mark.integration

SOURCES = {
    "times/large.mov": random.Random(41).randbytes(11 * MIB),  # copied by the store
    "times/notes.txt": b"written whole\n" * 100,
    "times/élève.txt": "un nom accentué\n".encode(),
}


def test_every_entry_carries_its_sources_last_modified(
    container: Container, resources: DevResources, s3: S3Client, drain: Drain
) -> None:
    modified = {}
    for key, body in SOURCES.items():
        s3.put_object(Bucket=resources.source_bucket, Key=key, Body=body)
        head = s3.head_object(Bucket=resources.source_bucket, Key=key)
        modified[key.split("/", 1)[1]] = head["LastModified"].astimezone(UTC)
    container.source_queue().send(json.dumps({"files": [{"source": k} for k in SOURCES]}))
    assert drive(container.worker(max_receives=None)) == [Outcome.SUCCEEDED]
    [answer] = drain(resources.destination_queue_url)
    key = answer["archive"]["key"]
    data = s3.get_object(Bucket=resources.destination_bucket, Key=key)["Body"].read()
    check_layout(data)  # the same 0x5455 and 0x7075 fields in both headers
    assert unix_times(data) == {name: int(t.timestamp()) for name, t in modified.items()}
    for info in zipfile.ZipFile(io.BytesIO(data)).infolist():
        moment = modified[info.filename]
        dos = (moment.year, moment.month, moment.day, moment.hour, moment.minute)
        assert info.date_time == (*dos, moment.second // 2 * 2)
