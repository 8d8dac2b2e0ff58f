"""The README's configuration table is the public interface: it must match the settings."""

import re
from pathlib import Path

from pydantic import AliasChoices

from archiver.app.settings import Settings

README = Path(__file__).parents[2] / "README.md"


def documented_variables() -> set[str]:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return {name for row in rows for name in re.findall(r"`([A-Z0-9_]+)`", row.split("|")[1])}


def setting_variables() -> set[str]:
    names = set()
    for field_name, field in Settings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names |= {str(choice) for choice in alias.choices}
        else:
            names.add(field_name.upper())
    return names


def test_configuration_table_matches_the_settings() -> None:
    assert documented_variables() == setting_variables()
