"""Structural checks on a ZIP file beyond what `zipfile` verifies when reading."""

from __future__ import annotations

import io
import struct
import zipfile
from dataclasses import dataclass

LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")
LOCAL_SIGNATURE = b"PK\x03\x04"
ZIP64_END_SIGNATURE = b"PK\x06\x06"
DATA_DESCRIPTOR_FLAG = 0x08
UTF8_FLAG = 0x800


@dataclass(frozen=True)
class Layout:
    names: list[str]
    zip64_end_record: bool
    local_zip64: list[bool]


def check_layout(data: bytes) -> Layout:
    """Assert: no data descriptors, UTF-8 flag exactly on non-ASCII names, local == central."""
    archive = zipfile.ZipFile(io.BytesIO(data))
    local_zip64 = []
    for info in archive.infolist():
        fields = LOCAL_HEADER.unpack_from(data, info.header_offset)
        signature, _, flags, method, _, _, crc, compressed, size, name_length, extra_length = fields
        assert signature == LOCAL_SIGNATURE, info.filename
        assert not flags & DATA_DESCRIPTOR_FLAG, f"{info.filename}: data descriptor"
        assert not info.flag_bits & DATA_DESCRIPTOR_FLAG, f"{info.filename}: data descriptor"
        assert bool(flags & UTF8_FLAG) == (not info.filename.isascii()), info.filename
        assert flags == info.flag_bits, info.filename
        assert method == info.compress_type, info.filename
        assert crc == info.CRC, f"{info.filename}: local CRC differs from central"
        name_start = info.header_offset + LOCAL_HEADER.size
        name = data[name_start : name_start + name_length]
        assert name.decode("utf-8" if flags & UTF8_FLAG else "cp437") == info.filename
        uses_zip64 = size == 0xFFFFFFFF or compressed == 0xFFFFFFFF
        if not uses_zip64:
            assert (size, compressed) == (info.file_size, info.compress_size), info.filename
        local_zip64.append(uses_zip64)
        assert extra_length >= (20 if uses_zip64 else 0)
    assert archive.testzip() is None
    return Layout(
        names=archive.namelist(),
        zip64_end_record=ZIP64_END_SIGNATURE in data[-(22 + 56 + 20 + 65_536) :],
        local_zip64=local_zip64,
    )


def contents(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}
