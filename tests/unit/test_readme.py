"""The README's configuration table and message examples are the public interface: they must
match the settings and the notification models."""

import json
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import AliasChoices, BaseModel

from archiver.app.composition.settings import Settings
from archiver.app.engine.budget import RANGE_BYTES
from archiver.domain.memory import least_share, parts_in_flight, sink_bytes
from archiver.domain.multipart import part_size_for
from archiver.domain.notifications import NOTIFICATION_ADAPTER

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


def documented_defaults() -> dict[str, str]:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    cells = [line.split("|")[1:3] for line in section.splitlines() if line.startswith("| `")]
    return {re.findall(r"`([A-Z0-9_]+)`", name)[0]: default.strip() for name, default in cells}


def shown(value: Any) -> str:
    """A default as the table shows it."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return f"`{int(value)}`"
    if isinstance(value, frozenset | tuple) and not value:
        return "empty"
    if isinstance(value, float) and value.is_integer():
        return f"`{int(value)}`"
    if isinstance(value, int) and value >= 1024**4 and value % 1024**4 == 0:
        return f"{value // 1024**4} TiB"
    return f"`{getattr(value, 'value', value)}`"


def test_the_tables_defaults_are_the_settings_models() -> None:
    """Every default lives in the settings model; the README shows the same one."""
    documented = documented_defaults()
    for field_name, field in Settings.model_fields.items():
        name = field_name.upper() if field.validation_alias is None else "AWS_REGION"
        cell = documented[name]
        if field.default_factory is not None:  # METRICS_ENABLED: depends on where it runs
            assert cell == "`1` on ECS, else `0`", name
            continue
        if cell.startswith("— ("):  # required by one command, no default
            cell = "—"
        assert cell == shown(field.default), name


def notification_examples() -> dict[str, dict[str, Any]]:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Notification (output)", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```json\n(.*?)```", section, flags=re.DOTALL)
    examples = [json.loads(block) for block in blocks]
    return {example["status"]: example for example in examples}


def unset_fields(example: dict[str, Any], model: BaseModel) -> list[str]:
    """Every field of the model, nested ones too, that the example leaves out."""
    left_out = []
    for name, value in model:
        if name not in example:
            left_out.append(name)
        elif isinstance(value, BaseModel):
            left_out += [f"{name}.{inner}" for inner in unset_fields(example[name], value)]
    return left_out


@pytest.mark.parametrize("status", ["succeeded", "failed", "running"])
def test_each_notification_example_is_valid_and_shows_every_field(status: str) -> None:
    example = notification_examples()[status]
    model = NOTIFICATION_ADAPTER.validate_python(example)
    assert unset_fields(example, model) == []


def memory_rows() -> list[str]:
    """The README's memory table, computed from the code at the settings' defaults."""
    settings = Settings.model_construct()
    mib, gib = 1024 * 1024, 1024**3
    part, jobs = settings.upload_part_size_mb * mib, settings.upload_concurrency
    budget = settings.memory_budget_mb * mib
    rows = []
    for label, size in [
        ("10 GiB", 10 * gib),
        ("100 GiB", 100 * gib),
        ("160 GiB", 160 * gib),
        ("1 TiB", 1024 * gib),
        ("5 TiB", 5 * 1024 * gib),
    ]:
        grown = part_size_for(size, part)
        at_once = parts_in_flight(budget, grown, jobs, RANGE_BYTES) or "refused"
        least = -(-least_share(grown, RANGE_BYTES) // mib)
        full = -(-(sink_bytes(grown, jobs) + 2 * RANGE_BYTES) // mib)
        rows.append(f"| {label} | {grown // mib} MiB | {at_once} | {least} | {full} |")
    return rows


def test_the_memory_table_is_what_the_code_computes() -> None:
    text = README.read_text(encoding="utf-8")
    table = text.split("<!-- memory-table:", 1)[1].split("\n\n", 1)[0]
    assert table.splitlines()[3:] == memory_rows()
