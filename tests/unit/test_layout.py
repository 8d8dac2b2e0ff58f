"""The arrows point inward: the domain imports neither the adapters nor the app; adapters do
not import the app. Read from the source (ast), so a lazy import inside a function counts."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[2] / "src" / "archiver"
APP = ("archiver.app.composition", "archiver.app.cli")
FORBIDDEN = {
    "domain": ("archiver.app", "archiver.adapters", "boto3", "botocore"),
    "adapters": ("archiver.app",),
    # The engine knows no job, no loop; the loop knows no archive; the use case no loop.
    "app/engine": ("archiver.app.jobs", "archiver.app.worker", "archiver.adapters", *APP),
    "app/worker": ("archiver.app.engine", "archiver.adapters", *APP),
    "app/jobs": ("archiver.app.worker", "archiver.adapters", *APP),
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
    assert {name: lines for name, lines in sizes.items() if lines > 300} == {}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_no_import_circle() -> None:
    graph = {
        module_name(path): {name for name in imports(path) if name.startswith("archiver.")}
        for path in PACKAGE.rglob("*.py")
    }
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        assert module not in path, " -> ".join((*path, module))
        if module in done:
            return
        for imported in graph.get(module, ()):
            visit(imported, (*path, module))
        done.add(module)

    for module in sorted(graph):
        visit(module, ())


def test_the_app_folder_says_what_belongs_where() -> None:
    flat = sorted(
        path.name for path in (PACKAGE / "app").glob("*.py") if path.name != "__init__.py"
    )
    assert len(flat) <= 6, flat
    for package in (PACKAGE / "app").iterdir():
        if (package / "__init__.py").exists():
            doc = ast.get_docstring(ast.parse((package / "__init__.py").read_text("utf-8")))
            assert doc, f"{package.name} has no docstring"
            assert "import" in doc, f"{package.name} does not say what it may import"
