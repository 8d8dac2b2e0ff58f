"""The SQS adapter as botocore drives it, without a network: what a failed visibility change
means. (The contract suite proves the deleted-receipt case on LocalStack, which answers as SQS.)"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import boto3
import pytest
from botocore.stub import Stubber

from archiver.adapters.sqs import SqsNotifier, SqsQueue
from archiver.domain.errors import ConfigurationError, TransientError
from archiver.domain.ports import ReceivedMessage

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

URL = "https://sqs.us-east-1.amazonaws.com/123456789012/jobs"
MESSAGE = ReceivedMessage(
    message_id="m-1", body="{}", receipt="r-1", sent_at=datetime.now(UTC), receive_count=1
)
DELETED = (
    "Value r-1 for parameter ReceiptHandle is invalid. Reason: Message does not exist or is not "
    "available for visibility timeout change."
)


def offline_client() -> SQSClient:
    return boto3.client(
        "sqs",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def change_fails(code: str, message: str) -> None:
    client = offline_client()
    with Stubber(client) as stub:
        stub.add_client_error(
            "change_message_visibility", service_error_code=code, service_message=message
        )
        SqsQueue(client, URL).set_visibility(MESSAGE, 0)


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("InvalidParameterValue", DELETED),
        ("ReceiptHandleIsInvalid", "The receipt handle is not valid."),
        ("AWS.SimpleQueueService.MessageNotInflight", "Message not inflight."),
    ],
)
def test_a_message_that_is_gone_needs_no_release(code: str, message: str) -> None:
    change_fails(code, message)  # nothing raised: there is nothing left to make visible


def test_another_invalid_parameter_is_an_error() -> None:
    invalid = "Value 50000 for parameter VisibilityTimeout is invalid. Reason: Must be < 43200."
    with pytest.raises(TransientError, match="VisibilityTimeout"):
        change_fails("InvalidParameterValue", invalid)


def test_a_destination_queue_too_small_for_any_notification_stops_the_start() -> None:
    client = offline_client()
    with Stubber(client) as stub:
        stub.add_response("get_queue_attributes", {"Attributes": {"MaximumMessageSize": "1024"}})
        with pytest.raises(ConfigurationError, match="MaximumMessageSize 1,024"):
            SqsNotifier(client, URL).check()
