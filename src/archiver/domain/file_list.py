"""A job's file items kept in S3 (`files_from`): one JSON array, or JSON Lines."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from archiver.domain.errors import InvalidPayload
from archiver.domain.job import FileSpec, decode_document, describe_errors


def parse_file_list(text: str, what: str) -> list[FileSpec]:
    """File items from `files_from`: one JSON array, or JSON Lines (one item per line, blank
    lines skipped). Errors name the item (array) or the line. Raises InvalidPayload."""
    if text.lstrip().startswith("["):
        items = decode_document(text, what)
        if not isinstance(items, list):
            raise InvalidPayload(f"{what} is not a JSON array of file items")
        return [_file_item(item, f"{what} item {n}") for n, item in enumerate(items)]
    specs = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            specs.append(
                _file_item(decode_document(line, f"{what} line {number}"), f"{what} line {number}")
            )
    return specs


def _file_item(item: Any, where: str) -> FileSpec:
    try:
        return FileSpec.model_validate(item)
    except ValidationError as error:
        raise InvalidPayload(f"{where}: {describe_errors(error)}") from None
