import pytest

from archiver.domain.urls import content_disposition, public_url


@pytest.mark.parametrize(
    ("base", "key", "url"),
    [
        (
            "https://cdn.example.com",
            "j/download-2026-01-02.zip",
            "https://cdn.example.com/j/download-2026-01-02.zip",
        ),
        ("https://cdn.example.com/", "/j/a.zip", "https://cdn.example.com/j/a.zip"),
        (
            "https://cdn.example.com/archives//",
            "j/a.zip",
            "https://cdn.example.com/archives/j/a.zip",
        ),
        (
            "https://cdn.example.com",
            "j/é #%+?.zip",
            "https://cdn.example.com/j/%C3%A9%20%23%25%2B%3F.zip",
        ),
    ],
)
def test_public_url_joins_with_exactly_one_slash_and_encodes(base: str, key: str, url: str) -> None:
    assert public_url(base, key) == url


def test_ascii_disposition() -> None:
    assert content_disposition("download-2026-01-02.zip") == (
        'attachment; filename="download-2026-01-02.zip"'
    )


def test_non_ascii_disposition_has_fallback_and_rfc5987_name() -> None:
    assert content_disposition('téléchargement "1".zip') == (
        'attachment; filename="t_l_chargement _1_.zip"; '
        "filename*=UTF-8''t%C3%A9l%C3%A9chargement%20%221%22.zip"
    )
