"""Sources in a Requester Pays bucket, on LocalStack behind a proxy that enforces the rule.

On AWS a request on a Requester Pays bucket (or a copy from one) without
`x-amz-request-payer: requester` is refused 403 (S3 user guide, "Downloading objects from
Requester Pays buckets"). LocalStack records the bucket's setting but does not enforce it, so
the proxy does: the AWS documentation wins where the two differ.
"""

from __future__ import annotations

import json
import random
from typing import TYPE_CHECKING

import pytest
from structlog.testing import capture_logs

from archiver.app.cli.dev import DevResources
from archiver.app.worker.outcomes import Outcome
from tests.integration.conftest import Drain
from tests.integration.test_faults import proxied_container
from tests.support import MIB, drive
from tests.zipcheck import contents

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from tests.faults import FaultProxy

pytestmark = pytest.mark.integration

rng = random.Random(29)
SOURCES = {
    "paid/large.mov": rng.randbytes(12 * MIB),  # copied by the store: UploadPartCopy
    "paid/small.txt": b"read with one ranged GET\n" * 40,
    "paid/album/one.jpg": rng.randbytes(3000),  # listed, then read
    "paid/album/two.jpg": rng.randbytes(5000),
}
JOB = json.dumps(
    {
        "files": [
            {"source": "paid/large.mov"},
            {"source": "paid/small.txt"},
            {"prefix": "paid/album/", "destination": "album"},
        ]
    }
)


@pytest.fixture
def paid(
    resources: DevResources, s3: S3Client, proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch
) -> FaultProxy:
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)  # the worker's clients go through it
    bucket = resources.source_bucket
    for key, body in SOURCES.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    s3.put_bucket_request_payment(Bucket=bucket, RequestPaymentConfiguration={"Payer": "Requester"})
    proxy.requester_pays = frozenset({bucket})
    return proxy


def test_without_the_setting_a_requester_pays_source_is_refused(
    resources: DevResources, paid: FaultProxy, drain: Drain
) -> None:
    container = proxied_container(resources, paid)
    container.source_queue().send(JOB)
    assert drive(container.worker(max_receives=None)) == [Outcome.FAILED]
    [answer] = drain(resources.destination_queue_url)
    assert answer["error"]["code"] == "source_access_denied"
    assert paid.unpaid > 0


def test_with_s3_requester_pays_every_read_listing_and_copy_is_paid_for(
    resources: DevResources, s3: S3Client, paid: FaultProxy, drain: Drain
) -> None:
    container = proxied_container(resources, paid, s3_requester_pays=True)
    container.source_queue().send(JOB)
    with capture_logs() as logs:
        assert drive(container.worker(max_receives=None)) == [Outcome.SUCCEEDED]
    [answer] = drain(resources.destination_queue_url)
    assert paid.unpaid == 0
    [uploaded] = [e for e in logs if e["event"] == "archive_uploaded"]
    assert uploaded["copied_bytes"] > 0  # the large source went by UploadPartCopy, paid for
    key = answer["archive"]["key"]
    data = s3.get_object(Bucket=resources.destination_bucket, Key=key)["Body"].read()
    assert contents(data) == {
        "large.mov": SOURCES["paid/large.mov"],
        "small.txt": SOURCES["paid/small.txt"],
        "album/one.jpg": SOURCES["paid/album/one.jpg"],
        "album/two.jpg": SOURCES["paid/album/two.jpg"],
    }
