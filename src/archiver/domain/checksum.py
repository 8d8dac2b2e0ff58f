"""The archive's CRC-32 as S3 reports it: `ChecksumCRC32`, base64 of 4 big-endian bytes."""

from __future__ import annotations

import base64


def crc32_text(crc: int) -> str:
    """`crc32_text(0x12345678) == "EjRWeA=="`, the string S3 returns with checksum mode on."""
    return base64.b64encode(crc.to_bytes(4, "big")).decode("ascii")
