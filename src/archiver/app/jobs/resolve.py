"""A job made concrete before it is planned: an offloaded body (SQS Extended Client) read,
its `files_from` list read, each `prefix` listed.

Bounded: a list object is read only up to `MAX_FILE_LIST_BYTES`, and listing stops as soon as
the files counted pass `MAX_FILES`. Every bucket is checked against the allowlist before
anything in it is read or listed.
"""

from __future__ import annotations

from archiver.domain.errors import (
    ErrorCode,
    InvalidPayload,
    ObjectUnavailable,
    PermanentError,
    Unavailable,
)
from archiver.domain.file_list import parse_file_list
from archiver.domain.job import FileSpec, JobRequest, ObjectRef, parse_job
from archiver.domain.offload import offloaded_payload
from archiver.domain.plan import ArchivePolicy, check_origins, too_many_files
from archiver.domain.policy import source_failure
from archiver.domain.ports import ObjectInfo, ObjectStore

MAX_FILE_LIST_BYTES = 64 * 1024 * 1024
"""A `files_from` object's largest size: ~600,000 items of ~100 bytes."""

MAX_OFFLOADED_BYTES = 64 * 1024 * 1024
"""An offloaded message body's largest size (a job of ~600,000 files)."""

Listings = dict[int, list[ObjectInfo]]
"""What each `prefix` item (by its index in the items) listed, in key order."""


def read_text(store: ObjectStore, ref: ObjectRef, limit: int, what: str) -> str:
    """A small UTF-8 document from the store. PermanentError if missing, too large or not text."""
    try:
        info = store.stat(ref)
        if info.size > limit:
            raise InvalidPayload(
                f"{what} is {info.size:,} bytes; the limit is {limit:,}", [str(ref)]
            )
        data = store.fetch(ref, 0, info.size, info.etag)
    except ObjectUnavailable as unavailable:
        raise source_failure([unavailable]) from unavailable
    try:
        return bytes(data).decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidPayload(f"{what} is not UTF-8 text: {error}", [str(ref)]) from None


def read_job(store: ObjectStore, body: str, policy: ArchivePolicy) -> JobRequest:
    """The job in a message body, or in the S3 object an SQS Extended Client put it in."""
    pointer = offloaded_payload(body)
    if pointer is None:
        return parse_job(body)
    if not policy.allows(pointer.bucket):
        raise PermanentError(
            ErrorCode.SOURCE_BUCKET_NOT_ALLOWED,
            "the offloaded body is in a bucket this archiver may not read "
            "(see S3_ALLOWED_SOURCE_BUCKETS)",
            [str(pointer)],
        )
    what = f"the offloaded body {pointer}"
    text = read_text(store, pointer, MAX_OFFLOADED_BYTES, what)
    try:
        return parse_job(text, what)
    except InvalidPayload as invalid:
        if invalid.message.startswith(what):
            raise
        raise InvalidPayload(f"{what}: {invalid.message}", [str(pointer)]) from None


def resolve(
    store: ObjectStore, request: JobRequest, policy: ArchivePolicy
) -> tuple[JobRequest, Listings]:
    """The request with its file items in `files`, and what its prefixes list.

    Raises PermanentError (a bad list, a refused bucket, too many files, a prefix that may not
    be listed) or TransientError.
    """
    check_origins(request, policy)
    if request.files_from is not None:
        ref = FileSpec(source=request.files_from).ref(policy.source_bucket)
        text = read_text(store, ref, MAX_FILE_LIST_BYTES, f"files_from {ref}")
        files = parse_file_list(text, "files_from")
        if not files:
            raise InvalidPayload(f"files_from {ref} lists no file", [str(ref)])
        if len(files) > policy.max_files:
            raise too_many_files(len(files), policy)
        request = request.model_copy(update={"files": files})
        check_origins(request, policy)  # the items the list names
    return request, _listed(store, request, policy)


def _listed(store: ObjectStore, request: JobRequest, policy: ArchivePolicy) -> Listings:
    listings: Listings = {}
    count = sum(1 for spec in request.items if spec.prefix is None)
    for index, spec in enumerate(request.items):
        if spec.prefix is None:
            continue
        found: list[ObjectInfo] = []
        try:
            for info in store.list_prefix(spec.ref(policy.source_bucket)):
                found.append(info)
                count += 1
                if count > policy.max_files:
                    raise too_many_files(count, policy)
        except ObjectUnavailable as unavailable:
            if unavailable.reason is not Unavailable.NOT_FOUND:  # no bucket: nothing under it
                raise source_failure([unavailable]) from unavailable
        listings[index] = found
    return listings
