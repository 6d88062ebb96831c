"""``quantscope`` commands for the query area: ``find`` and ``fields``. Heavy imports (pandas,
lark) live inside the commands."""

from __future__ import annotations

import enum
import math
import sys
from typing import Annotated, Any

import typer

from ._common import JsonOpt, RepoArg, _console, _emit_json, _esc, _fail, _open


class Format(enum.StrEnum):
    table = "table"
    json = "json"
    csv = "csv"
    ids = "ids"


QueryArg = Annotated[
    str,
    typer.Argument(
        help='Query, e.g. \'channel.name == "DAPI" and objective.na >= 1.3 and tag == "control"\' '
        "(empty: every image). `quantscope fields REPO` lists the fields."
    ),
]


def _plain(v: Any) -> Any:
    """A DataFrame cell as a JSON value (NaN/NaT -> null, timestamps -> ISO 8601)."""
    if v is None:
        return None
    if isinstance(v, float) and math.isnan(v):
        return None
    if hasattr(v, "isoformat"):
        import pandas as pd

        return None if v is pd.NaT else v.isoformat()
    if hasattr(v, "item"):  # numpy scalar
        return _plain(v.item())
    return v


def _cell(v: Any) -> str:
    v = _plain(v)
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def find(
    repo: RepoArg,
    query: QueryArg,
    fmt: Annotated[
        Format, typer.Option("--format", "-f", help="table, json (records), csv or ids.")
    ] = Format.table,
    columns: Annotated[
        str | None,
        typer.Option(
            "--columns",
            "-c",
            help="Comma-separated fields to show (default: id, name, plate, well, field, "
            "channels, size, dtype, pixel size, objective.na, acquired).",
        ),
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="At most this many images.")] = None,
) -> None:
    """Find images with a query: comparisons (== != < <= > >=), in (...), like, exists,
    and/or/not, parentheses; fields from metadata, annotations and quality control."""
    cols = None
    if columns is not None:
        cols = [c.strip() for c in columns.split(",") if c.strip()]
        if not cols:
            _fail("--columns: name at least one field (see `quantscope fields REPO`)")
    with _open(repo) as r:
        if fmt is Format.ids:
            for image_id in r.find_ids(query, limit=limit):
                sys.stdout.write(image_id + "\n")
            return
        df = r.find(query, cols, limit=limit)
    if fmt is Format.csv:
        df.to_csv(sys.stdout, index=False)
        return
    records = [{k: _plain(v) for k, v in row.items()} for row in df.to_dict("records")]
    if fmt is Format.json:
        _emit_json(records)
        return
    from rich.table import Table

    t = Table(title=f"{len(df)} image(s)", title_justify="left")
    for c in df.columns:
        if c == "id":
            t.add_column("id", no_wrap=True, min_width=32)
        else:
            t.add_column(_esc(c), overflow="fold")
    for row in records:
        t.add_row(*(_esc(_cell(v)) for v in row.values()))
    _console().print(t)


def fields(repo: RepoArg, as_json: JsonOpt = False) -> None:
    """List every queryable field with its type, unit and example values."""
    with _open(repo) as r:
        rows = r.fields()
    if as_json:
        _emit_json(rows)
        return
    from rich.table import Table

    t = Table(title=f"{len(rows)} field(s)", title_justify="left")
    for col in ("field", "kind", "type", "unit", "examples", "description"):
        t.add_column(col, overflow="fold")
    for f in rows:
        name = f["name"] + (f" ({', '.join(f['aliases'])})" if f["aliases"] else "")
        examples = ", ".join(repr(e) if isinstance(e, str) else _cell(e) for e in f["examples"])
        t.add_row(
            _esc(name),
            f["kind"],
            f["type"],
            _esc(f["unit"] or ""),
            _esc(examples),
            _esc(f["description"]),
        )
    _console().print(t)


def register(app: typer.Typer) -> None:
    """Attach this module's commands to the ``quantscope`` app."""
    app.command("find")(find)
    app.command("fields")(fields)
