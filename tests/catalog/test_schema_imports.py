"""The catalog schema modules import each other in one direction only (issue 13 point 6)."""

from __future__ import annotations

import ast
from pathlib import Path

import quantscope.catalog

CATALOG = Path(quantscope.catalog.__file__).parent


def _schema_imports(path: Path) -> set[str]:
    """Names of the ``_schema*`` modules that ``path`` imports (relative imports)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module is None:
                found |= {a.name for a in node.names if a.name.startswith("_schema")}
            elif node.module.startswith("_schema"):
                found.add(node.module.split(".")[0])
    return found


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        path.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                return [*path[path.index(m) :], m]
            if m not in state and (found := visit(m)):
                return found
        state[n] = 2
        path.pop()
        return None

    for n in sorted(graph):
        if n not in state and (found := visit(n)):
            return found
    return None


def test_schema_modules_form_no_import_cycle() -> None:
    graph = {p.stem: _schema_imports(p) for p in CATALOG.glob("_schema*.py")}
    assert {"_schema", "_schema_analysis", "_schema_bench", "_schema_base"} <= set(graph)
    assert _cycle(graph) is None, f"import cycle among the catalog schema modules: {_cycle(graph)}"
    # the table modules build on the shared metadata, never on _schema itself
    assert graph["_schema_analysis"] == {"_schema_base"}
    assert graph["_schema_bench"] == {"_schema_base"}


def test_the_cycle_check_sees_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_schema_metadata_holds_every_table() -> None:
    from quantscope.catalog import _schema, _schema_analysis, _schema_base, _schema_bench

    assert _schema.metadata is _schema_base.metadata
    tables = set(_schema.metadata.tables)
    assert {"images", "channels", "annotations"} <= tables
    assert set(_schema_analysis.__all__) <= tables
    assert set(_schema_bench.__all__) <= tables
