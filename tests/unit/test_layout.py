"""The arrows point inward: the domain imports neither the adapters nor the app; adapters do
not import the app. Read from the source (ast), so a lazy import inside a function counts."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[2] / "src" / "archiver"
FORBIDDEN = {
    "domain": ("archiver.app", "archiver.adapters", "boto3", "botocore"),
    "adapters": ("archiver.app",),
}


def imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_a_layer_imports_nothing_outward(layer: str) -> None:
    modules = sorted((PACKAGE / layer).rglob("*.py"))
    assert modules
    offending = {
        f"{path.relative_to(PACKAGE)} imports {name}"
        for path in modules
        for name in imports(path)
        if name.startswith(FORBIDDEN[layer])
    }
    assert offending == set()


def test_no_module_grows_past_the_size_a_reader_takes_in() -> None:
    sizes = {
        str(path.relative_to(PACKAGE)): len(path.read_text(encoding="utf-8").splitlines())
        for path in PACKAGE.rglob("*.py")
    }
    assert {name: lines for name, lines in sizes.items() if lines > 320} == {}
