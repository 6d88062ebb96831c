"""The CLI prints what the library returns: ``--json`` passes a report's ``to_dict()`` (or a
library record) to ``_emit_json``, never a dict or list written out in the command (issue 13,
point 1). The files are parsed with ``ast``; nothing is run."""

from __future__ import annotations

import ast
from pathlib import Path

CLI = Path(__file__).resolve().parents[2] / "src" / "quantscope" / "cli"

#: Listings still assembled in the command, by (module, function): small JSON views of
#: catalog listings, not reports. Do not add reports here: give them a ``to_dict()``.
BUILT_IN_THE_CLI = {
    ("_metadata.py", "dataset_add"),
    ("_metadata.py", "dataset_rm"),
    ("_metadata.py", "dataset_ls"),
    ("_bench.py", "ls_cmd"),
}
_LITERALS = (ast.Dict, ast.List, ast.DictComp, ast.ListComp, ast.Tuple, ast.Set, ast.SetComp)


def hand_built(source: str, module: str) -> list[str]:
    """``module:function:line`` of every ``_emit_json(...)`` whose argument is a literal."""
    found = []
    for fn in ast.walk(ast.parse(source)):
        if not isinstance(fn, ast.FunctionDef):
            continue
        for node in ast.walk(fn):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "_emit_json"
                and node.args
                and isinstance(node.args[0], _LITERALS)
                and (module, fn.name) not in BUILT_IN_THE_CLI
            ):
                found.append(f"{module}:{fn.name}:{node.lineno}")
    return found


def test_no_command_builds_its_json_by_hand() -> None:
    found = []
    for path in sorted(CLI.glob("*.py")):
        found += hand_built(path.read_text(encoding="utf-8"), path.name)
    assert not found, "print the library's report.to_dict() instead:\n" + "\n".join(found)


def test_the_check_sees_literals() -> None:
    src = (
        "def cmd():\n"
        "    _emit_json({'a': 1})\n"
        "def ok():\n"
        "    _emit_json(report.to_dict())\n"
        "def rows():\n"
        "    _emit_json([x for x in y])\n"
    )
    assert hand_built(src, "_x.py") == ["_x.py:cmd:2", "_x.py:rows:6"]
