"""What a decoded JSON document may hold so that archiver can echo it back through SQS.

JSON text may escape a lone UTF-16 surrogate (`"\\ud800"`); decoded, it is a string that has
no UTF-8 form, so no notification carrying it could ever be sent. Metadata is echoed whole,
so its depth and size are bounded well inside what a notification can carry.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

MAX_METADATA_DEPTH = 32
MAX_METADATA_BYTES = 256 * 1024
_SURROGATES = range(0xD800, 0xE000)


def _has_surrogate(text: str) -> bool:
    # Fast path: a string with a surrogate cannot be encoded strictly.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return any(ord(char) in _SURROGATES for char in text)
    return False


def _where(path: tuple[str | int, ...]) -> str:
    return ".".join(str(part) for part in path) or "body"


def _walk(document: Any) -> Iterator[tuple[tuple[str | int, ...], Any, int]]:
    """Every value with its path and depth (containers count one level each), iteratively."""
    stack: list[tuple[tuple[str | int, ...], Any, int]] = [((), document, 0)]
    while stack:
        path, value, depth = stack.pop()
        yield path, value, depth
        if isinstance(value, dict):
            stack.extend(((*path, key), item, depth + 1) for key, item in value.items())
        elif isinstance(value, list):
            stack.extend(((*path, index), item, depth + 1) for index, item in enumerate(value))


def check_document(document: Any) -> str | None:
    """The first place where a document holds a string with no UTF-8 form, or None."""
    for path, value, _ in _walk(document):
        if isinstance(value, dict):
            for key in value:
                if isinstance(key, str) and _has_surrogate(key):
                    return f"{_where(path)}: a key holds a lone UTF-16 surrogate (no UTF-8 form)"
        elif isinstance(value, str) and _has_surrogate(value):
            return f"{_where(path)}: the text holds a lone UTF-16 surrogate (no UTF-8 form)"
    return None


def check_metadata(metadata: dict[str, Any]) -> None:
    """Raise ValueError unless the metadata can be echoed exactly as it was sent."""
    for path, value, depth in _walk(metadata):
        if depth > MAX_METADATA_DEPTH:
            raise ValueError(
                f"nested more than {MAX_METADATA_DEPTH} levels deep (at {_where(path[:4])}…)"
            )
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{_where(path)}: {value} is not a JSON number")
    problem = check_document(metadata)
    if problem is not None:
        raise ValueError(problem)
    size = metadata_bytes(metadata)
    if size > MAX_METADATA_BYTES:
        raise ValueError(f"{size:,} bytes as JSON; the limit is 256 KiB ({MAX_METADATA_BYTES:,})")


def metadata_bytes(metadata: dict[str, Any]) -> int:
    """The metadata's size as every notification echoes it (compact JSON, UTF-8)."""
    return len(json.dumps(metadata, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
