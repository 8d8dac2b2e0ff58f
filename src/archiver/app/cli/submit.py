"""`archiver submit`: put a job on SQS_SOURCE_QUEUE, from a job file or from options, and with
`--wait` print its answer from SQS_DESTINATION_QUEUE and exit with its status."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from archiver.adapters.sqs import QueueAddress
from archiver.app.cli.usage import UsageError, configured, job_text
from archiver.domain.errors import ConfigurationError, PermanentError
from archiver.domain.job import JobRequest, describe_errors, parse_job

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

ANSWERS = ("succeeded", "failed")  # a `running` notification is progress, not the answer
TIMED_OUT = 3  # the exit code when no answer came in time (0 succeeded, 1 failed, 2 usage)


def source_item(option: str) -> dict[str, str]:
    """The file item of `--source KEY[:FOLDER]`, where KEY may be an s3:// URI; the last `:`
    splits. Validated with the job, so that errors name the item (`files.N`)."""
    scheme = "s3://" if option.startswith("s3://") else ""
    body = option[len(scheme) :]
    key, colon, destination = body.rpartition(":")
    item = {"source": scheme + (key if colon else body)}
    if colon and destination:
        item["destination"] = destination
    return item


def _metadata_option(metadata: str) -> dict[str, Any]:
    try:
        parsed = json.loads(metadata)
    except ValueError as error:
        raise UsageError(f"--metadata is not JSON: {error}") from None
    if not isinstance(parsed, dict):
        raise UsageError("--metadata must be a JSON object, such as '{\"user\": 7}'")
    return parsed


def job_request(
    job_file: Path | None, sources: Sequence[str], name: str | None, metadata: str | None
) -> JobRequest:
    """The job the options describe: a job file, or `--source`s; `--name` and `--metadata`
    set the archive's name and the echoed metadata of either."""
    if job_file is not None and sources:
        raise UsageError("give a job file or --source options, not both")
    if job_file is None and not sources:
        raise UsageError("give a job file (archiver submit job.json) or at least one --source")
    update: dict[str, Any] = {}
    if metadata is not None:
        update["metadata"] = _metadata_option(metadata)
    if name is not None:
        update["archive"] = {"name": name}
    try:
        if job_file is not None:
            document = parse_job(job_text(job_file), f"the job file {job_file}").model_dump(
                exclude_none=True
            )
        else:
            document = {"files": [source_item(option) for option in sources]}
        return JobRequest.model_validate({**document, **update})
    except ValidationError as error:
        raise UsageError(f"the job is not valid: {describe_errors(error)}") from None
    except PermanentError as error:
        raise UsageError(str(error)) from None


def await_answer(
    sqs: SQSClient, queue_url: str, job_id: str, timeout: float, *, take: bool = False
) -> dict[str, Any] | None:
    """The job's answer (`succeeded` or `failed`) from the notification queue, or None after
    `timeout` seconds. Every message read is put back at once, the answer too unless `take`:
    downstream consumers still receive all of them."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        response = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=max(1, min(5, int(left))),
            VisibilityTimeout=30,
        )
        answer: dict[str, Any] | None = None
        for message in response.get("Messages", []):
            handle = message["ReceiptHandle"]
            body = _json_object(message.get("Body", ""))
            mine = body.get("job_id") == job_id and body.get("status") in ANSWERS
            if mine:
                answer = body
            if mine and take:
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=handle)
            else:
                sqs.change_message_visibility(
                    QueueUrl=queue_url, ReceiptHandle=handle, VisibilityTimeout=0
                )
        if answer is not None:
            return answer
    return None


def _json_object(text: str) -> dict[str, Any]:
    try:
        parsed = json.loads(text)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def submit(
    job_file: Path | None,
    sources: Sequence[str],
    *,
    name: str | None = None,
    metadata: str | None = None,
    wait: float | None = None,
) -> int:
    request = job_request(job_file, sources, name, metadata)
    required = ["SQS_SOURCE_QUEUE"] + (["SQS_DESTINATION_QUEUE"] if wait is not None else [])
    settings, container = configured(required)
    try:
        job_id = container.source_queue().send(request.model_dump_json(exclude_none=True))
    except ConfigurationError as refused:  # too long for the queue, or no such queue
        source = f"SQS_SOURCE_QUEUE={settings.sqs_source_queue!r}"
        raise ConfigurationError(f"{source}: {refused}") from refused
    print(job_id, flush=True)
    if wait is None:
        return 0
    assert settings.sqs_destination_queue is not None  # required above
    sqs = container.sqs_client()
    answer = await_answer(sqs, QueueAddress(sqs, settings.sqs_destination_queue).url, job_id, wait)
    if answer is None:
        print(f"archiver: no answer to job {job_id} within {wait:g} s", file=sys.stderr)
        return TIMED_OUT
    print(json.dumps(answer, indent=2))
    return 0 if answer["status"] == "succeeded" else 1
