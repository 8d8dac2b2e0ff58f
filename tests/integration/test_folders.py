"""Folders (`prefix`), file lists in S3 (`files_from`), archive names and progress through the
worker on a real S3/SQS endpoint."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from archiver.app.cli.dev import DevResources
from archiver.app.composition.container import Container
from archiver.app.worker.outcomes import Outcome
from tests.integration.conftest import Drain
from tests.support import drive
from tests.zipcheck import contents

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

pytestmark = pytest.mark.integration


def test_a_prefix_and_a_file_list_through_the_worker(
    container: Container, resources: DevResources, s3: S3Client, drain: Drain
) -> None:
    source = resources.source_bucket
    keys = [f"albums/wedding/{n:04d}.jpg" for n in range(1_050)]  # two pages of listing
    for key in [*keys, "albums/wedding/church/altar.jpg"]:
        s3.put_object(Bucket=source, Key=key, Body=key.encode())
    s3.put_object(Bucket=source, Key="albums/wedding/empty/", Body=b"")  # a folder marker
    items = [{"source": keys[0], "destination": "list"}, {"prefix": "albums/wedding/church/"}]
    s3.put_object(Bucket=source, Key="lists/job.jsonl", Body="\n".join(map(json.dumps, items)))
    queue = container.source_queue()
    first = queue.send(
        json.dumps(
            {
                "files": [{"prefix": "albums/wedding/", "destination": "Wedding"}],
                "archive": {"name": "Mariage 2026"},
                "notify": {"progress": True},
            }
        )
    )
    queue.send(json.dumps({"files_from": "lists/job.jsonl"}))
    assert drive(container.worker(max_receives=None), polls=2) == [
        Outcome.SUCCEEDED,
        Outcome.SUCCEEDED,
    ]
    answers: list[dict[str, Any]] = []
    for _ in range(10):  # `running` notifications may come first
        answers += [n for n in drain(resources.destination_queue_url) if n["status"] != "running"]
        if len(answers) == 2:
            break
    by_job = {answer["job_id"]: answer for answer in answers}
    folder = by_job.pop(first)
    assert folder["archive"]["key"] == f"{first}/Mariage 2026.zip"
    data = s3.get_object(Bucket=resources.destination_bucket, Key=folder["archive"]["key"])
    assert data["ContentDisposition"] == 'attachment; filename="Mariage 2026.zip"'
    assert contents(data["Body"].read()) == {
        **{f"Wedding/{key.rsplit('/', 1)[1]}": key.encode() for key in keys},
        "Wedding/church/altar.jpg": b"albums/wedding/church/altar.jpg",
    }
    [listed] = by_job.values()
    archive = s3.get_object(Bucket=resources.destination_bucket, Key=listed["archive"]["key"])
    assert contents(archive["Body"].read()) == {
        f"list/{keys[0].rsplit('/', 1)[1]}": keys[0].encode(),
        "altar.jpg": b"albums/wedding/church/altar.jpg",
    }
