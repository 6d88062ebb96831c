"""Helpers shared by the ``quantscope`` command modules: console, errors, JSON output."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from ..catalog import Repository

RepoArg = Annotated[Path, typer.Argument(help="Repository folder.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def _console(stderr: bool = False) -> Console:

    import os

    import rich.console

    probe = rich.console.Console(stderr=stderr)
    # pipes and CI logs: wide enough that tables do not fold every cell
    width = None if probe.is_terminal or os.environ.get("COLUMNS") else 200
    return rich.console.Console(stderr=stderr, highlight=False, soft_wrap=True, width=width)


def _esc(value: object) -> str:
    """``value`` as text that rich prints literally: file and image names such as
    ``stack [xz].lif`` or ``[red].tif`` must not be read as console markup."""
    from rich.markup import escape

    return escape(str(value))


def _fail(message: str, code: int = 1) -> None:
    _console(stderr=True).print(f"[bold red]error:[/] {_esc(message)}", markup=True)
    raise typer.Exit(code)


def _open(repo: Path) -> Repository:
    from ..catalog import Repository

    return Repository.open(repo)


def _emit_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")


def _fmt_bytes(n: float) -> str:
    """Bytes in decimal (SI) units, as everywhere in quantscope: 1 kB = 1000 B, 1 MB = 10⁶ B."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"  # pragma: no cover
