"""Ground rules for the size of rooms in src/.

* No module over 800 lines: split it into rooms with clear names.
* No function or method (nested ones included) over 120 lines, counted from its ``def`` line to
  its last line: split it into steps with clear names.

The only documented exception is generated code: the alembic migrations under
``catalog/migrations/versions/`` spell out whole tables in one ``upgrade()`` and are never edited
after release, so their functions are exempt from the function rule (not from the module rule).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "quantscope"
MAX_LINES = 800
MAX_FUNCTION_LINES = 120

# Generated alembic migrations: exempt from the function rule (see the module docstring).
_FUNCTION_RULE_EXEMPT_DIRS = ("catalog/migrations/versions/",)


def test_no_module_over_800_lines() -> None:
    too_long = {
        str(p.relative_to(SRC)): n
        for p in sorted(SRC.rglob("*.py"))
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert too_long == {}


def _functions(tree: ast.AST, prefix: str = "") -> Iterator[tuple[str, ast.AST]]:
    """Yield ``(qualified name, node)`` for every function and method, nested ones included."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            name = f"{prefix}{node.name}"
            yield name, node
            yield from _functions(node, f"{name}.")
        elif isinstance(node, ast.ClassDef):
            yield from _functions(node, f"{prefix}{node.name}.")
        else:
            yield from _functions(node, prefix)


def _function_lengths() -> dict[str, int]:
    lengths: dict[str, int] = {}
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if rel.startswith(_FUNCTION_RULE_EXEMPT_DIRS):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for name, node in _functions(tree):
            assert isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            assert node.end_lineno is not None
            lengths[f"{rel}::{name}"] = node.end_lineno - node.lineno + 1
    return lengths


def test_no_function_over_120_lines() -> None:
    too_long = {key: n for key, n in _function_lengths().items() if n > MAX_FUNCTION_LINES}
    assert too_long == {}


def test_function_rule_sees_nested_functions_and_methods() -> None:
    # The scan must not stop at module level: a long nested helper or method counts too.
    source = "class A:\n    def m(self):\n        def inner():\n            pass\n"
    names = [name for name, _ in _functions(ast.parse(source))]
    assert names == ["A.m", "A.m.inner"]
