import re
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from archiver.domain.naming import (
    MAX_SEGMENT_BYTES,
    assign_entry_names,
    clean_segments,
    file_segments,
)


@pytest.mark.parametrize(
    ("raw", "segments"),
    [
        ("album_1", ["album_1"]),
        ("a/b/c", ["a", "b", "c"]),
        ("/abs/path/", ["abs", "path"]),
        ("../../etc/passwd", ["etc", "passwd"]),
        ("a/./b/../c", ["a", "b", "c"]),
        ("a\\b\\..\\c", ["a", "b", "c"]),
        ("C:\\Windows\\evil.dll", ["Windows", "evil.dll"]),
        ("c:relative", ["relative"]),
        ("tab\there\x00nul\x7f", ["tabherenul"]),
        ("safe\u202egnp.exe", ["safegnp.exe"]),
        ("", []),
        ("//", []),
        ("..", []),
        ("e\u0301t\u00e9", ["\u00e9t\u00e9"]),  # NFD in, NFC out
        ("emoji 👨‍👩‍👧/日本語/مرحبا", ["emoji 👨‍👩‍👧", "日本語", "مرحبا"]),
        ("name with spaces # % +", ["name with spaces # % +"]),
    ],
)
def test_clean_segments(raw: str, segments: list[str]) -> None:
    assert clean_segments(raw) == segments


def test_over_long_names_are_shortened_keeping_the_extension() -> None:
    [segment] = clean_segments("é" * 300 + ".jpeg")
    assert len(segment.encode("utf-8")) <= MAX_SEGMENT_BYTES
    assert segment.endswith(".jpeg")
    assert segment.startswith("é")


@pytest.mark.parametrize(
    ("destination", "name", "key", "path"),
    [
        ("album_1", None, "dir/uuid1.png", ["album_1", "uuid1.png"]),
        (None, None, "dir/uuid1.png", ["uuid1.png"]),
        ("", None, "uuid1.png", ["uuid1.png"]),
        ("a/b", "cover.png", "dir/uuid1.png", ["a", "b", "cover.png"]),
        ("a", "sub/cover.png", "x", ["a", "sub", "cover.png"]),
        ("a", "..", "dir/uuid1.png", ["a", "uuid1.png"]),
        ("a", None, "dir/", ["a", "dir"]),
        ("a", None, "../..", ["a", "file"]),
    ],
)
def test_file_segments(
    destination: str | None, name: str | None, key: str, path: list[str]
) -> None:
    assert file_segments(destination, name, key) == path


def test_case_insensitive_duplicates_are_numbered_in_job_order() -> None:
    paths = [["a", "x.png"], ["A", "X.PNG"], ["a", "x.png"], ["b", "x.png"], ["a", "x (1).png"]]
    assert assign_entry_names(paths) == [
        "a/x.png",
        "A/X (1).PNG",
        "a/x (2).png",
        "b/x.png",
        "a/x (1) (1).png",
    ]


def test_numbering_keeps_dotfiles_and_extensionless_names_readable() -> None:
    assert assign_entry_names([[".env"], [".env"], ["README"], ["readme"]]) == [
        ".env",
        ".env (1)",
        "README",
        "readme (1)",
    ]


def test_a_file_never_takes_a_folder_name() -> None:
    assert assign_entry_names([["album"], ["album", "a.png"], ["ALBUM"]]) == [
        "album (1)",
        "album/a.png",
        "ALBUM (2)",
    ]


def test_many_duplicates_stay_fast_and_unique() -> None:
    names = assign_entry_names([["same.png"]] * 10_000)
    assert len({name.casefold() for name in names}) == 10_000
    assert names[-1] == "same (9999).png"


paths_text = st.text(
    alphabet=st.characters(codec="utf-8", categories=None), max_size=40
) | st.sampled_from(["..", ".", "/", "\\", "C:", "a/../..", "\x00", "\u202e"])


@given(st.lists(st.tuples(paths_text, st.none() | paths_text, paths_text), max_size=12))
def test_entry_names_are_safe_and_unique(specs: list[tuple[str, str | None, str]]) -> None:
    paths = [file_segments(destination, name, key or "k") for destination, name, key in specs]
    names = assign_entry_names(paths)
    assert len(names) == len(specs)  # never silently drops a file
    assert len({name.casefold() for name in names}) == len(names)
    for name in names:
        assert name
        assert not name.startswith("/")
        assert "\\" not in name
        assert all(part not in ("", ".", "..") for part in name.split("/"))
        assert not any(unicodedata.category(char) == "Cc" for char in name)
        assert unicodedata.normalize("NFC", name) == name
        assert all(len(part.encode("utf-8")) <= MAX_SEGMENT_BYTES for part in name.split("/"))


@pytest.mark.parametrize(
    ("raw", "first"),
    [
        ("../C:/Windows", "Windows"),
        ("/C:/x", "x"),
        ("C:D:/x", "x"),
        ("C:\\D:x", "x"),
        ("C:../x", "x"),
    ],
)
def test_a_drive_letter_is_dropped_wherever_cleaning_brings_it_first(raw: str, first: str) -> None:
    assert clean_segments(raw)[0] == first
    assert file_segments(None, None, raw)[0] == first


def test_a_key_leaf_that_is_a_drive_letter_is_not_an_entry_root() -> None:
    assert file_segments(None, None, "dir/C:evil.txt") == ["evil.txt"]
    assert file_segments("album", None, "dir/C:evil.txt") == ["album", "C:evil.txt"]


def test_nfc_is_the_last_step() -> None:
    assert clean_segments("e\u202e\u0301") == ["\u00e9"]
    assert clean_segments("a\x00\u030a") == ["\u00e5"]


pieces = st.sampled_from(
    ["..", ".", "/", "\\", "C:", "d:", "e", "\u0301", "\u202e", "\x00", "x", "\u0958", "ß"]
)


@given(st.lists(pieces, max_size=12).map("".join), st.lists(pieces, max_size=12).map("".join))
def test_cleaned_paths_never_start_with_a_drive_and_are_nfc(destination: str, key: str) -> None:
    segments = file_segments(destination, None, key or "k")
    assert not re.match(r"^[A-Za-z]:", segments[0])
    for segment in segments:
        assert unicodedata.is_normalized("NFC", segment)
        assert segment not in ("", ".", "..")


@given(st.text(alphabet="\u0958\u0301e", min_size=200, max_size=400))
def test_shortened_names_stay_nfc_and_within_bounds(text: str) -> None:
    [segment] = clean_segments(text) or ["x"]
    assert len(segment.encode("utf-8")) <= MAX_SEGMENT_BYTES
    assert unicodedata.is_normalized("NFC", segment)
