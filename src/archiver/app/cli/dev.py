"""The embedded endpoint: a moto server with the buckets and queues of the local flow."""

from __future__ import annotations

import json
import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from archiver.adapters.sqs import FIFO_SUFFIX, is_fifo
from archiver.domain.errors import ConfigurationError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

DEV_PORT = 4566
DEV_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",  # moto accepts any credentials
    "AWS_DEFAULT_REGION": "us-east-1",
    "S3_SOURCE_BUCKET": "source-images",
    "S3_DESTINATION_BUCKET": "zip-storage",
    "SQS_SOURCE_QUEUE": "input-queue",
    "SQS_DESTINATION_QUEUE": "output-queue",
    "METRICS_ENABLED": "0",  # no CloudWatch here: keep stdout for people
    "SQS_WAIT_TIME_SECONDS": "1",  # a stop finishes the poll under way: Ctrl-C within 1 s
}
MAX_RECEIVE_COUNT = 3


@dataclass(frozen=True)
class DevResources:
    source_bucket: str
    destination_bucket: str
    source_queue_url: str
    dead_letter_queue_url: str
    destination_queue_url: str


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def create_resources(
    s3: S3Client,
    sqs: SQSClient,
    *,
    source_bucket: str = "source-images",
    destination_bucket: str = "zip-storage",
    source_queue: str = "input-queue",
    destination_queue: str = "output-queue",
    visibility_timeout: int = 300,
    max_receive_count: int = MAX_RECEIVE_COUNT,
) -> DevResources:
    """Create (or reuse) the buckets and queues: the source queue redrives to `<name>-dlq`
    (`<name>-dlq.fifo` for a FIFO queue: a name ending in `.fifo` makes one)."""
    for bucket in (source_bucket, destination_bucket):
        s3.create_bucket(Bucket=bucket)
    base = source_queue.removesuffix(FIFO_SUFFIX)
    dlq_name = f"{base}-dlq{FIFO_SUFFIX}" if is_fifo(source_queue) else f"{base}-dlq"
    dlq_url = sqs.create_queue(QueueName=dlq_name, Attributes=_fifo(dlq_name))["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])
    redrive = {"deadLetterTargetArn": dlq_arn["Attributes"]["QueueArn"]}
    redrive["maxReceiveCount"] = str(max_receive_count)
    attributes: Any = {
        "RedrivePolicy": json.dumps(redrive),
        "VisibilityTimeout": str(visibility_timeout),
        **_fifo(source_queue),
    }
    source_url = sqs.create_queue(QueueName=source_queue, Attributes=attributes)["QueueUrl"]
    destination_url = sqs.create_queue(
        QueueName=destination_queue, Attributes=_fifo(destination_queue)
    )["QueueUrl"]
    return DevResources(source_bucket, destination_bucket, source_url, dlq_url, destination_url)


def _fifo(name: str) -> Any:
    return {"FifoQueue": "true"} if is_fifo(name) else {}


def banner(endpoint: str, resources: DevResources) -> str:
    """What `archiver dev` prints: where things are, and what to paste into another shell."""
    exports = " ".join(
        f"{name}={DEV_ENVIRONMENT[name]}"
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")
    )
    job = json.dumps({"files": [{"source": "example/photo.png"}]})
    group = ""
    if is_fifo(resources.source_queue_url):  # a FIFO queue wants a group and a deduplication id
        group = " --message-group-id job-1 --message-deduplication-id job-1"
    return "\n".join(
        [
            "archiver dev: an embedded S3/SQS endpoint and a worker on it (Ctrl-C stops both).",
            "It sets S3_* and SQS_* to the names below, whatever the shell had.",
            "",
            f"  endpoint  {endpoint}",
            f"  buckets   {resources.source_bucket} (sources), "
            f"{resources.destination_bucket} (archives)",
            f"  jobs      {resources.source_queue_url}",
            f"            dead letters: {resources.dead_letter_queue_url}",
            f"  answers   {resources.destination_queue_url}",
            "",
            "In another shell:",
            f"  export AWS_ENDPOINT_URL={endpoint} {exports}",
            f"  aws s3 cp photo.png s3://{resources.source_bucket}/example/photo.png",
            f"  aws sqs send-message --queue-url {resources.source_queue_url} "
            f"--message-body '{job}'{group}",
            "",
        ]
    )


def dev_environment(*, fifo: bool = False) -> dict[str, str]:
    """The local flow's names and moto's test credentials; `fifo`: FIFO queues (`.fifo`)."""
    if not fifo:
        return dict(DEV_ENVIRONMENT)
    queues = ("SQS_SOURCE_QUEUE", "SQS_DESTINATION_QUEUE")
    return {**DEV_ENVIRONMENT, **{name: DEV_ENVIRONMENT[name] + FIFO_SUFFIX for name in queues}}


@contextmanager
def embedded_endpoint(
    host: str = "127.0.0.1", port: int = DEV_PORT, *, fifo: bool = False
) -> Iterator[str]:
    """Run a moto server in this process and point this process's settings at it."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as missing:
        raise ConfigurationError(
            "the embedded endpoint needs moto: pip install 'archiver[demo]' (make demo does)"
        ) from missing
    with socket.socket() as probe:
        if probe.connect_ex((host, port)) == 0:
            raise ConfigurationError(f"{host}:{port} is already in use (another archiver dev?)")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    endpoint = f"http://{host}:{port}"
    # The local flow's names and moto's test credentials, whatever the shell had.
    os.environ.update(dev_environment(fifo=fifo), AWS_ENDPOINT_URL=endpoint)
    try:
        yield endpoint
    finally:
        server.stop()
