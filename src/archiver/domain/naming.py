"""Entry names inside the archive: safe, portable, unique ignoring case, never dropped."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

MAX_SEGMENT_BYTES = 255
"""Longest file or folder name most file systems accept (ext4, APFS, NTFS in UTF-16 units)."""

MAX_PATH_BYTES = 1024
"""Longest entry path (UTF-8), as long as an S3 key: Info-ZIP `unzip` and `bsdtar` extract it
whole, leaving room below Linux's PATH_MAX (4,096) for the folder it is extracted into."""

FALLBACK_NAME = "file"

# Bidirectional embedding/override/isolate controls: invisible, and used to disguise extensions.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_DRIVE = re.compile(r"^[A-Za-z]:")


def _is_unsafe_char(char: str) -> bool:
    return unicodedata.category(char) == "Cc" or char in _BIDI_CONTROLS


def _truncate_utf8(text: str, limit: int) -> str:
    """At most `limit` UTF-8 bytes, still NFC (normalising can lengthen a cut: cut deeper)."""
    encoded = text.encode("utf-8")
    cut_at = limit
    while len(encoded) > limit:
        text = unicodedata.normalize("NFC", encoded[:cut_at].decode("utf-8", errors="ignore"))
        encoded = text.encode("utf-8")
        cut_at -= 1
    return text


def _fit_segment(segment: str) -> str:
    """Shorten an over-long name, keeping its extension so the file still opens."""
    if len(segment.encode("utf-8")) <= MAX_SEGMENT_BYTES:
        return segment
    stem, dot, ext = segment.rpartition(".")
    if dot and stem and len(ext.encode("utf-8")) < 16:
        budget = MAX_SEGMENT_BYTES - len(ext.encode("utf-8")) - 1
        return f"{_truncate_utf8(stem, budget)}.{ext}"
    return _truncate_utf8(segment, MAX_SEGMENT_BYTES)


def _without_drive(segments: list[str]) -> list[str]:
    """Drop drive letters from the path's first segment, however many cleaning brought there."""
    while segments and _DRIVE.match(segments[0]):
        rest = _DRIVE.sub("", segments[0], count=1)  # `C:..` leaves `..`: dropped too
        segments = ([rest] if rest not in ("", ".", "..") else []) + segments[1:]
    return segments


def clean_segments(path: str) -> list[str]:
    """Split a user-supplied path into segments that cannot escape the archive root.

    Control and bidirectional characters removed; backslashes count as separators; empty,
    `.` and `..` segments and leading drive letters are dropped; NFC last, so what is left
    is normalised.
    """
    text = "".join(char for char in path if not _is_unsafe_char(char))
    text = unicodedata.normalize("NFC", text.replace("\\", "/"))
    segments = [
        _fit_segment(segment) for segment in text.split("/") if segment not in ("", ".", "..")
    ]
    return _without_drive(segments)


def archive_file_name(name: str) -> str | None:
    """A download name from a job: cleaned like an entry name, folders joined with `_`, ending
    in `.zip`; None when nothing usable is left."""
    cleaned = "_".join(clean_segments(name))
    if not cleaned.strip(" ."):
        return None
    if not cleaned.lower().endswith(".zip"):
        cleaned += ".zip"
    return _fit_segment(cleaned)


def file_segments(destination: str | None, name: str | None, source_key: str) -> list[str]:
    """Folder segments plus a non-empty file name: `name`, else the source key's last part."""
    folder = clean_segments(destination or "")
    leaf = clean_segments(name or "")  # an explicit name may carry sub-folders
    if not leaf:
        leaf = clean_segments(source_key)[-1:]
    return _without_drive(folder + (leaf or [FALLBACK_NAME])) or [FALLBACK_NAME]


def _fold(path: str) -> str:
    return unicodedata.normalize("NFC", path.casefold())


def _numbered(segments: Sequence[str], number: int) -> str:
    *folders, leaf = segments
    stem, dot, ext = leaf.rpartition(".")
    if not dot or not stem:
        stem, ext = leaf, ""
    suffix = f" ({number})"
    budget = (
        MAX_SEGMENT_BYTES
        - len(suffix.encode("utf-8"))
        - (len(ext.encode("utf-8")) + 1 if ext else 0)
    )
    renamed = f"{_truncate_utf8(stem, budget)}{suffix}" + (f".{ext}" if ext else "")
    return "/".join([*folders, renamed])


def assign_entry_names(paths: Sequence[Sequence[str]]) -> list[str]:
    """Join each path and make it unique ignoring case, in job order.

    Later duplicates become `name (1).ext`, `name (2).ext`; a file never takes a name that
    another entry uses as a folder, so extraction never meets a file where it needs a folder.
    """
    folders = {_fold("/".join(path[:depth])) for path in paths for depth in range(1, len(path))}
    taken: set[str] = set()
    next_number: dict[str, int] = {}
    names = []
    for path in paths:
        candidate = "/".join(path)
        base = _fold(candidate)
        number = next_number.get(base, 0)
        while _fold(candidate) in taken or _fold(candidate) in folders:
            number += 1
            candidate = _numbered(path, number)
        next_number[base] = number
        taken.add(_fold(candidate))
        names.append(candidate)
    return names
