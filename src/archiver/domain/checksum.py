"""CRC-32 arithmetic over pieces, and the text form S3 uses for it (`ChecksumCRC32`).

CRC-32 is linear: the checksum of A+B follows from those of A and B and the length of B
(`crc32_combine`), so pieces checksummed apart, or only known by their checksums (an object's
stored checksum, its parts'), give the whole's without reading it again.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable

from isal import isal_zlib


def crc32_text(crc: int) -> str:
    """`crc32_text(0x12345678) == "EjRWeA=="`, the string S3 returns with checksum mode on."""
    return base64.b64encode(crc.to_bytes(4, "big")).decode("ascii")


def crc32_value(text: str) -> int | None:
    """The inverse of `crc32_text`; None for anything else (a composite value, say)."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return int.from_bytes(raw, "big") if len(raw) == 4 else None


def combine(pieces: Iterable[tuple[int, int]]) -> int:
    """The CRC-32 of consecutive pieces given as (crc, length)."""
    crc = 0
    for piece_crc, length in pieces:
        crc = isal_zlib.crc32_combine(crc, piece_crc, length)
    return crc


def crc32_of_rest(whole: int, head: int, rest_length: int) -> int:
    """The CRC-32 of what follows a head, from the whole's and the head's: since
    whole = combine(head, rest) = shift(head, rest_length) xor rest."""
    return whole ^ isal_zlib.crc32_combine(head, 0, rest_length)
