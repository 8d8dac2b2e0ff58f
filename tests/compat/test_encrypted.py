"""Encrypted archives (WinZip AES-256, AE-2) open with the password in every reader that reads
AES here (7-Zip, bsdtar), keep their sources' exact times, and are refused with a wrong one."""

from __future__ import annotations

import hashlib
import random
import subprocess
import tempfile
from pathlib import Path

import pytest

from archiver.adapters.memory import Checksum
from tests.compat.conftest import Built, Case, build
from tests.compat.readers import TIMEOUT, _extracted, missing_tools
from tests.support import MIB
from tests.zipcheck import check_layout, unix_times

pytestmark = pytest.mark.compat
PASSWORD = "Wedding 2026: été 🎉"
rng = random.Random(99)
TEXT = b"".join(f"line {n}: compressible text\n".encode() for n in range(300_000))  # ~7 MiB

CASES = [
    Case(  # deflated and stored, streamed in chunks and whole, one the store would copy
        "encrypted",
        [
            ("text.log", TEXT, None),
            ("noise.bin", rng.randbytes(7 * MIB), "data"),
            ("clip.mp4", rng.randbytes(12 * MIB), "video"),
            ("empty.bin", b"", None),
            ("one.bin", b"x", None),
            ("日本語のファイル.txt", "中身".encode(), "名前"),
        ],
        checksums={"clip.mp4": Checksum.FULL_OBJECT},
        password=PASSWORD,
    ),
    Case(
        "encrypted-prefix",
        [
            ("album/2026/a.jpg", rng.randbytes(2 * MIB), None),
            ("album/2026/notes.txt", TEXT[: MIB + 7], None),
            ("album/cover é.png", rng.randbytes(1000), None),
        ],
        password=PASSWORD,
        prefix="album/",
    ),
]
BUILT: dict[str, Built] = {}
EMPTY = hashlib.sha256(b"").hexdigest()

# The command that extracts `archive` into `target` with `password`.
EXTRACTORS = {
    "7-zip": (lambda a, t, p: ["7z", "x", "-y", f"-p{p}", f"-o{t}", str(a)], ("7z",)),
    "bsdtar (libarchive)": (
        lambda a, t, p: ["bsdtar", "--passphrase", p, "-xf", str(a), "-C", str(t)],
        ("bsdtar",),
    ),
}


def built(case: Case, directory: Path) -> Built:
    if case.name not in BUILT:
        BUILT[case.name] = build(case, directory)
    return BUILT[case.name]


def extract(reader: str, archive: Path, password: str) -> tuple[int, dict[str, str], Path]:
    """(exit code, {name: SHA-256}, where) of an extraction, in a directory of its own."""
    command, tools = EXTRACTORS[reader]
    if missing := missing_tools(tools):
        pytest.skip(f"{reader} not installed here ({', '.join(missing)})")
    target = Path(tempfile.mkdtemp(prefix="aes-"))
    done = subprocess.run(
        command(archive, target, password), capture_output=True, timeout=TIMEOUT, check=False
    )
    return done.returncode, _extracted(target), target


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_structure(case: Case, compat_dir: Path) -> None:
    result = built(case, compat_dir)
    layout = check_layout(result.path)
    assert layout.names == list(result.expected)
    assert unix_times(result.path) == result.times


@pytest.mark.parametrize("reader", list(EXTRACTORS))
@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_the_password_opens_it_with_its_exact_bytes_and_times(
    case: Case, reader: str, compat_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TZ", "UTC")
    result = built(case, compat_dir)
    code, listing, target = extract(reader, result.path, PASSWORD)
    assert code == 0
    assert listing == result.expected
    times = {
        path.relative_to(target).as_posix(): int(path.stat().st_mtime)
        for path in target.rglob("*")
        if path.is_file()
    }
    assert times == result.times


@pytest.mark.parametrize("reader", list(EXTRACTORS))
def test_a_wrong_password_is_refused(reader: str, compat_dir: Path) -> None:
    result = built(CASES[0], compat_dir)
    code, listing, _ = extract(reader, result.path, PASSWORD[:-1])
    assert code != 0
    nonempty = {item for item in result.expected.items() if item[1] != EMPTY}
    assert not set(listing.items()) & nonempty  # no file with content came out right


def test_seven_zip_verifies_every_entry(compat_dir: Path) -> None:
    if missing_tools(("7z",)):
        pytest.skip("7-zip not installed here")
    result = built(CASES[0], compat_dir)
    done = subprocess.run(
        ["7z", "t", f"-p{PASSWORD}", str(result.path)],
        capture_output=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert done.returncode == 0
    assert b"Everything is Ok" in done.stdout
