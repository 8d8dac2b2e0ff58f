"""Download links and the headers that make a browser save the archive under its name."""

from __future__ import annotations

from urllib.parse import quote


def public_url(base_url: str, key: str) -> str:
    """`base_url` joined to the percent-encoded key with exactly one `/` between them."""
    return f"{base_url.rstrip('/')}/{quote(key.lstrip('/'), safe='/')}"


def content_disposition(filename: str) -> str:
    """An `attachment` header with an ASCII fallback and an RFC 5987 UTF-8 name when needed."""
    fallback = "".join(
        char if char.isascii() and char.isprintable() and char not in '"\\' else "_"
        for char in filename
    )
    header = f'attachment; filename="{fallback}"'
    if fallback != filename:
        header += f"; filename*=UTF-8''{quote(filename, safe='')}"
    return header
