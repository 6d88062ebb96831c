"""Plate pages: the plates (``/plates``) and one plate's map (``/plates/{name}``).

The map colours each well by QC status (the worst of its fields), by a QC metric of one
channel, or by a column of a per-image summary table of the newest analysis run that measured
the plate (e.g. the nuclei count); metrics and features are the mean over the well's fields,
viridis from the smallest to the largest well, with a legend; a well links to the list of its
fields (each a link to its image page; the list is shown by CSS ``:target``, no script
needed). Only the images the caller may see are shown (:func:`._guard.filter_visible`); a plate
with none of them answers 404.
"""

from __future__ import annotations

import math
import threading
from collections import Counter, OrderedDict, defaultdict
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from .._html import fmt_sig, row_name, viridis_hex
from ..catalog import Principal
from ..errors import InvalidInput, NotFound
from ..model import well_name
from . import _guard
from ._auth import principal
from ._page import page
from ._state import state

if TYPE_CHECKING:
    from ..catalog import PlateInfo, Repository

__all__ = ["STATUS_COLORS", "plate_shape", "router"]

router = APIRouter(include_in_schema=False)

STATUS_COLORS = {"pass": "#2f855a", "warn": "#d69e2e", "fail": "#c53030", None: "#a0aec0"}
_RANK = {"fail": 3, "warn": 2, "pass": 1, None: 0}
# standard plate formats (rows, columns), smallest first
_FORMATS = ((2, 3), (4, 6), (8, 12), (16, 24), (32, 48))


def plate_shape(cells: list[tuple[int, int]]) -> tuple[int, int]:
    """(rows, columns) of the smallest standard plate holding ``cells`` (0-based)."""
    rows = max((r for r, _ in cells), default=0) + 1
    cols = max((c for _, c in cells), default=0) + 1
    for fr, fc in _FORMATS:
        if rows <= fr and cols <= fc:
            return fr, fc
    return rows, cols


def _visible_plates(repo: Repository, who: Principal) -> list[tuple[PlateInfo, list[Any]]]:
    """Each plate with the fields ``who`` may see (plates without any left out)."""
    plates = repo.images.plates()
    ids = [f.image_id for p in plates for f in p.fields]
    seen = set(_guard.filter_visible(repo, who, ids))
    out = []
    for p in plates:
        fields = [f for f in p.fields if f.image_id in seen]
        if fields:
            out.append((p, fields))
    return out


@router.get("/plates", response_class=HTMLResponse)
def plates_page(request: Request, who: Principal = Depends(principal)) -> HTMLResponse:
    """The plates, with their wells, fields and QC counts."""
    repo = state(request).repo
    rows = []
    for p, fields in _visible_plates(repo, who):
        status = repo.quality.status([f.image_id for f in fields])
        counts = Counter(status[f.image_id][0] if f.image_id in status else None for f in fields)
        rows.append(
            {
                "name": p.name,
                "wells": len({(f.row, f.column) for f in fields}),
                "fields": len(fields),
                "counts": [(s, counts.get(s, 0)) for s in ("pass", "warn", "fail", None)],
            }
        )
    return page(request, "plates.html.j2", title="Plates", nav="plates", plates=rows)


def _colour_options(
    repo: Repository, name: str, metrics: dict[str, dict[int, dict[str, float]]]
) -> list[tuple[str, str]]:
    """(value, label) of the colourings: QC status, then every metric of every channel."""
    groups = repo.quality.groups(plates=[name])
    channels: dict[int, str] = {}
    for _, chans in groups.values():
        for k, ch in enumerate(chans):
            channels.setdefault(k, ch)
    present: dict[tuple[str, int], None] = {}
    for per_channel in metrics.values():
        for k, values in per_channel.items():
            for metric in values:
                present[(metric, k)] = None
    opts = [("qc", "QC status")]
    for metric, k in sorted(present):
        opts.append((f"{metric}:{k}", f"{metric} · {channels.get(k, f'channel {k}')}"))
    return opts


_META = {"image_id", "plate", "well", "field", "row", "column"}


def _summary_tables(repo: Repository, ids: list[str]) -> tuple[str | None, dict[str, Any]]:
    """The per-image summary tables (a step's ``summary`` output) of the newest run that
    measured images of ``ids``: (run id, {table: {image id: artifact path}})."""
    want = set(ids)
    for run in repo.runs.all():  # newest first
        summaries = {
            o
            for step in run.spec.get("steps", [])
            for port, o in (step.get("outputs") or {}).items()
            if port == "summary"
        }
        arts = [
            a
            for a in repo.runs.artifacts(run.id)
            if a.kind == "table" and a.output in summaries and a.image_id in want
        ]
        if arts:
            tables: dict[str, dict[str, str]] = {}
            for a in arts:
                tables.setdefault(a.output, {})[a.image_id] = a.path
            return run.id, tables
    return None, {}


_ROWS: OrderedDict[tuple[str, int, int], dict[str, float]] = OrderedDict()
_ROWS_MAX = 8192
_rows_lock = threading.Lock()


def _summary_row(repo: Repository, path: str) -> dict[str, float]:
    """The numeric columns of a per-image summary table (its first row), cached by file (path,
    size, modification time): reading the ~500-column Parquet file costs ~10 ms."""
    import pyarrow.parquet as pq

    full = repo.root / path
    try:
        st = full.stat()
    except OSError:
        return {}
    key = (str(full), st.st_size, st.st_mtime_ns)
    with _rows_lock:
        if key in _ROWS:
            _ROWS.move_to_end(key)
            return _ROWS[key]
    try:
        table = pq.ParquetFile(full).read(use_pandas_metadata=False)
    except (OSError, ValueError):
        return {}
    row: dict[str, float] = {}
    if table.num_rows:
        for name, column in zip(table.column_names, table.columns, strict=True):
            kind = column.type
            if name in _META or not _numeric(kind):
                continue
            value = column[0].as_py()
            row[name] = math.nan if value is None else float(value)
    with _rows_lock:
        _ROWS[key] = row
        while len(_ROWS) > _ROWS_MAX:
            _ROWS.popitem(last=False)
    return row


def _numeric(kind: Any) -> bool:
    """Whether an Arrow type holds numbers (integers, floats, booleans)."""
    import pyarrow.types as pt

    return bool(pt.is_integer(kind) or pt.is_floating(kind) or pt.is_boolean(kind))


def _feature_options(repo: Repository, tables: dict[str, dict[str, str]]) -> list[tuple[str, str]]:
    """(value, label) of every numeric column of the summary tables (from one part each)."""
    out = []
    for table, parts in sorted(tables.items()):
        for col in _summary_row(repo, next(iter(parts.values()))):
            out.append((f"feature:{table}:{col}", f"{col} · {table}"))
    return out


def _feature_values(
    repo: Repository, parts: dict[str, str], column: str
) -> dict[str, dict[int, dict[str, float]]]:
    """{image id: {0: {column: value}}} from the summary table parts (the shape of
    ``repo.quality.metrics``, so that one colouring serves both)."""
    return {
        image_id: {0: {column: _summary_row(repo, path).get(column, math.nan)}}
        for image_id, path in parts.items()
    }


def _well_values(
    colour: str, fields: list[Any], status: dict[str, Any], metrics: dict[str, Any]
) -> tuple[dict[tuple[int, int], str], list[dict[str, Any]], dict[tuple[int, int], str]]:
    """(fill colour per well, legend entries, tooltip text per well)."""
    wells: dict[tuple[int, int], list[Any]] = defaultdict(list)
    for f in fields:
        wells[(f.row, f.column)].append(f)

    def st(image_id: str) -> str | None:
        return status[image_id][0] if image_id in status else None

    if colour == "qc":
        worst = {
            k: max((st(f.image_id) for f in v), key=lambda s: _RANK[s]) for k, v in wells.items()
        }
        fills = {k: STATUS_COLORS[s] for k, s in worst.items()}
        tips = {k: f"QC {s or 'not checked'}" for k, s in worst.items()}
        legend = [
            {"color": STATUS_COLORS[s], "label": s or "not checked"}
            for s in ("pass", "warn", "fail", None)
        ]
        return fills, legend, tips
    metric, _, index = colour.rpartition(":")
    if not metric or not index.isdigit():
        raise InvalidInput(f"color: expected 'qc' or '<metric>:<channel index>', got {colour!r}")
    k = int(index)
    means: dict[tuple[int, int], float] = {}
    for key, fs in wells.items():
        values = [metrics.get(f.image_id, {}).get(k, {}).get(metric, math.nan) for f in fs]
        finite = [v for v in values if math.isfinite(v)]
        means[key] = sum(finite) / len(finite) if finite else math.nan
    finite = [v for v in means.values() if math.isfinite(v)]
    lo, hi = (min(finite), max(finite)) if finite else (0.0, 1.0)
    span = hi - lo if hi > lo else 1.0
    fills = {
        key: viridis_hex((v - lo) / span) if math.isfinite(v) else "#d0d7de"
        for key, v in means.items()
    }
    tips = {key: f"{metric} = {fmt_sig(v)}" for key, v in means.items()}
    legend = [
        {"color": viridis_hex(t), "label": fmt_sig(lo + t * (hi - lo)) if finite else ""}
        for t in (0.0, 0.25, 0.5, 0.75, 1.0)
    ]
    legend.append({"color": "#d0d7de", "label": "undefined"})
    return fills, legend, tips


@router.get("/plates/{name:path}", response_class=HTMLResponse)
def plate_page(
    request: Request,
    name: str,
    color: str = Query("qc", max_length=200),
    who: Principal = Depends(principal),
) -> HTMLResponse:
    """One plate's map, coloured by ``color`` (``qc`` or ``<metric>:<channel index>``)."""
    repo = state(request).repo
    found = [(p, fs) for p, fs in _visible_plates(repo, who) if p.name == name]
    if not found:
        raise NotFound(f"no plate named {name[:200]!r}")
    plate, fields = found[0]
    ids = [f.image_id for f in fields]
    status = repo.quality.status(ids)
    metrics = repo.quality.metrics(ids)
    options = _colour_options(repo, plate.name, metrics)
    run_id, tables = _summary_tables(repo, ids)
    features = _feature_options(repo, tables)
    if color not in {v for v, _ in options + features}:
        raise InvalidInput(
            f"color: {color[:100]!r} is not a colouring of plate {plate.name!r}; use 'qc' or one "
            f"of the plate's metrics, e.g. {options[-1][0]!r}"
        )
    values = metrics
    if color.startswith("feature:"):
        _, table, column = color.split(":", 2)
        values = _feature_values(repo, tables[table], column)
        color = f"{column}:0"
    fills, legend, tips = _well_values(color, fields, status, values)
    names = repo.images.names(ids)
    by_well: dict[tuple[int, int], list[dict[str, Any]]] = defaultdict(list)
    for f in fields:
        by_well[(f.row, f.column)].append(
            {
                "id": f.image_id,
                "name": names.get(f.image_id, f.image_id),
                "field": f.field,
                "qc": status[f.image_id][0] if f.image_id in status else None,
            }
        )
    nrows, ncols = plate_shape(list(by_well))
    grid = [
        {
            "name": row_name(r),
            "wells": [
                {
                    "name": well_name(r, c),
                    "fill": fills.get((r, c)),
                    "tip": tips.get((r, c), ""),
                    "fields": by_well.get((r, c), []),
                }
                for c in range(ncols)
            ],
        }
        for r in range(nrows)
    ]
    return page(
        request,
        "plate.html.j2",
        title=f"Plate {plate.name}",
        nav="plates",
        plate=plate.name,
        grid=grid,
        columns=list(range(1, ncols + 1)),
        color=request.query_params.get("color", "qc"),
        options=options,
        features=features,
        run_id=run_id,
        legend=legend,
        n_fields=len(fields),
        n_wells=len(by_well),
    )
