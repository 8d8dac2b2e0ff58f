"""Archived sources on a strict S3 endpoint (LocalStack answers a GET of a GLACIER object with
InvalidObjectState, as S3 does): the job's answer names them as archived, to be restored."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from archiver.app.cli.dev import DevResources
from archiver.app.composition.container import Container
from archiver.app.worker.outcomes import Outcome
from tests.integration.conftest import Drain
from tests.support import drive

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

pytestmark = pytest.mark.integration


def test_an_archived_source_fails_the_job_naming_it_archived(
    container: Container, resources: DevResources, s3: S3Client, drain: Drain
) -> None:
    bucket = resources.source_bucket
    s3.put_object(Bucket=bucket, Key="2019/raw.cr2", Body=b"raw" * 1000, StorageClass="GLACIER")
    s3.put_object(Bucket=bucket, Key="2024/new.jpg", Body=b"jpg" * 1000)
    files = [{"source": "2019/raw.cr2"}, {"source": "2024/new.jpg"}]
    container.source_queue().send(json.dumps({"files": files}))
    assert drive(container.worker(max_receives=None)) == [Outcome.FAILED]
    [answer] = drain(resources.destination_queue_url)
    assert answer["error"]["code"] == "source_unreadable"
    assert "1 archived, to be restored before they can be read" in answer["error"]["message"]
    assert answer["error"]["sources"] == [f"s3://{bucket}/2019/raw.cr2"]
