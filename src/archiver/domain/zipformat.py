"""The ZIP format as archiver writes it: pure bytes, no I/O (PKWARE APPNOTE 6.3.10).

Every entry's CRC-32 and sizes are in its local header (no data descriptors, which Safari,
macOS Archive Utility and Java's ZipInputStream mishandle). ZIP64 is used exactly where a value
does not fit: the local header's extra field when the entry's sizes may reach 4 GiB, the
central directory's for each value that does not fit, and the ZIP64 end records when the entry
count, the directory's size or its offset does not. Names are UTF-8, flagged when not ASCII,
and repeated in an Info-ZIP Unicode Path extra field (0x7075) for readers that ignore the flag.
Every entry carries its source's modification time twice: as a DOS time (two-second steps, no
time zone: UTC here) and in an extended-timestamp extra field (0x5455, Unix time), which
Info-ZIP, 7-Zip, libarchive and macOS read in its stead. Both headers carry the same extras.
An encrypted entry is WinZip AES-256, AE-2: method 99, its real method in a 0x9901 extra field,
CRC 0, and its data framed by a salt and a password check before and an authentication code
after (`AES_OVERHEAD`, counted in its compressed size).
"""

from __future__ import annotations

import stat
import struct
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

STORED: Final = 0
DEFLATED: Final = 8
AES: Final = 99  # WinZip AES: the method written in the headers of an encrypted entry

AES_SALT_BYTES: Final = 16  # AES-256
AES_CHECK_BYTES: Final = 2  # the password verification value
AES_CODE_BYTES: Final = 10  # HMAC-SHA1, its first 10 bytes
AES_OVERHEAD: Final = AES_SALT_BYTES + AES_CHECK_BYTES + AES_CODE_BYTES
_AES_EXTRA = struct.Struct("<3H2sBH")  # tag, length, AE-2, "AE", strength 3 (256), method

_LOCAL = struct.Struct("<4s5H3I2H")
_CENTRAL = struct.Struct("<4s6H3I5H2I")
_ZIP64_END = struct.Struct("<4sQ2H2I4Q")
_ZIP64_LOCATOR = struct.Struct("<4sIQI")
_END = struct.Struct("<4s4H2IH")
_EXTRA = struct.Struct("<2H")
# Both Info-ZIP fields begin alike: tag, length, one byte, a 32-bit value. 0x5455: flags (bit 0:
# mtime), the mtime; 0x7075: version 1, the CRC-32 of the header's name field (then the name).
_INFO_ZIP = struct.Struct("<2HBI")
_MAX_UNIX_TIME: Final = 0x7FFFFFFF  # a signed 32-bit time_t: 2038-01-19

MAX_32: Final = 0xFFFFFFFF
MAX_16: Final = 0xFFFF
_UTF8_FLAG = 0x0800
_ENCRYPTED_FLAG = 0x0001
_VERSION = 20  # deflate, folders
_VERSION_ZIP64 = 45
_VERSION_AES = 51  # APPNOTE 4.4.3.2: AES encryption
_MADE_BY_UNIX = 3 << 8
_FILE_ATTRIBUTES = (stat.S_IFREG | 0o644) << 16

LOCAL_HEADER_REACH = 30 + 2 * 65_535
"""The most bytes a local header takes: 30, the name and the extra fields (< 64 KiB each)."""


def dos_stamp(moment: datetime) -> tuple[int, int]:
    """(time, date) in MS-DOS form, in UTC: two-second resolution, 1980 to 2107."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    year = min(max(moment.year, 1980), 2107)
    time = moment.hour << 11 | moment.minute << 5 | moment.second // 2
    date = (year - 1980) << 9 | moment.month << 5 | moment.day
    return time, date


def deflate_bound(size: int) -> int:
    """The most raw deflate can emit for `size` bytes (stored blocks: 5 bytes per 16 KiB)."""
    return size + 5 * (size // 16_383 + 1) + 8


def needs_zip64(size: int, method: int) -> bool:
    """Whether the entry's local header must carry ZIP64 sizes (decided before writing it);
    room for the AES framing is counted whether the entry is encrypted or not."""
    largest = deflate_bound(size) if method == DEFLATED else size
    return largest + AES_OVERHEAD >= MAX_32


@dataclass(frozen=True)
class Entry:
    """One entry as the central directory records it."""

    name: str
    method: int
    stamp: tuple[int, int]  # dos_stamp
    crc: int
    compressed: int
    size: int
    offset: int  # of its local header
    zip64: bool  # its local header carries ZIP64 sizes
    mtime: int | None = None  # Unix time: the 0x5455 field (none past 2038)
    encrypted: bool = False  # AE-2: `crc` 0, `compressed` counts `AES_OVERHEAD`

    @property
    def flags(self) -> int:
        utf8 = 0 if self.name.isascii() else _UTF8_FLAG
        return utf8 | (_ENCRYPTED_FLAG if self.encrypted else 0)

    @property
    def written_method(self) -> int:
        return AES if self.encrypted else self.method

    def version(self, zip64: bool) -> int:
        """Version needed to extract."""
        if self.encrypted:
            return _VERSION_AES
        return _VERSION_ZIP64 if zip64 else _VERSION


def stamped(moment: datetime) -> tuple[tuple[int, int], int | None]:
    """An entry's (DOS stamp, Unix time) for a modification time."""
    unix = int(moment.timestamp())
    return dos_stamp(moment), unix if 0 <= unix <= _MAX_UNIX_TIME else None


def _extras(entry: Entry) -> bytes:
    """The extended timestamp, and for a non-ASCII name its Unicode Path (both headers)."""
    extra = b""
    if entry.mtime is not None:
        extra += _INFO_ZIP.pack(0x5455, 5, 1, entry.mtime)
    if not entry.name.isascii():
        name = entry.name.encode("utf-8")
        extra += _INFO_ZIP.pack(0x7075, 5 + len(name), 1, zlib.crc32(name)) + name
    if entry.encrypted:
        extra += _AES_EXTRA.pack(0x9901, 7, 2, b"AE", 3, entry.method)
    return extra


def _extras_size(name: str, mtime: bool) -> int:
    utf8 = len(name.encode("utf-8"))
    return (_INFO_ZIP.size if mtime else 0) + (0 if name.isascii() else _INFO_ZIP.size + utf8)


def local_header(entry: Entry) -> bytes:
    """The local header; its length depends only on the name and `zip64`, so it can be
    written first with placeholder values and patched in place once they are known."""
    name = entry.name.encode("utf-8")
    extra = b""
    compressed, size = entry.compressed, entry.size
    if entry.zip64:
        extra = _EXTRA.pack(1, 16) + struct.pack("<2Q", size, compressed)
        compressed = size = MAX_32
    extra += _extras(entry)
    time, date = entry.stamp
    fixed = _LOCAL.pack(
        b"PK\x03\x04", entry.version(entry.zip64), entry.flags, entry.written_method, time, date,
        entry.crc, compressed, size, len(name), len(extra),
    )  # fmt: skip
    return fixed + name + extra


def local_header_size(name: str, zip64: bool, mtime: bool = True) -> int:
    zip64_extra = 20 if zip64 else 0
    return _LOCAL.size + len(name.encode("utf-8")) + zip64_extra + _extras_size(name, mtime)


def _central_header(entry: Entry) -> bytes:
    name = entry.name.encode("utf-8")
    wide = []  # APPNOTE 4.5.3: only the values that overflow, in this order
    size, compressed, offset = entry.size, entry.compressed, entry.offset
    if size >= MAX_32:
        wide.append(size)
        size = MAX_32
    if compressed >= MAX_32:
        wide.append(compressed)
        compressed = MAX_32
    if offset >= MAX_32:
        wide.append(offset)
        offset = MAX_32
    extra = _EXTRA.pack(1, 8 * len(wide)) + struct.pack(f"<{len(wide)}Q", *wide) if wide else b""
    extra += _extras(entry)
    version = entry.version(bool(wide) or entry.zip64)
    time, date = entry.stamp
    fixed = _CENTRAL.pack(
        b"PK\x01\x02", _MADE_BY_UNIX | version, version, entry.flags, entry.written_method,
        time, date,
        entry.crc, compressed, size, len(name), len(extra), 0, 0, 0, _FILE_ATTRIBUTES, offset,
    )  # fmt: skip
    return fixed + name + extra


def central_directory(entries: Sequence[Entry], start: int) -> Iterator[bytes]:
    """The central directory, written at `start`, then the end records, in pieces."""
    size = 0
    for entry in entries:
        header = _central_header(entry)
        size += len(header)
        yield header
    count = len(entries)
    if count >= MAX_16 or size >= MAX_32 or start >= MAX_32:
        zip64_end = start + size
        yield _ZIP64_END.pack(
            b"PK\x06\x06", _ZIP64_END.size - 12, _MADE_BY_UNIX | _VERSION_ZIP64,
            _VERSION_ZIP64, 0, 0, count, count, size, start,
        )  # fmt: skip
        yield _ZIP64_LOCATOR.pack(b"PK\x06\x07", 0, zip64_end, 1)
    yield _END.pack(
        b"PK\x05\x06", 0, 0, min(count, MAX_16), min(count, MAX_16),
        min(size, MAX_32), min(start, MAX_32), 0,
    )  # fmt: skip


# Local header + central directory record + ZIP64 and AES extras + AES framing, beyond the
# name (twice).
_ENTRY_OVERHEAD = 30 + 46 + 2 * (32 + _AES_EXTRA.size) + AES_OVERHEAD
_END_RECORDS = 22 + 56 + 20


def archive_size_bound(entries: Iterable[tuple[str, int]]) -> int:
    """An upper bound of a stored archive's size from its entries' (name, size)."""
    return _END_RECORDS + sum(
        size + _ENTRY_OVERHEAD + 2 * (len(name.encode("utf-8")) + _extras_size(name, True))
        for name, size in entries
    )
