"""Message bodies an Amazon SQS Extended Client offloaded to S3: the pointer left on the queue."""

from __future__ import annotations

from archiver.domain.errors import InvalidPayload
from archiver.domain.job import ObjectRef, loads_strict, split_source

POINTER_CLASSES = frozenset(
    {
        "software.amazon.payloadoffloading.PayloadS3Pointer",  # Extended Client libraries 2.x
        "com.amazon.sqs.javamessaging.MessageS3Pointer",  # their legacy form
    }
)


def offloaded_payload(body: str) -> ObjectRef | None:
    """Where an Amazon SQS Extended Client put a large message body (its pointer:
    `[class, {"s3BucketName", "s3Key"}]`); None for an ordinary body. Raises InvalidPayload
    for a pointer without a usable address."""
    if not body.lstrip().startswith("["):  # a job is an object: no need to parse it twice
        return None
    try:
        document = loads_strict(body)
    except (ValueError, RecursionError):
        return None
    if not (isinstance(document, list) and len(document) == 2 and document[0] in POINTER_CLASSES):
        return None
    pointer = document[1]
    bucket = pointer.get("s3BucketName") if isinstance(pointer, dict) else None
    key = pointer.get("s3Key") if isinstance(pointer, dict) else None
    if not isinstance(bucket, str) or not isinstance(key, str):
        raise InvalidPayload("the offloaded-payload pointer has no s3BucketName and s3Key")
    try:
        split_source(f"s3://{bucket}/{key}")
    except ValueError as error:
        raise InvalidPayload(f"the offloaded-payload pointer is unusable: {error}") from None
    return ObjectRef(bucket, key)
