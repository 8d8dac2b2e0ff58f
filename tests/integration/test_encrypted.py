"""Encrypted archives on LocalStack: the password read from Secrets Manager, every entry
streamed (none copied, though one would be), the archive opened with the password by our
reference reader and by 7-Zip; an unreadable secret answered once."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from structlog.testing import capture_logs

from archiver.app.cli.dev import DevResources
from archiver.app.composition.container import Container, build_container
from archiver.app.worker.outcomes import Outcome
from tests.aes import decrypted
from tests.conftest import unique
from tests.integration.conftest import Drain, worker_settings
from tests.support import MIB, drive

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_secretsmanager import SecretsManagerClient

pytestmark = pytest.mark.integration

PASSWORD = "a long passphrase, ünïcode too"
rng = random.Random(41)
SOURCES = {
    "aes/large.mov": rng.randbytes(11 * MIB),  # unencrypted, the store would copy it
    "aes/notes.txt": b"deflated, streamed\n" * 20_000,
    "aes/tiny.txt": b"t",
}


def _container(resources: DevResources, prefix: str) -> Container:
    return build_container(worker_settings(resources, encryption_secrets=(prefix,)))


def _secret(secretsmanager: SecretsManagerClient, value: str) -> tuple[str, str]:
    """A secret under a path of its own: (its name, the ARN prefix of that path)."""
    path = unique("archiver")
    arn = secretsmanager.create_secret(Name=f"{path}/job", SecretString=value)["ARN"]
    return f"{path}/job", f"{arn.split(':secret:')[0]}:secret:{path}/"


def test_an_encrypted_job_is_streamed_and_opens_with_the_password(
    resources: DevResources,
    s3: S3Client,
    secretsmanager: SecretsManagerClient,
    drain: Drain,
) -> None:
    name, prefix = _secret(secretsmanager, PASSWORD)
    container = _container(resources, prefix)
    for key, body in SOURCES.items():
        s3.put_object(Bucket=resources.source_bucket, Key=key, Body=body, ChecksumAlgorithm="CRC32")
    job = {"files": [{"prefix": "aes/"}], "archive": {"encryption": {"secret": name}}}
    container.source_queue().send(json.dumps(job))
    with capture_logs() as logs:
        assert drive(container.worker(max_receives=None)) == [Outcome.SUCCEEDED]
    assert PASSWORD not in json.dumps(logs, default=str)
    [answer] = drain(resources.destination_queue_url)
    assert answer["status"] == "succeeded"
    assert PASSWORD not in json.dumps(answer)
    [uploaded] = [e for e in logs if e["event"] == "archive_uploaded"]
    assert uploaded["copied_bytes"] == 0
    data = s3.get_object(Bucket=resources.destination_bucket, Key=answer["archive"]["key"])
    archive = data["Body"].read()
    expected = {key.removeprefix("aes/"): body for key, body in SOURCES.items()}
    assert decrypted(archive, PASSWORD) == expected
    if shutil.which("7z"):
        with tempfile.TemporaryDirectory() as scratch:
            path = Path(scratch) / "a.zip"
            path.write_bytes(archive)
            tested = subprocess.run(
                ["7z", "t", f"-p{PASSWORD}", str(path)], capture_output=True, check=False
            )
            assert b"Everything is Ok" in tested.stdout


def test_an_unknown_secret_is_one_failure_and_nothing_is_written(
    resources: DevResources,
    s3: S3Client,
    secretsmanager: SecretsManagerClient,
    drain: Drain,
) -> None:
    _, prefix = _secret(secretsmanager, PASSWORD)
    container = _container(resources, prefix)
    s3.put_object(Bucket=resources.source_bucket, Key="aes/tiny.txt", Body=b"t")
    missing = f"{prefix.split(':secret:')[1]}gone"
    job = {"files": [{"source": "aes/tiny.txt"}], "archive": {"encryption": {"secret": missing}}}
    container.source_queue().send(json.dumps(job))
    assert drive(container.worker(max_receives=None)) == [Outcome.FAILED]
    [answer] = drain(resources.destination_queue_url)
    assert answer["error"]["code"] == "encryption_secret_unreadable"
    assert missing in answer["error"]["message"]
    listed = s3.list_objects_v2(Bucket=resources.destination_bucket)
    assert [item["Key"] for item in listed.get("Contents", [])] == []
