"""The direction of imports in ``src/quantscope`` (DESIGN.md, "Dependencies point downward").

- The thin layers on top, ``cli`` and ``server``, use other packages only through what those
  packages export: ``from ..analysis import export_table`` is fine, ``from ..analysis._export
  import ...`` (or ``from quantscope.analysis import _export``) is not. The exceptions are the
  shared private modules every layer may use (:data:`SHARED_PRIVATE`).
- Nothing below them imports ``quantscope.cli`` or ``quantscope.server``.
- Every package imports only from its own level or below, in the order of DESIGN.md
  (:data:`LEVELS`): ``cli``/``server`` -> ``analysis``, ``benchmark``, ``provenance``,
  ``ingestion``, ``qc`` -> ``catalog``, ``io``, ``quality``, ``metadata`` -> ``model`` ->
  ``errors``. Packages of one level may use each other (``catalog`` reads ``metadata``,
  ``benchmark`` runs ``analysis`` pipelines); :data:`LAYER_EXCEPTIONS` lists the few
  documented imports that break the order.

Imports inside functions and under ``if TYPE_CHECKING:`` count too. The files are parsed with
``ast``, nothing is imported.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE_ROOT = SRC / "quantscope"
TOP_LAYERS = ("cli", "server")
#: Private modules any layer may import (documented as such in their docstrings):
#: ``_text``, the dependency-free text helpers; ``_html``, the HTML toolkit (escaping, number
#: formats, colour maps, data URIs, Jinja2 templates) of the QC report, the leaderboard and the
#: server's pages.
SHARED_PRIVATE = ("quantscope._text", "quantscope._html")

#: The dependency order of DESIGN.md: a package imports from its own level or a lower one.
#: ``quantscope`` itself (the top-level ``__init__``) is the public facade over all of them.
LEVELS: dict[str, int] = {
    "cli": 4,
    "server": 4,
    "analysis": 3,
    "benchmark": 3,
    "provenance": 3,
    "ingestion": 3,  # orchestration: files -> store + catalog
    "qc": 3,  # orchestration: QC of a repository
    "catalog": 2,
    "io": 2,
    "quality": 2,
    "metadata": 2,
    "synth": 2,  # synthetic images with ground truth: a data source beside io
    "model": 1,
    "errors": 0,
    "_text": 0,  # dependency-free helpers every layer may use
    "_files": 0,
    "_html": 2,  # the HTML toolkit (imports model): used by qc, benchmark and server
}
#: Imports that break the order on purpose: (importing package, imported dotted name).
LAYER_EXCEPTIONS: frozenset[tuple[str, str]] = frozenset(
    {
        # a ground-truth set records the quantscope version that registered it
        ("benchmark", "quantscope.__version__"),
    }
)


def _module_name(path: Path) -> tuple[str, str]:
    """The dotted name of a source file and the package its relative imports start from."""
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
        return ".".join(parts), ".".join(parts)
    return ".".join(parts), ".".join(parts[:-1])


def _resolve(node: ast.ImportFrom, package: str) -> str:
    if not node.level:
        return node.module or ""
    base = package.split(".")
    base = base[: len(base) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def imported_targets(source: str, package: str) -> Iterator[tuple[int, str]]:
    """``(line, dotted target)`` for every import in ``source``: the module, and for
    ``from m import n`` also ``m.n`` (``n`` may be a submodule)."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            module = _resolve(node, package)
            yield node.lineno, module
            for alias in node.names:
                yield node.lineno, f"{module}.{alias.name}"


def _is_private_elsewhere(target: str, own: str) -> bool:
    """True when ``target`` reaches into a private part of a quantscope package other than
    ``own``."""
    if not target.startswith("quantscope.") or target == own or target.startswith(own + "."):
        return False
    for shared in SHARED_PRIVATE:
        if target == shared or target.startswith(shared + "."):
            return False
    return any(part.startswith("_") for part in target.split(".")[1:])


def private_imports(source: str, module: str, package: str, own: str) -> list[str]:
    return [
        f"{module}:{line} imports {target}"
        for line, target in imported_targets(source, package)
        if _is_private_elsewhere(target, own)
    ]


def _sources(under: Path) -> list[Path]:
    return sorted(under.rglob("*.py"))


@pytest.mark.parametrize("layer", TOP_LAYERS)
def test_top_layers_import_only_what_packages_export(layer: str) -> None:
    own = f"quantscope.{layer}"
    found: list[str] = []
    for path in _sources(PACKAGE_ROOT / layer):
        module, package = _module_name(path)
        found += private_imports(path.read_text(encoding="utf-8"), module, package, own)
    assert not found, "import the name from its package's __init__ instead:\n" + "\n".join(found)


def test_nothing_below_imports_the_top_layers() -> None:
    tops = tuple(f"quantscope.{layer}" for layer in TOP_LAYERS)
    found = []
    for path in _sources(PACKAGE_ROOT):
        module, package = _module_name(path)
        if module.startswith(tops):
            continue
        for line, target in imported_targets(path.read_text(encoding="utf-8"), package):
            if target in tops or target.startswith(tuple(t + "." for t in tops)):
                found.append(f"{module}:{line} imports {target}")
    assert not found, "\n".join(found)


@pytest.mark.parametrize(
    ("source", "refused"),
    [
        ("from quantscope.analysis._export import NAMINGS", True),
        ("from .._export import x", True),
        ("from ..analysis._export import NAMINGS", True),
        ("from ..analysis import _export", True),
        ("import quantscope.catalog._edit", True),
        ("def f():\n    from ..benchmark._pipeline import p", True),
        ("from ..analysis import export_table", False),
        ("from quantscope.catalog import Repository", False),
        ("from .._text import plural", False),
        ("from .._html import escape, render", False),
        ("from quantscope._html import png_data_uri", False),
        ("from ._common import _fail", False),
        ("from . import _analysis", False),
        ("import typer", False),
    ],
)
def test_the_rule_itself(source: str, refused: bool) -> None:
    found = private_imports(source, "quantscope.cli._app", "quantscope.cli", "quantscope.cli")
    assert bool(found) is refused, found


def upward_imports(source: str, module: str, package: str) -> list[str]:
    """The imports of ``module`` that reach a package above its own in :data:`LEVELS`, or a
    name of the top-level facade (``from .. import __version__``)."""
    own = module.split(".")[1] if module.count(".") else None
    if own is None:  # the top-level facade itself
        return []
    found = []
    for line, target in imported_targets(source, package):
        parts = target.split(".")
        if parts[0] != "quantscope" or len(parts) == 1 or parts[1] == own:
            continue
        if (own, target) in LAYER_EXCEPTIONS:
            continue
        other = parts[1]
        if other not in LEVELS:
            found.append(f"{module}:{line} imports {target} from the top-level package")
        elif LEVELS[other] > LEVELS[own]:
            found.append(f"{module}:{line} imports {target} ({own} is below {other})")
    return found


def test_every_package_is_in_the_order() -> None:
    packages = {
        p.stem if p.is_file() else p.name
        for p in PACKAGE_ROOT.iterdir()
        if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").is_file()
    }
    assert packages <= set(LEVELS), f"give these a level in LEVELS: {packages - set(LEVELS)}"


def test_dependencies_point_downward() -> None:
    found: list[str] = []
    for path in _sources(PACKAGE_ROOT):
        module, package = _module_name(path)
        found += upward_imports(path.read_text(encoding="utf-8"), module, package)
    assert not found, "an import against the order of DESIGN.md:\n" + "\n".join(found)


@pytest.mark.parametrize(
    ("module", "source", "refused"),
    [
        ("quantscope.catalog._find", "from ..analysis import run_pipeline", True),
        ("quantscope.catalog._find", "def f():\n    from quantscope.qc import run_qc", True),
        ("quantscope.model._image", "from ..io import read_image", True),
        ("quantscope.io._plate", "from ..benchmark import leaderboard", True),
        ("quantscope.quality._flags", "from ..catalog import Repository", False),
        ("quantscope.catalog._edit", "from ..metadata import parse_quantity", False),
        ("quantscope.analysis._plan", "from ..catalog import select_images", False),
        ("quantscope.benchmark._pipeline", "from ..analysis import run_pipeline", False),
        ("quantscope.cli._app", "from ..ingestion import ingest", False),
        ("quantscope.model._image", "from .._text import plural", False),
        ("quantscope.catalog._edit", "from .. import __version__", True),
        ("quantscope.benchmark._sets", "from .. import __version__", False),
    ],
)
def test_the_order_itself(module: str, source: str, refused: bool) -> None:
    package = module.rpartition(".")[0]
    found = upward_imports(source, module, package)
    assert bool(found) is refused, found
