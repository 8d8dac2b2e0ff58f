"""Structural checks on a ZIP file beyond what `zipfile` verifies when reading."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")
LOCAL_SIGNATURE = b"PK\x03\x04"
ZIP64_END_SIGNATURE = b"PK\x06\x06"
DATA_DESCRIPTOR_FLAG = 0x08
UTF8_FLAG = 0x800
ZIP64_MARK = 0xFFFFFFFF
TIMESTAMP = 0x5455  # Info-ZIP extended timestamp
UNICODE_PATH = 0x7075  # Info-ZIP Unicode Path
AES = 0x9901  # WinZip AES


@dataclass(frozen=True)
class Layout:
    names: list[str]
    zip64_end_record: bool
    local_zip64: list[bool]


def extra_fields(extra: bytes) -> dict[int, bytes]:
    """An extra field's blocks by tag (APPNOTE 4.5)."""
    fields, position = {}, 0
    while position + 4 <= len(extra):
        tag, length = struct.unpack_from("<HH", extra, position)
        fields[tag] = extra[position + 4 : position + 4 + length]
        position += 4 + length
    assert position == len(extra), "an extra field runs past its end"
    return fields


def unix_times(archive: bytes | Path) -> dict[str, int]:
    """Each entry's modification time from its extended-timestamp field (0x5455)."""
    with _opened(archive) as file:
        times = {}
        for info in zipfile.ZipFile(file).infolist():
            flags, mtime = struct.unpack("<BI", extra_fields(info.extra)[TIMESTAMP])
            assert flags == 1, info.filename  # mtime only
            times[info.filename] = mtime
        return times


def unicode_path(extra: bytes, name_field: bytes) -> str | None:
    """The name a 0x7075 field gives, checked against the header's name field."""
    block = extra_fields(extra).get(UNICODE_PATH)
    if block is None:
        return None
    version, name_crc = struct.unpack_from("<BI", block)
    assert version == 1
    assert name_crc == zlib.crc32(name_field), "0x7075 names another name field"
    return block[5:].decode("utf-8")


def check_layout(archive: bytes | Path) -> Layout:
    """Assert: no data descriptors, UTF-8 flag exactly on non-ASCII names, local == central,
    the same timestamp, Unicode Path and AES fields in both headers (Unicode Path on non-ASCII
    names).

    Reads only headers (seeking), so it works on archives larger than memory.
    """
    with _opened(archive) as file:
        opened = zipfile.ZipFile(file)
        local_zip64 = []
        for info in opened.infolist():
            file.seek(info.header_offset)
            fields = LOCAL_HEADER.unpack(file.read(LOCAL_HEADER.size))
            signature, _, flags, method, _, _, crc, compressed, size, name_length, extra = fields
            assert signature == LOCAL_SIGNATURE, info.filename
            assert not flags & DATA_DESCRIPTOR_FLAG, f"{info.filename}: data descriptor"
            assert not info.flag_bits & DATA_DESCRIPTOR_FLAG, f"{info.filename}: data descriptor"
            assert bool(flags & UTF8_FLAG) == (not info.filename.isascii()), info.filename
            assert flags == info.flag_bits, info.filename
            assert method == info.compress_type, info.filename
            assert crc == info.CRC, f"{info.filename}: local CRC differs from central"
            name = file.read(name_length)
            assert name.decode("utf-8" if flags & UTF8_FLAG else "cp437") == info.filename
            local_extra = file.read(extra)
            local_fields, central_fields = extra_fields(local_extra), extra_fields(info.extra)
            for tag in (TIMESTAMP, UNICODE_PATH, AES):
                assert local_fields.get(tag) == central_fields.get(tag), (info.filename, tag)
            named = unicode_path(local_extra, name)
            assert named == (None if info.filename.isascii() else info.filename), info.filename
            uses_zip64 = ZIP64_MARK in (size, compressed)
            if uses_zip64:
                sizes = _zip64_sizes(local_extra)
                assert sizes == (info.file_size, info.compress_size), info.filename
            else:
                assert (size, compressed) == (info.file_size, info.compress_size), info.filename
            local_zip64.append(uses_zip64)
        file.seek(0, io.SEEK_END)
        end = file.tell()
        file.seek(max(0, end - (22 + 56 + 20 + 65_536)))
        tail = file.read()
        return Layout(
            names=opened.namelist(),
            zip64_end_record=ZIP64_END_SIGNATURE in tail,
            local_zip64=local_zip64,
        )


def _zip64_sizes(extra: bytes) -> tuple[int, int]:
    position = 0
    while position + 4 <= len(extra):
        tag, length = struct.unpack_from("<HH", extra, position)
        if tag == 0x0001:
            size, compressed = struct.unpack_from("<QQ", extra, position + 4)
            return size, compressed
        position += 4 + length
    raise AssertionError("ZIP64 sizes announced but no ZIP64 extra field")


@contextmanager
def _opened(archive: bytes | Path) -> Iterator[BinaryIO]:
    if isinstance(archive, Path):
        with archive.open("rb") as file:
            yield file
    else:
        yield io.BytesIO(archive)


def contents(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}
