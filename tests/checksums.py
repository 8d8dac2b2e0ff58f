"""CRC-64/NVME for test sources: what the AWS CLI v2 and S3 itself (since 2025) stamp objects
with. botocore computes it only with awscrt, which archiver does not need; a test that uploads a
CRC64NVME source sends this value itself."""

from __future__ import annotations

import base64

POLYNOMIAL = 0xAD93D23594C93659  # CRC-64/NVME, reflected in the table below
_REFLECTED = int(f"{POLYNOMIAL:064b}"[::-1], 2)
_MASK = (1 << 64) - 1


def _entry(byte: int) -> int:
    value = byte
    for _ in range(8):
        value = (value >> 1) ^ _REFLECTED if value & 1 else value >> 1
    return value


_TABLE = tuple(_entry(byte) for byte in range(256))


def crc64nvme(data: bytes) -> int:
    """About 16 MiB/s: fine for test sources of a few MiB."""
    value = _MASK
    table = _TABLE
    for byte in data:
        value = table[(value ^ byte) & 0xFF] ^ (value >> 8)
    return value ^ _MASK


def crc64nvme_text(data: bytes) -> str:
    """As S3 writes it: base64 of the 8 big-endian bytes."""
    return base64.b64encode(crc64nvme(data).to_bytes(8, "big")).decode("ascii")
