"""Every subpackage's ``__all__`` is exactly the public names it defines or re-exports.

In the style of httpx's ``tests/test_exported_members.py``: a name that a package's
``__init__`` binds for its users (imported from one of its own modules, defined, or promised
lazily through ``__getattr__``) must be in ``__all__``, and every name in ``__all__`` must
exist. Submodules and the package's own imports of the standard library or third-party
libraries (``TYPE_CHECKING``, ``Any``, ``importlib``) are not part of the surface.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import subprocess
import sys
import types
from pathlib import Path

import pytest

PACKAGES = [
    "quantscope",
    "quantscope.errors",
    "quantscope.model",
    "quantscope.io",
    "quantscope.metadata",
    "quantscope.quality",
    "quantscope.catalog",
    "quantscope.analysis",
    "quantscope.provenance",
    "quantscope.benchmark",
    "quantscope.synth",
    "quantscope.ingestion",
    "quantscope.qc",
    "quantscope.cli",
    "quantscope.server",
]


def _public(name: str) -> bool:
    return not name.startswith("_")


def _bound_names(stmts: list[ast.stmt], package: str) -> set[str]:
    """Public names the module's top level binds from its own package, or defines.

    Descends into ``if``/``try`` blocks (``if TYPE_CHECKING:`` imports are the names a module
    ``__getattr__`` provides lazily), never into functions or classes.
    """
    names: set[str] = set()
    for stmt in stmts:
        if isinstance(stmt, ast.ImportFrom):
            own = stmt.level > 0 or (stmt.module or "").startswith(package)
            if own and stmt.module is not None:  # ``from . import sub``: a submodule
                names.update(a.asname or a.name for a in stmt.names)
        elif isinstance(stmt, ast.Import):
            continue  # ``import x``: a module, never a name of the surface
        elif isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(stmt.name)
        elif isinstance(stmt, ast.Assign):
            for target in stmt.targets:
                if isinstance(target, ast.Name):
                    names.add(target.id)
        elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
            names.add(stmt.target.id)
        elif isinstance(stmt, ast.If):
            names |= _bound_names(stmt.body, package) | _bound_names(stmt.orelse, package)
        elif isinstance(stmt, ast.Try):
            for block in (stmt.body, stmt.orelse, stmt.finalbody):
                names |= _bound_names(block, package)
            for handler in stmt.handlers:
                names |= _bound_names(handler.body, package)
    return {n for n in names if _public(n)}


def _expected_surface(mod: types.ModuleType) -> set[str]:
    source = Path(inspect.getfile(mod)).read_text(encoding="utf-8")
    root = mod.__name__ if hasattr(mod, "__path__") else mod.__name__.rpartition(".")[0]
    return _bound_names(ast.parse(source).body, root)


@pytest.mark.parametrize("package", PACKAGES)
def test_all_is_exactly_the_public_names(package: str) -> None:
    mod = importlib.import_module(package)
    exported = list(mod.__all__)
    assert len(exported) == len(set(exported)), f"{package}.__all__ repeats a name"
    expected = _expected_surface(mod)
    if package == "quantscope":
        expected.add("__version__")
    missing = sorted(expected - set(exported))
    extra = sorted(set(exported) - expected)
    assert not missing, f"{package} binds public names that __all__ leaves out: {missing}"
    assert not extra, f"{package}.__all__ names what the package does not define: {extra}"
    for name in exported:
        assert getattr(mod, name) is not None, (package, name)


@pytest.mark.parametrize("package", PACKAGES)
def test_no_public_quantscope_object_outside_all(package: str) -> None:
    """What the package namespace holds at run time agrees: every public function or class of
    quantscope's own that the package carries (lazy ones once loaded, too) is in ``__all__``."""
    mod = importlib.import_module(package)
    for name in list(mod.__all__):
        getattr(mod, name)  # load the lazy ones
    stray = [
        name
        for name, value in vars(mod).items()
        if _public(name)
        and not isinstance(value, types.ModuleType)
        and (inspect.isclass(value) or inspect.isfunction(value))
        and getattr(value, "__module__", "").startswith("quantscope")
        and name not in mod.__all__
    ]
    assert not stray, f"{package} carries public names outside __all__: {stray}"


def test_the_check_sees_what_it_should() -> None:
    source = (
        "from __future__ import annotations\n"
        "import importlib\n"
        "from typing import TYPE_CHECKING, Any\n"
        "from ._a import A, b as c, _hidden\n"
        "from quantscope.pkg._d import D\n"
        "from . import _schema as schema\n"
        "if TYPE_CHECKING:\n"
        "    from ._lazy import lazy_thing\n"
        "CONSTANT = 1\n"
        "def helper() -> None:\n"
        "    from ._inner import not_bound\n"
        "class Thing: ...\n"
        "_private = 2\n"
    )
    assert _bound_names(ast.parse(source).body, "quantscope.pkg") == {
        "A",
        "c",
        "D",
        "lazy_thing",
        "CONSTANT",
        "helper",
        "Thing",
    }


def test_top_level_names_are_not_shadowed_by_subpackages() -> None:
    """Loading a subpackage binds it as an attribute of ``quantscope``: a subpackage named as a
    top-level function would replace the function (``quantscope.ingest`` was both until the
    subpackage became ``quantscope.ingestion``). Every subpackage is loaded first."""
    code = (
        "import importlib, types, quantscope\n"
        f"for name in {PACKAGES!r}:\n"
        "    importlib.import_module(name)\n"
        "print([n for n in quantscope.__all__ "
        "if isinstance(getattr(quantscope, n), types.ModuleType)])\n"
        "print(quantscope.ingest.__module__, callable(quantscope.ingest))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[:2] == ["[]", "quantscope.ingestion._ingest True"]
