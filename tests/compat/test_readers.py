"""Every reader here lists the same names and extracts the same bytes from our archives."""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import pytest

from archiver.adapters.memory import Checksum, SyntheticBody
from archiver.domain.plan import CompressionMode
from tests.compat.conftest import Built, Case, build
from tests.compat.readers import EXTRACTORS, READERS, extracted_times, missing_tools
from tests.support import GIB, MIB
from tests.zipcheck import check_layout, unix_times

pytestmark = pytest.mark.compat
ZIPDETAILS_MAX_ENTRIES = 10_000

NAMES = [
    "plain.txt",
    "accentué-élève.txt",
    "日本語のファイル.txt",
    "emoji 👨‍👩‍👧 🎉.txt",
    "مرحبا بالعالم.txt",
    "with spaces # hash % percent + plus.txt",
]
rng = random.Random(2026)
TEXT = b"".join(f"line {n}: compressible text\n".encode() for n in range(300_000))  # ~7 MiB

SMALL_CASES = [
    Case("empty-file", [("empty.bin", b"", None)]),
    Case("one-byte", [("one.bin", b"x", None)]),
    Case("names", [(f"src/{n}", f"content of {n}".encode(), None) for n in NAMES]),
    Case(
        "nested-folders",
        [
            ("a.txt", b"a", "one"),
            ("b.txt", b"b", "one/two/three"),
            ("c.txt", b"c", "één/二/३"),
            ("d.txt", b"d", "../../escape"),
        ],
    ),
    Case(  # the longest path archiver writes (MAX_PATH_BYTES), two-byte characters included
        "longest-path",
        [(f"src/{'n' * 16}.txt", b"deep", "/".join(["é" * 125] * 4))],
    ),
    Case(
        "case-collisions",
        [
            ("x/Photo.JPG", b"1", None),
            ("y/photo.jpg", b"2", None),
            ("z/PHOTO.jpg", b"3", ""),
            ("w/album", b"file named like a folder", None),
            ("v/cover.png", b"4", "ALBUM"),
        ],
    ),
    Case(
        "stored-and-deflated-multipart",
        [
            ("text.log", TEXT, None),
            ("noise.bin", rng.randbytes(7 * MIB), None),
            ("photo.jpg", rng.randbytes(3 * MIB), "album"),
            ("notes.txt", TEXT[: 2 * MIB], "album"),
        ],
    ),
    Case(  # copied by the store (each kind of source checksum), streamed-stored and deflated
        "copied-streamed-and-deflated",
        [
            ("clip.mp4", rng.randbytes(12 * MIB), "video"),
            ("text.log", TEXT, None),
            ("raw.cr3", rng.randbytes(11 * MIB + 3), "photos"),
            ("noise.bin", rng.randbytes(15 * MIB), None),
            ("small.jpg", rng.randbytes(6 * MIB), "photos"),
        ],
        checksums={"clip.mp4": Checksum.FULL_OBJECT, "raw.cr3": Checksum.COMPOSITE},
        copied=True,
    ),
]
SLOW_CASES = [
    Case(
        "entry-over-4-gib",
        [
            ("small-before.txt", b"before", None),
            ("huge.bin", SyntheticBody(4 * GIB + 1), None),
            ("small-after.txt", b"after", None),
        ],
        compression=CompressionMode.STORED,
        zip64_end_record=True,
        zip64_local=frozenset({1}),
        copied=True,  # its CRC-32 read, its bytes copied
    ),
    Case(
        "over-65535-entries",
        [(f"many/{n}.txt", f"{n}".encode(), None) for n in range(65_600)],
        zip64_end_record=True,
    ),
    Case(
        "over-4-gib-of-small-entries",
        [(f"part-{n:03d}.bin", SyntheticBody(32 * MIB + n), None) for n in range(130)],
        compression=CompressionMode.STORED,
        zip64_end_record=True,
        server_side_copy=False,  # streamed: the writer's own offsets past 4 GiB
    ),
]
BUILT: dict[str, Built] = {}


def built(case: Case, directory: Path) -> Built:
    if case.name not in BUILT:
        started = time.monotonic()
        BUILT[case.name] = build(case, directory)
        print(
            f"\nbuilt {case.name}: {os.path.getsize(BUILT[case.name].path):,} bytes in "
            f"{time.monotonic() - started:.1f} s"
        )
    return BUILT[case.name]


def check_structure(result: Built) -> None:
    layout = check_layout(result.path)
    assert unix_times(result.path) == result.times
    assert layout.names == list(result.expected)
    assert layout.zip64_end_record is result.case.zip64_end_record
    expected_local = [i in result.case.zip64_local for i in range(len(layout.names))]
    assert layout.local_zip64 == expected_local


def check_reader(result: Built, reader: str) -> None:
    read, tools = READERS[reader]
    if missing := missing_tools(tools):
        pytest.skip(f"{reader} not installed here ({', '.join(missing)})")
    if reader == "zipdetails" and len(result.expected) > ZIPDETAILS_MAX_ENTRIES:
        pytest.skip("zipdetails takes minutes per 10,000s of entries; check_structure covers it")
    started = time.monotonic()
    listing = read(result.path)
    print(f"\n{reader} on {result.case.name}: {time.monotonic() - started:.1f} s")
    if reader != "zipdetails":  # a structural dump: it must parse, it lists no content
        assert listing == result.expected


@pytest.mark.parametrize("case", SMALL_CASES, ids=lambda case: case.name)
def test_structure(case: Case, compat_dir: Path) -> None:
    check_structure(built(case, compat_dir))


@pytest.mark.parametrize("reader", list(READERS))
@pytest.mark.parametrize("case", SMALL_CASES, ids=lambda case: case.name)
def test_reader(case: Case, reader: str, compat_dir: Path) -> None:
    check_reader(built(case, compat_dir), reader)


TIMED_CASES = [
    case for case in SMALL_CASES if case.name in ("names", "copied-streamed-and-deflated")
]


@pytest.mark.parametrize("reader", list(EXTRACTORS))
@pytest.mark.parametrize("case", TIMED_CASES, ids=lambda case: case.name)
def test_extracted_files_keep_their_sources_exact_times(
    case: Case, reader: str, compat_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Odd seconds, which a DOS time cannot hold: exact only from the 0x5455 field."""
    if missing := missing_tools(EXTRACTORS[reader][1]):
        pytest.skip(f"{reader} not installed here ({', '.join(missing)})")
    monkeypatch.setenv("TZ", "UTC")
    result = built(case, compat_dir)
    assert extracted_times(reader, result.path) == result.times


@pytest.mark.slow
@pytest.mark.parametrize("case", SLOW_CASES, ids=lambda case: case.name)
def test_large_structure(case: Case, compat_dir: Path) -> None:
    check_structure(built(case, compat_dir))


@pytest.mark.slow
@pytest.mark.parametrize("reader", list(READERS))
@pytest.mark.parametrize("case", SLOW_CASES, ids=lambda case: case.name)
def test_large_reader(case: Case, reader: str, compat_dir: Path) -> None:
    check_reader(built(case, compat_dir), reader)
