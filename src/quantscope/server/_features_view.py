"""What the runs and features pages draw: a feature table filtered, sorted and paged, a
histogram and a scatter plot as SVG, and a run's provenance graph as SVG.

Every SVG is built here, on the server, with every text escaped (:func:`quantscope._html.escape`);
the pages embed it as markup.
"""

from __future__ import annotations

import math
import operator
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .._html import escape
from ..errors import InvalidInput

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "TableView",
    "apply_filter",
    "histogram_svg",
    "provenance_svg",
    "scatter_svg",
    "view_table",
]

_CLAUSE = re.compile(
    r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=|==|!=|<|>|=)\s*(?:'([^']*)'|\"([^\"]*)\"|(\S+))\s*$"
)
_PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
MAX_POINTS = 5000
_OPS = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "=": operator.eq,
    "!=": operator.ne,
}


def apply_filter(df: pd.DataFrame, expr: str | None) -> pd.DataFrame:
    """Rows of ``df`` where every clause of ``expr`` holds: clauses ``COLUMN OP VALUE`` joined
    by ``and`` (OP one of ``< <= > >= == != =``; VALUE a number, or text in quotes for a text
    column). Parsed here, never evaluated as code.

    Raises
    ------
    InvalidInput
        A clause that does not parse, an unknown column, a number compared with text.
    """
    import pandas as pd

    if not expr or not expr.strip():
        return df
    if len(expr) > 1000:
        raise InvalidInput("filter: at most 1000 characters")
    mask = pd.Series(True, index=df.index)
    for clause in re.split(r"\s+and\s+", expr.strip(), flags=re.IGNORECASE):
        m = _CLAUSE.match(clause)
        if not m:
            raise InvalidInput(
                f"filter: {clause[:80]!r} is not COLUMN OP VALUE (e.g. AreaShape_Area > 50 and "
                "well == 'A01')"
            )
        col, op, q1, q2, bare = m.groups()
        if col not in df.columns:
            raise InvalidInput(f"filter: no column {col!r}")
        text = q1 if q1 is not None else q2
        series = df[col]
        value: Any
        if text is None and pd.api.types.is_numeric_dtype(series):
            try:
                value = float(bare)
            except ValueError:
                raise InvalidInput(f"filter: {col} is numeric; {bare[:40]!r} is not") from None
        else:
            value = text if text is not None else bare
            series = series.astype(str)
            if op not in ("==", "=", "!="):
                raise InvalidInput(f"filter: {col} is text; compare it with == or !=")
        mask &= _OPS[op](series, value)
    return df[mask]


@dataclass
class TableView:
    """One page of a filtered, sorted table."""

    columns: list[str]
    rows: list[list[Any]]
    total: int
    matching: int
    page: int
    pages: int
    per_page: int
    numeric: list[str] = field(default_factory=list)
    text: list[str] = field(default_factory=list)


def _number(v: Any) -> Any:
    if isinstance(v, float):
        if not math.isfinite(v):
            return ""
        return f"{v:.4g}"
    return v


def view_table(
    df: pd.DataFrame,
    *,
    columns: list[str],
    sort: str | None = None,
    desc: bool = False,
    page: int = 1,
    per_page: int = 50,
) -> TableView:
    """Page ``page`` (from 1) of ``df`` (already filtered) sorted by ``sort``, showing
    ``columns``."""
    import pandas as pd

    per_page = max(1, min(int(per_page), 500))
    total = len(df)
    if sort:
        if sort not in df.columns:
            raise InvalidInput(f"sort: no column {sort!r}")
        df = df.sort_values(sort, ascending=not desc, kind="stable", na_position="last")
    pages = max(1, math.ceil(total / per_page))
    page = max(1, min(int(page), pages))
    chunk = df.iloc[(page - 1) * per_page : page * per_page]
    rows = [[_number(v) for v in r] for r in chunk[columns].itertuples(index=False)]
    numeric = [c for c in df.columns if pd.api.types.is_numeric_dtype(df[c])]
    text = [c for c in df.columns if c not in numeric]
    return TableView(columns, rows, total, total, page, pages, per_page, numeric, text)


def _ticks(lo: float, hi: float) -> list[float]:
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    step = 10 ** math.floor(math.log10((hi - lo) / 4))
    for m in (1, 2, 5, 10):
        if (hi - lo) / (step * m) <= 6:
            step *= m
            break
    first = math.ceil(lo / step) * step
    return [first + k * step for k in range(int((hi - first) / step) + 1)]


def histogram_svg(values: Any, name: str, *, bins: int = 30, width: int = 420) -> str:
    """An SVG histogram of ``values`` (NaN left out)."""
    import numpy as np

    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    h, pad = 220, 40
    head = (
        f"<svg xmlns='http://www.w3.org/2000/svg' class='histogram' width='{width}' "
        f"height='{h + pad}' role='img' aria-label='histogram of {escape(name)}'>"
    )
    if not len(v):
        return head + f"<text x='10' y='20'>{escape(name)}: no finite values</text></svg>"
    lo, hi = float(v.min()), float(v.max())
    if hi == lo:
        hi = lo + 1.0
    counts, edges = np.histogram(v, bins=bins, range=(lo, hi))
    top = max(int(counts.max()), 1)
    bw = (width - pad - 10) / bins
    parts = [head]
    for i, c in enumerate(counts):
        bh = (h - 20) * c / top
        parts.append(
            f"<rect x='{pad + i * bw:.1f}' y='{h - bh:.1f}' width='{max(bw - 1, 1):.1f}' "
            f"height='{bh:.1f}' fill='#2b6cb0'><title>{edges[i]:.4g} – {edges[i + 1]:.4g}: "
            f"{int(c)}</title></rect>"
        )
    for t in _ticks(lo, hi):
        x = pad + (t - lo) / (hi - lo) * (width - pad - 10)
        parts.append(f"<text x='{x:.1f}' y='{h + 14}' font-size='10'>{t:.3g}</text>")
    parts.append(f"<text x='{pad}' y='12' font-size='11'>max {top}</text>")
    parts.append(
        f"<text x='{width / 2:.0f}' y='{h + 32}' font-size='12' text-anchor='middle'>"
        f"{escape(name)} (n = {len(v)})</text></svg>"
    )
    return "".join(parts)


def scatter_svg(
    df: pd.DataFrame,
    x: str,
    y: str,
    color: str | None,
    *,
    crop_url: str | None = None,
    width: int = 460,
) -> str:
    """An SVG scatter plot of columns ``x`` and ``y``, coloured by the text column ``color``;
    each point a link to its object's crop (``crop_url`` formatted with ``image_id`` and
    ``label``) where the table has ``image_id`` and ``ObjectNumber``."""
    import numpy as np

    h, pad = 320, 56
    data = df
    if len(data) > MAX_POINTS:
        data = data.sample(MAX_POINTS, random_state=0)
    xs = np.asarray(data[x], dtype=np.float64)
    ys = np.asarray(data[y], dtype=np.float64)
    ok = np.isfinite(xs) & np.isfinite(ys)
    out = [
        f"<svg xmlns='http://www.w3.org/2000/svg' class='scatter' width='{width}' "
        f"height='{h + pad}' role='img' aria-label='{escape(y)} against {escape(x)}'>"
    ]
    if not ok.any():
        return out[0] + "<text x='10' y='20'>no finite points</text></svg>"
    x0, x1 = float(xs[ok].min()), float(xs[ok].max())
    y0, y1 = float(ys[ok].min()), float(ys[ok].max())
    x1, y1 = (x1 if x1 > x0 else x0 + 1), (y1 if y1 > y0 else y0 + 1)
    groups = [str(g) for g in data[color]] if color else ["all"] * len(data)
    colours = {g: _PALETTE[i % len(_PALETTE)] for i, g in enumerate(sorted(set(groups)))}
    has_obj = crop_url is not None and {"image_id", "ObjectNumber"} <= set(data.columns)
    ids = list(data["image_id"]) if has_obj else []
    objs = list(data["ObjectNumber"]) if has_obj else []
    for k in np.flatnonzero(ok):
        px = pad + (xs[k] - x0) / (x1 - x0) * (width - pad - 10)
        py = h - (ys[k] - y0) / (y1 - y0) * (h - 10)
        g = groups[k]
        tip = f"{g}: {x} {xs[k]:.4g}, {y} {ys[k]:.4g}"
        dot = (
            f"<circle cx='{px:.1f}' cy='{py:.1f}' r='3' fill='{colours[g]}' "
            f"fill-opacity='0.75'><title>{escape(tip)}</title></circle>"
        )
        if has_obj and crop_url is not None:
            url = crop_url.format(image_id=ids[k], label=int(objs[k]))
            dot = (
                f"<a href='{escape(url)}' class='point' data-image='{escape(ids[k])}' "
                f"data-label='{int(objs[k])}' target='crop'>{dot}</a>"
            )
        out.append(dot)
    for t in _ticks(x0, x1):
        px = pad + (t - x0) / (x1 - x0) * (width - pad - 10)
        out.append(f"<text x='{px:.1f}' y='{h + 14}' font-size='10'>{t:.3g}</text>")
    for t in _ticks(y0, y1):
        py = h - (t - y0) / (y1 - y0) * (h - 10)
        out.append(
            f"<text x='{pad - 4}' y='{py:.1f}' font-size='10' text-anchor='end'>{t:.3g}</text>"
        )
    out.append(
        f"<text x='{width / 2:.0f}' y='{h + 32}' font-size='12' text-anchor='middle'>"
        f"{escape(x)}</text>"
    )
    out.append(
        f"<text x='10' y='{h / 2:.0f}' font-size='12' text-anchor='middle' "
        f"transform='rotate(-90 10 {h / 2:.0f})'>{escape(y)}</text>"
    )
    legend_y = 14
    for g, c in list(colours.items())[:12]:
        out.append(
            f"<text x='{width - 8}' y='{legend_y}' font-size='10' text-anchor='end' "
            f"fill='{c}'>{escape(g)}</text>"
        )
        legend_y += 12
    out.append("</svg>")
    return "".join(out)


def provenance_svg(doc: dict[str, Any]) -> str:
    """A run's lineage (:func:`quantscope.provenance.run_lineage`) as a left-to-right graph:
    source images → each step (tool, version) → the outputs."""
    steps = doc.get("steps", [])
    outputs = doc.get("outputs", [])
    images = doc.get("images", [])
    box_w, box_h, gap = 170, 46, 28
    cols = 1 + len(steps) + 1
    width = cols * (box_w + gap) + 10
    rows = max(1, len(outputs))
    height = max(box_h + 20, rows * (box_h + 10) + 20)
    parts = [
        f"<svg xmlns='http://www.w3.org/2000/svg' class='provenance' width='{width}' "
        f"height='{height}' role='img' aria-label='provenance graph'>",
        "<defs><marker id='arrow' markerWidth='8' markerHeight='8' refX='8' refY='4' "
        "orient='auto'><path d='M0,0 L8,4 L0,8 z' fill='#6e6e73'/></marker></defs>",
    ]

    def box(col: int, y: float, title: str, sub: str, cls: str) -> tuple[float, float]:
        x = 5 + col * (box_w + gap)
        parts.append(
            f"<g class='node {cls}'><rect x='{x}' y='{y}' width='{box_w}' height='{box_h}' "
            f"rx='6' fill='#f5f5f7' stroke='#2b6cb0'/>"
            f"<text x='{x + 8}' y='{y + 18}' font-size='12' font-weight='600'>"
            f"{escape(title[:24])}</text>"
            f"<text x='{x + 8}' y='{y + 34}' font-size='10'>{escape(sub[:30])}</text></g>"
        )
        return x, y

    def arrow(a: tuple[float, float], b: tuple[float, float]) -> None:
        parts.append(
            f"<line x1='{a[0] + box_w}' y1='{a[1] + box_h / 2}' x2='{b[0]}' "
            f"y2='{b[1] + box_h / 2}' stroke='#6e6e73' marker-end='url(#arrow)'/>"
        )

    mid = (height - box_h) / 2
    files = sum(len(i.get("sources") or []) for i in images)
    prev = box(0, mid, f"{len(images)} source image(s)", f"{files} file(s)", "images")
    for k, s in enumerate(steps):
        counts = ", ".join(f"{n} {st}" for st, n in (s.get("counts") or {}).items())
        version = ",".join(s.get("versions") or []) or "?"
        cur = box(k + 1, mid, f"{s.get('id')}: {s.get('tool')}", f"v{version} {counts}", "step")
        arrow(prev, cur)
        prev = cur
    for k, o in enumerate(outputs):
        y = 10 + k * (box_h + 10)
        cur = box(
            cols - 1, y, str(o.get("output")), f"{o.get('kind')}, {o.get('parts')} part(s)", "out"
        )
        arrow(prev, cur)
    parts.append("</svg>")
    return "".join(parts)
