"""SQS adapters for the Queue and Notifier ports."""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from archiver.adapters.errors import error_code, transient_only
from archiver.domain.checkpoint import (
    CONTINUATION_ATTRIBUTES,
    Continuation,
    continuation_attributes,
    continuation_of,
)
from archiver.domain.errors import ConfigurationError, TransientError
from archiver.domain.notifications import (
    MAX_NOTIFICATION_BYTES,
    MIN_NOTIFICATION_BYTES,
    JobFailed,
    JobRunning,
    JobSucceeded,
    notification_body,
)
from archiver.domain.ports import ReceivedMessage

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.literals import MessageSystemAttributeNameType, QueueAttributeNameType
    from mypy_boto3_sqs.type_defs import MessageTypeDef, SendMessageRequestTypeDef

# What SQS answers for a receipt whose message was deleted or is no longer in flight.
GONE = frozenset(
    {"ReceiptHandleIsInvalid", "AWS.SimpleQueueService.MessageNotInflight", "MessageNotInflight"}
)
# SQS (and LocalStack) answer a deleted message's receipt with this code, naming the parameter:
# "Value ... for parameter ReceiptHandle is invalid. Reason: Message does not exist or is not
# available for visibility timeout change." The same code with another parameter is a real error.
INVALID_PARAMETER = "InvalidParameterValue"
# What SQS answers for a queue that is not there, or not ours to use: a deployment's mistake.
MISCONFIGURED = frozenset(
    {
        "AWS.SimpleQueueService.NonExistentQueue",
        "QueueDoesNotExist",
        "NonExistentQueue",
        "AccessDenied",
        "AccessDeniedException",
        "InvalidAddress",
        "InvalidSecurity",
    }
)
SYSTEM_ATTRIBUTES: list[MessageSystemAttributeNameType] = [
    "SentTimestamp",
    "ApproximateReceiveCount",
    "MessageGroupId",  # FIFO queues only
]
FIFO_SUFFIX = ".fifo"  # SQS requires it of every FIFO queue's name
SMALLEST_MAXIMUM = 1024  # the least MaximumMessageSize SQS allows: a shorter body always fits


def is_fifo(queue: str) -> bool:
    """Whether a queue, by URL or name, is a FIFO queue."""
    return queue.rstrip("/").endswith(FIFO_SUFFIX)


def deduplication_id(notification: JobSucceeded | JobFailed | JobRunning) -> str:
    """The same for the same notification of a job, whichever delivery sends it: SQS drops the
    repeat (within its 5-minute deduplication window)."""
    parts = [notification.job_id, notification.status]
    if isinstance(notification, JobRunning):
        parts += [str(notification.progress.files_done), str(notification.progress.bytes_done)]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


class QueueAddress:
    """A queue given by URL or by name; a name is resolved once, on first use."""

    def __init__(self, client: SQSClient, queue: str) -> None:
        self._client = client
        self.queue = queue
        self._url = queue if queue.startswith(("https://", "http://")) else None
        self._lock = threading.Lock()
        self._max_bytes: int | None = None

    @property
    def url(self) -> str:
        with self._lock:
            if self._url is None:
                with checked(f"queue {self.queue}"):
                    url = self._client.get_queue_url(QueueName=self.queue).get("QueueUrl")
                if not url:  # a reply cut short parses as an empty document
                    raise TransientError(f"queue {self.queue}: the answer holds no QueueUrl")
                self._url = url
            return self._url

    def attributes(self, *names: QueueAttributeNameType) -> dict[str, str]:
        """Read attributes, proving the queue exists and may be used (whether URL or name)."""
        with checked(f"queue {self.queue}"):
            response = self._client.get_queue_attributes(
                QueueUrl=self.url, AttributeNames=list(names)
            )
        return {str(name): value for name, value in response.get("Attributes", {}).items()}

    def max_bytes(self) -> int:
        """The queue's MaximumMessageSize, read once (and the queue so proven usable)."""
        if self._max_bytes is None:
            size = self.attributes("MaximumMessageSize").get("MaximumMessageSize")
            self._max_bytes = int(size) if size else MAX_NOTIFICATION_BYTES
        return self._max_bytes


@contextmanager
def checked(location: str) -> Iterator[None]:
    """A queue that is missing or forbidden stops the start-up; anything else may pass."""
    try:
        with transient_only(location):
            yield
    except TransientError as error:
        cause = error.__cause__
        if isinstance(cause, ClientError) and error_code(cause) in MISCONFIGURED:
            raise ConfigurationError(f"{location}: {error_code(cause)}") from cause
        raise


def _received(message: MessageTypeDef) -> ReceivedMessage:
    attributes = message.get("Attributes", {})
    values = {
        name: value["StringValue"]
        for name, value in message.get("MessageAttributes", {}).items()
        if "StringValue" in value
    }
    sent_ms = int(attributes.get("SentTimestamp", "0"))
    return ReceivedMessage(
        message_id=message["MessageId"],
        body=message.get("Body", ""),
        receipt=message["ReceiptHandle"],
        sent_at=datetime.fromtimestamp(sent_ms / 1000, UTC) if sent_ms else datetime.now(UTC),
        receive_count=int(attributes.get("ApproximateReceiveCount", "1")),
        group=attributes.get("MessageGroupId"),
        continued=continuation_of(values),
    )


def _gone(cause: BaseException | None) -> bool:
    """Whether a failed visibility change says the message is no longer ours to change."""
    if not isinstance(cause, ClientError):
        return False
    code = error_code(cause)
    if code in GONE:
        return True
    message = str(cause.response.get("Error", {}).get("Message", ""))
    return code == INVALID_PARAMETER and "parameter ReceiptHandle" in message


class SqsQueue:
    def __init__(self, client: SQSClient, queue: str) -> None:
        self._client = client
        self.address = QueueAddress(client, queue)

    def receive(
        self, max_messages: int, wait_seconds: int, visibility_seconds: int
    ) -> list[ReceivedMessage]:
        with transient_only(f"receive from {self.address.queue}"):
            response = self._client.receive_message(
                QueueUrl=self.address.url,
                MaxNumberOfMessages=max_messages,
                WaitTimeSeconds=wait_seconds,
                VisibilityTimeout=visibility_seconds,
                MessageSystemAttributeNames=SYSTEM_ATTRIBUTES,
                MessageAttributeNames=list(CONTINUATION_ATTRIBUTES),
            )
        return [_received(message) for message in response.get("Messages", [])]

    def delete(self, message: ReceivedMessage) -> None:
        with transient_only(f"delete {message.message_id}"):
            self._client.delete_message(QueueUrl=self.address.url, ReceiptHandle=message.receipt)

    def set_visibility(self, message: ReceivedMessage, seconds: int) -> None:
        try:
            with transient_only(f"change visibility of {message.message_id}"):
                self._client.change_message_visibility(
                    QueueUrl=self.address.url,
                    ReceiptHandle=message.receipt,
                    VisibilityTimeout=seconds,
                )
        except TransientError as error:
            if not _gone(error.__cause__):
                raise

    def send(
        self, body: str, continuation: Continuation | None = None, group: str | None = None
    ) -> str:
        """A new job; on a FIFO queue in a group of its own, so jobs run side by side. A
        continuation goes in the job's group, deduplicated by the job and its checkpoint.

        A body longer than the queue takes is refused before it is sent (ConfigurationError),
        saying how to send such a job; the size is read only for a body that may not fit, and
        if it cannot be read (no sqs:GetQueueAttributes), SQS decides.
        """
        attributes = {} if continuation is None else continuation_attributes(continuation)
        size = len(body.encode()) + sum(  # SQS counts attributes' names, types and values
            len(f"{name}String{value}".encode()) for name, value in attributes.items()
        )
        if size > SMALLEST_MAXIMUM:
            try:
                limit = self.address.max_bytes()
            except (ConfigurationError, TransientError):
                limit = size
            if size > limit:
                raise ConfigurationError(
                    f"the job is {size:,} bytes, over the queue's MaximumMessageSize "
                    f"{limit:,} bytes: give its file items as files_from (an object in S3)"
                )
        message: SendMessageRequestTypeDef = {"QueueUrl": self.address.url, "MessageBody": body}
        fifo = is_fifo(self.address.queue)
        if attributes:
            message["MessageAttributes"] = {
                name: {"DataType": "String", "StringValue": value}
                for name, value in attributes.items()
            }
        if fifo and continuation is not None:
            message["MessageGroupId"] = group or continuation.job_id
            key = f"{continuation.job_id}\ncontinuation\n{continuation.holds}"
            message["MessageDeduplicationId"] = hashlib.sha256(key.encode()).hexdigest()
        elif fifo:
            message["MessageGroupId"] = message["MessageDeduplicationId"] = uuid.uuid4().hex
        with transient_only(f"send to {self.address.queue}"):
            response = self._client.send_message(**message)
        return response["MessageId"]

    def redrive_limit(self) -> int | None:
        policy = self.address.attributes("RedrivePolicy").get("RedrivePolicy")
        if not policy:
            return None
        try:
            return int(json.loads(policy)["maxReceiveCount"])
        except (ValueError, KeyError, TypeError) as error:
            raise ConfigurationError(
                f"queue {self.address.queue}: unreadable RedrivePolicy {policy!r}"
            ) from error


class SqsNotifier:
    """Publishes notifications as JSON; `status` is also a message attribute for filtering."""

    def __init__(self, client: SQSClient, queue: str) -> None:
        self._client = client
        self.address = QueueAddress(client, queue)

    def publish(
        self, notification: JobSucceeded | JobFailed | JobRunning, group: str | None = None
    ) -> None:
        message: SendMessageRequestTypeDef = {
            "QueueUrl": self.address.url,
            "MessageBody": notification_body(notification),
            "MessageAttributes": {
                "status": {"DataType": "String", "StringValue": notification.status}
            },
        }
        if is_fifo(self.address.queue):
            message["MessageGroupId"] = group or notification.job_id
            message["MessageDeduplicationId"] = deduplication_id(notification)
        with transient_only(f"notify {self.address.queue}"):
            self._client.send_message(**message)

    def check(self) -> None:
        if (size := self.max_bytes()) < MIN_NOTIFICATION_BYTES:
            raise ConfigurationError(
                f"queue {self.address.queue}: MaximumMessageSize {size:,} is under the "
                f"{MIN_NOTIFICATION_BYTES:,} bytes a notification may need"
            )

    def max_bytes(self) -> int:
        """Read once (the first call also proves the queue exists and may be used)."""
        return self.address.max_bytes()
