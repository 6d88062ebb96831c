"""``quantscope`` commands for the query area: ``find`` and ``fields``. Heavy imports (pandas,
lark) live inside the commands."""

from __future__ import annotations

import enum
import math
import sys
from typing import Annotated, Any

import typer

from .._text import plural
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
            for image_id in r.query.find_ids(query, limit=limit):
                sys.stdout.write(image_id + "\n")
            return
        df = r.query.find(query, cols, limit=limit)
    if fmt is Format.csv:
        df.to_csv(sys.stdout, index=False)
        return
    records = [{k: _plain(v) for k, v in row.items()} for row in df.to_dict("records")]
    if fmt is Format.json:
        _emit_json(records)
        return
    if not records:
        _console().print("no image matches")
        return
    from rich.table import Table

    shown = _compact(records) if cols is None else records
    t = Table(title=plural(len(shown), "image"), title_justify="left")
    for c in shown[0]:
        if c in ("id", "dims", "pixel µm", "dtype", "well", "field"):
            t.add_column(c, no_wrap=True)
        else:
            t.add_column(_esc(c), overflow="fold", min_width=min(len(c), 12))
    for row in shown:
        t.add_row(*(_esc(_cell(v)) for v in row.values()))
    _console().print(t)


def _compact(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The default columns as a table a person reads: the five sizes as one ``dims`` column
    (t x c x z x y x), the pixel sizes as one, and columns empty in every row left out
    (``--format json``/``csv`` keep every field)."""
    out = []
    for row in records:
        row = dict(row)
        sizes = [row.pop(f"size.{a}", None) for a in "tczyx"]
        px = [row.pop(f"pixel.size_{a}_um", None) for a in "xyz"]
        new: dict[str, Any] = {}
        for k, v in row.items():
            new[k] = v
            if k == "channels":
                new["dims"] = "x".join(str(n) for n in sizes) if None not in sizes else None
                new["pixel µm"] = _pixel_text(px)
        out.append(new)
    keep = [k for k in out[0] if any(r.get(k) not in (None, "") for r in out)]
    return [{k: r.get(k) for k in keep} for r in out]


def _pixel_text(px: list[Any]) -> str | None:
    x, y, z = px
    if x is None and y is None:
        return None
    text = f"{x:.4g}" if x == y or y is None else f"{x:.4g}x{y:.4g}"
    return text + (f"x{z:.4g}" if z else "")


def fields(repo: RepoArg, as_json: JsonOpt = False) -> None:
    """List every queryable field with its type, unit and example values."""
    with _open(repo) as r:
        rows = r.query.fields()
    if as_json:
        _emit_json(rows)
        return
    from rich.table import Table

    t = Table(title=plural(len(rows), "field"), title_justify="left")
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
