"""An SSE-KMS destination bucket on LocalStack: archives, copies and reports under its key.

S3 answers differently for SSE-KMS objects: an ETag that is not the MD5, and no checksum in
CompleteMultipartUpload's answer (LocalStack mimics both). LocalStack encrypts nothing and
asks KMS nothing for a bucket's default key, so who may use the key (kms:GenerateDataKey) is
proven by the start-up test in test_startup.py, through the proxy, as AWS documents it.
"""

from __future__ import annotations

import json
import random
import uuid
from typing import TYPE_CHECKING

import pytest
from structlog.testing import capture_logs

from archiver.app.cli.dev import DevResources
from archiver.app.composition.container import Container
from archiver.app.worker.outcomes import Outcome
from tests.integration.conftest import Drain
from tests.support import MIB, drive
from tests.zipcheck import contents

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

pytestmark = pytest.mark.integration

rng = random.Random(31)
SOURCES = {
    "enc/large.mov": rng.randbytes(11 * MIB),  # copied by the store into the SSE-KMS upload
    "enc/notes.txt": b"deflated, streamed\n" * 20_000,
}


def test_archives_in_an_sse_kms_bucket_are_made_under_its_key(
    container: Container, resources: DevResources, s3: S3Client, drain: Drain
) -> None:
    destination = resources.destination_bucket
    key_id = str(uuid.uuid4())
    s3.put_bucket_encryption(
        Bucket=destination,
        ServerSideEncryptionConfiguration={
            "Rules": [
                {
                    "ApplyServerSideEncryptionByDefault": {
                        "SSEAlgorithm": "aws:kms",
                        "KMSMasterKeyID": key_id,
                    },
                    "BucketKeyEnabled": True,
                }
            ]
        },
    )
    for key, body in SOURCES.items():
        s3.put_object(Bucket=resources.source_bucket, Key=key, Body=body)
    files = [{"source": key} for key in SOURCES]
    container.source_queue().send(json.dumps({"files": files}))
    with capture_logs() as logs:
        assert drive(container.worker(max_receives=None)) == [Outcome.SUCCEEDED]
    [answer] = drain(resources.destination_queue_url)
    [uploaded] = [e for e in logs if e["event"] == "archive_uploaded"]
    assert uploaded["copied_bytes"] > 0
    archive = s3.get_object(Bucket=destination, Key=answer["archive"]["key"])
    assert archive["ServerSideEncryption"] == "aws:kms"
    assert archive.get("SSEKMSKeyId", "").endswith(f"key/{key_id}")
    assert contents(archive["Body"].read()) == {
        key.split("/", 1)[1]: body for key, body in SOURCES.items()
    }
