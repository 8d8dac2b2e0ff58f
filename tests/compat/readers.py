"""Every ZIP reader available here, each reduced to {entry name: SHA-256 of its content}."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
import zipfile
from collections.abc import Callable
from functools import cache
from pathlib import Path

from tests.zipcheck import UTF8_FLAG, unicode_path

JAVA_SOURCE = Path(__file__).parent / "java" / "ZipCheck.java"
TIMEOUT = 1800

Listing = dict[str, str]


def _digest_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while block := file.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _extracted(directory: Path) -> Listing:
    return {
        path.relative_to(directory).as_posix(): _digest_file(path)
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def _run(command: list[str]) -> str:
    result = subprocess.run(command, capture_output=True, timeout=TIMEOUT, check=False)
    output = result.stdout.decode("utf-8", "replace") + result.stderr.decode("utf-8", "replace")
    assert result.returncode == 0, f"{command[0]} exited {result.returncode}:\n{output[-3000:]}"
    return output


EXTRACTORS: dict[str, tuple[Callable[[Path, Path], list[str]], tuple[str, ...]]] = {
    "info-zip unzip": (lambda a, t: ["unzip", "-q", str(a), "-d", str(t)], ("unzip",)),
    "7-zip": (lambda a, t: ["7z", "x", "-y", f"-o{t}", str(a)], ("7z",)),
    "bsdtar (libarchive)": (lambda a, t: ["bsdtar", "-xf", str(a), "-C", str(t)], ("bsdtar",)),
}


def extracted_times(reader: str, archive: Path) -> dict[str, int]:
    """Each file's modification time as the reader set it on extraction (Unix seconds)."""
    command, _ = EXTRACTORS[reader]
    with tempfile.TemporaryDirectory() as scratch:
        target = Path(scratch)
        _run(command(archive, target))
        return {
            path.relative_to(target).as_posix(): int(path.stat().st_mtime)
            for path in sorted(target.rglob("*"))
            if path.is_file()
        }


def _extract_with(command: Callable[[Path, Path], list[str]], archive: Path) -> Listing:
    with tempfile.TemporaryDirectory() as scratch:
        target = Path(scratch)
        _run(command(archive, target))
        return _extracted(target)


def info_zip(archive: Path) -> Listing:
    output = _run(["unzip", "-t", str(archive)])
    assert "No errors detected" in output, output[-2000:]
    return _extract_with(EXTRACTORS["info-zip unzip"][0], archive)


def seven_zip(archive: Path) -> Listing:
    output = _run(["7z", "t", str(archive)])
    assert "Everything is Ok" in output, output[-2000:]
    return _extract_with(EXTRACTORS["7-zip"][0], archive)


def bsdtar(archive: Path) -> Listing:
    _run(["bsdtar", "-tf", str(archive)])
    return _extract_with(EXTRACTORS["bsdtar (libarchive)"][0], archive)


def unicode_path_only(archive: Path) -> Listing:
    """A reader that ignores the UTF-8 flag (names as CP437, as older Windows, Java and .NET
    tools read them) but honours the Info-ZIP Unicode Path field (0x7075) where present."""
    listing = {}
    with zipfile.ZipFile(archive) as opened:
        for info in opened.infolist():
            raw = info.filename.encode("utf-8" if info.flag_bits & UTF8_FLAG else "cp437")
            name = unicode_path(info.extra, raw) or raw.decode("cp437")
            listing[name] = hashlib.sha256(opened.read(info)).hexdigest()
    return listing


def python_zipfile(archive: Path) -> Listing:
    listing = {}
    with zipfile.ZipFile(archive) as opened:
        assert opened.testzip() is None
        for info in opened.infolist():
            digest = hashlib.sha256()
            with opened.open(info) as entry:
                while block := entry.read(1 << 20):
                    digest.update(block)
            listing[info.filename] = digest.hexdigest()
    return listing


@cache
def _java_classes() -> Path:
    target = Path(tempfile.mkdtemp(prefix="zipcheck-"))
    _run(["javac", "-d", str(target), str(JAVA_SOURCE)])
    return target


def _java(mode: str, archive: Path) -> Listing:
    output = subprocess.run(
        ["java", "-cp", str(_java_classes()), "ZipCheck", mode, str(archive)],
        capture_output=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert output.returncode == 0, output.stderr.decode("utf-8", "replace")[-3000:]
    listing = {}
    for line in output.stdout.decode("utf-8").splitlines():
        digest, _, name = line.split("\t", 2)
        listing[name] = digest
    return listing


def java_zipfile(archive: Path) -> Listing:
    return _java("zipfile", archive)


def java_zip_input_stream(archive: Path) -> Listing:
    return _java("stream", archive)


def zipdetails(archive: Path) -> Listing:
    """A structural dump that must parse the whole file; names only, no content."""
    output = _run(["zipdetails", str(archive)])
    assert "Done" in output or "END CENTRAL HEADER" in output, output[-2000:]
    return {}


READERS: dict[str, tuple[Callable[[Path], Listing], tuple[str, ...]]] = {
    "info-zip unzip": (info_zip, ("unzip",)),
    "7-zip": (seven_zip, ("7z",)),
    "bsdtar (libarchive)": (bsdtar, ("bsdtar",)),
    "python zipfile": (python_zipfile, ()),
    "0x7075 only (CP437 names otherwise)": (unicode_path_only, ()),
    "java ZipFile": (java_zipfile, ("javac", "java")),
    "java ZipInputStream": (java_zip_input_stream, ("javac", "java")),
    "zipdetails": (zipdetails, ("zipdetails",)),
}


def missing_tools(tools: tuple[str, ...]) -> list[str]:
    return [tool for tool in tools if shutil.which(tool) is None]
