"""The ZIP format, byte for byte: against `zipfile` where they must agree, by field for ZIP64."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from datetime import UTC, datetime, timedelta, timezone

from archiver.domain.zipformat import (
    AES_OVERHEAD,
    DEFLATED,
    MAX_32,
    STORED,
    Entry,
    central_directory,
    dos_stamp,
    local_header,
    local_header_size,
    needs_zip64,
    stamped,
)
from tests.zipcheck import check_layout

WHEN = datetime(2026, 11, 27, 8, 30, 15, tzinfo=UTC)
MTIME = int(WHEN.timestamp())


def _deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush()


def _archive(files: list[tuple[str, int, bytes]]) -> bytes:
    out = io.BytesIO()
    entries = []
    for name, method, data in files:
        payload = _deflate(data) if method == DEFLATED else data
        entry = Entry(
            name, method, dos_stamp(WHEN), zlib.crc32(data), len(payload), len(data), out.tell(),
            needs_zip64(len(data), method), MTIME,
        )  # fmt: skip
        out.write(local_header(entry) + payload)
        entries.append(entry)
    for piece in central_directory(entries, out.tell()):
        out.write(piece)
    return out.getvalue()


def _zipfile_archive(files: list[tuple[str, int, bytes]]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, method, data in files:
            info = zipfile.ZipInfo(name, date_time=WHEN.timetuple()[:6])
            info.compress_type = method
            info.external_attr = 0o100644 << 16
            info.extra = _expected_extra(name)
            archive.writestr(info, data, compresslevel=6)
    return out.getvalue()


def _expected_extra(name: str) -> bytes:
    """Info-ZIP's extended timestamp (mtime only), then for a non-ASCII name its Unicode
    Path: version 1, the CRC-32 of the name field (UTF-8 here), the UTF-8 name."""
    extra = struct.pack("<HHBI", 0x5455, 5, 1, MTIME)
    if not name.isascii():
        utf8 = name.encode("utf-8")
        extra += struct.pack("<HHBI", 0x7075, 5 + len(utf8), 1, zlib.crc32(utf8)) + utf8
    return extra


FILES = [
    ("plain.txt", STORED, b"hello"),
    ("dossier/élève.txt", DEFLATED, b"compressible " * 1000),
    ("empty.bin", STORED, b""),
    ("日本/語.bin", DEFLATED, bytes(range(256))),
]


def test_small_archives_are_the_bytes_zipfile_writes() -> None:
    assert _archive(FILES) == _zipfile_archive(FILES)


def test_what_zipfile_reads_back_and_the_layout_rules() -> None:
    data = _archive(FILES)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        assert {info.filename: archive.read(info) for info in archive.infolist()} == {
            name: body for name, _, body in FILES
        }
    layout = check_layout(data)
    assert layout.local_zip64 == [False] * 4
    assert not layout.zip64_end_record


def test_dos_stamps_have_two_second_resolution_and_clamp_to_their_range() -> None:
    assert dos_stamp(WHEN) == (8 << 11 | 30 << 5 | 7, 46 << 9 | 11 << 5 | 27)
    assert dos_stamp(datetime(1970, 1, 1))[1] >> 9 == 0  # 1980
    assert dos_stamp(datetime(2200, 1, 1))[1] >> 9 == 127  # 2107


def test_zip64_sizes_exactly_when_an_entry_may_reach_4_gib() -> None:
    """With room for the AES framing, encrypted or not."""
    assert not needs_zip64(MAX_32 - 1 - AES_OVERHEAD, STORED)
    assert needs_zip64(MAX_32 - AES_OVERHEAD, STORED)
    assert needs_zip64(MAX_32 - 1000, DEFLATED)  # incompressible data grows a little
    assert not needs_zip64(4_000_000_000, DEFLATED)


def test_a_zip64_local_header_carries_both_sizes_and_keeps_its_length() -> None:
    size = 5 * 1024**3
    unknown = Entry("big.bin", STORED, dos_stamp(WHEN), 0, 0, size, 0, zip64=True, mtime=MTIME)
    known = Entry(
        "big.bin", STORED, dos_stamp(WHEN), 0xDEADBEEF, size, size, 0, zip64=True, mtime=MTIME
    )
    header = local_header(known)
    assert len(header) == len(local_header(unknown)) == local_header_size("big.bin", True)
    fields = struct.unpack_from("<4s5H3I2H", header)
    assert fields[1] == 45  # version needed: ZIP64
    assert fields[6:9] == (0xDEADBEEF, MAX_32, MAX_32)
    assert struct.unpack_from("<2H2Q", header, 30 + len("big.bin")) == (1, 16, size, size)


def test_the_central_directory_widens_only_the_values_that_overflow() -> None:
    far = Entry("far.txt", STORED, dos_stamp(WHEN), 1, 3, 3, 6 * 1024**3, zip64=False)
    [header, zip64_end, locator, end] = central_directory([far], 6 * 1024**3 + 33)
    fields = struct.unpack_from("<4s6H3I5H2I", header)
    assert (fields[8], fields[9], fields[16]) == (3, 3, MAX_32)  # sizes fit, offset does not
    assert struct.unpack_from("<2HQ", header, 46 + len("far.txt")) == (1, 8, 6 * 1024**3)
    assert zip64_end.startswith(b"PK\x06\x06")
    assert locator.startswith(b"PK\x06\x07")
    assert struct.unpack_from("<4s4H2IH", end)[5:7] == (len(header), MAX_32)


def test_more_than_65535_entries_use_the_zip64_end_records_and_read_back() -> None:
    out = io.BytesIO()
    entries = []
    for number in range(65_600):
        entry = Entry(f"{number}", STORED, dos_stamp(WHEN), 0, 0, 0, out.tell(), zip64=False)
        out.write(local_header(entry))
        entries.append(entry)
    for piece in central_directory(entries, out.tell()):
        out.write(piece)
    with zipfile.ZipFile(out) as archive:
        names = archive.namelist()
    assert len(names) == 65_600
    assert names[-1] == "65599"
    assert check_layout(out.getvalue()).zip64_end_record


def test_an_entry_time_is_utc_and_past_2038_only_a_dos_time() -> None:
    paris = datetime(2026, 6, 1, 14, 0, 7, tzinfo=timezone(timedelta(hours=2)))
    stamp, mtime = stamped(paris)
    assert stamp == dos_stamp(datetime(2026, 6, 1, 12, 0, 6))  # UTC, 2 s steps
    assert mtime == int(paris.timestamp())
    late_stamp, late = stamped(datetime(2040, 1, 1, tzinfo=UTC))
    assert late is None  # a signed 32-bit time_t ends in 2038: no 0x5455 field then
    entry = Entry("ünï.txt", STORED, late_stamp, 0, 0, 0, 0, zip64=False, mtime=late)
    assert len(local_header(entry)) == local_header_size("ünï.txt", False, mtime=False)
