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


def _extract_with(command: Callable[[Path, Path], list[str]], archive: Path) -> Listing:
    with tempfile.TemporaryDirectory() as scratch:
        target = Path(scratch)
        _run(command(archive, target))
        return _extracted(target)


def info_zip(archive: Path) -> Listing:
    output = _run(["unzip", "-t", str(archive)])
    assert "No errors detected" in output, output[-2000:]
    return _extract_with(lambda a, t: ["unzip", "-q", str(a), "-d", str(t)], archive)


def seven_zip(archive: Path) -> Listing:
    output = _run(["7z", "t", str(archive)])
    assert "Everything is Ok" in output, output[-2000:]
    return _extract_with(lambda a, t: ["7z", "x", "-y", f"-o{t}", str(a)], archive)


def bsdtar(archive: Path) -> Listing:
    _run(["bsdtar", "-tf", str(archive)])
    return _extract_with(lambda a, t: ["bsdtar", "-xf", str(a), "-C", str(t)], archive)


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
    "java ZipFile": (java_zipfile, ("javac", "java")),
    "java ZipInputStream": (java_zip_input_stream, ("javac", "java")),
    "zipdetails": (zipdetails, ("zipdetails",)),
}


def missing_tools(tools: tuple[str, ...]) -> list[str]:
    return [tool for tool in tools if shutil.which(tool) is None]
