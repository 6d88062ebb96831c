"""The portal's pages: search ("/"), and the routers of the image page, the plate maps and the
QC dashboard (:mod:`._pages_image`, :mod:`._pages_plates`, :mod:`._pages_qc`).

The search page runs the query language through the same library function as the API
(``repo.query.page`` narrowed by :func:`._guard.visible_images`): a syntax error is shown with
its caret, as on the command line (status 400). Its facets count the current result by plate,
channel, tag and QC status (``repo.query.find`` of the same query, narrowed by
:func:`._guard.filter_visible`); each count links to the query with that condition added.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from ..catalog import Principal
from ..errors import InvalidInput
from . import _guard
from ._auth import principal
from ._page import page
from ._pages_image import router as image_router
from ._pages_plates import router as plates_router
from ._pages_qc import router as qc_router
from ._state import state

__all__ = ["FACET_LIMIT", "PAGE_SIZE", "query_with", "router"]

router = APIRouter(include_in_schema=False)
router.include_router(image_router)
router.include_router(plates_router)
router.include_router(qc_router)

#: Results per page of the search page (``limit`` may ask for up to :data:`MAX_PAGE_SIZE`).
PAGE_SIZE = 48
MAX_PAGE_SIZE = 500
#: The facets count at most this many matches of a query (the page says when they stop short).
FACET_LIMIT = 20_000

# facet -> (column of repo.query.find, the query field its condition names)
_FACETS: tuple[tuple[str, str, str], ...] = (
    ("plate", "plate", "plate"),
    ("channel", "channels", "channel.name"),
    ("tag", "tag", "tag"),
    ("QC status", "qc.status", "qc.status"),
)
_MULTI = {"channels", "tag"}  # comma-separated values in one cell


def _literal(value: str) -> str:
    """``value`` as a string literal of the query language."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def query_with(query: str, field: str, value: str) -> str:
    """``query`` with the condition ``field == "value"`` added (``and``)."""
    cond = f"{field} == {_literal(value)}"
    q = query.strip()
    return f"({q}) and {cond}" if q else cond


def _facets(repo: Any, who: Principal, query: str) -> tuple[list[dict[str, Any]], bool]:
    """The facets of ``query``'s result (what ``who`` may see), and whether they stopped short
    at :data:`FACET_LIMIT` matches."""
    cols = [c for _, c, _ in _FACETS]
    df = repo.query.find(query, ["id", *cols], limit=FACET_LIMIT + 1)
    short = len(df) > FACET_LIMIT
    df = df.iloc[:FACET_LIMIT]
    visible = set(_guard.filter_visible(repo, who, df["id"].tolist()))
    df = df[df["id"].isin(visible)]
    out = []
    for title, col, field in _FACETS:
        counts: Counter[str] = Counter()
        for cell in df[col]:
            if cell is None or cell != cell:  # None or NaN
                continue
            values = str(cell).split(", ") if col in _MULTI else [str(cell)]
            counts.update(dict.fromkeys(values, 1))
        items = [
            {"value": v, "count": n, "q": query_with(query, field, v)}
            for v, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        ]
        out.append({"title": title, "items": items})
    return out, short


def _rows(repo: Any, ids: list[str]) -> list[dict[str, Any]]:
    """The table rows (and thumbnails) of the images ``ids``, in that order."""
    images = {img.id: img for img in repo.images.all(ids)}
    status = repo.quality.status(ids)
    anns = repo.annotations.effective(list(images.values()))
    rows = []
    for image_id in ids:
        img = images.get(image_id)
        if img is None:
            continue
        pos = img.position
        rows.append(
            {
                "id": img.id,
                "name": img.name,
                "plate": pos.plate if pos else None,
                "well": pos.well if pos else None,
                "field": pos.field if pos else None,
                "channels": [c.name for c in img.channels],
                "dims": "x".join(str(n) for n in img.shape),
                "dtype": img.dtype,
                "qc": status[img.id][0] if img.id in status else None,
                "tags": sorted({a.value or "" for a in anns.get(img.id, []) if a.key == "tag"}),
            }
        )
    return rows


def _paging(total: int, limit: int, offset: int, query: str) -> dict[str, Any]:
    """Links of the result pages around the current one."""
    last = max(0, (total - 1) // limit) if limit else 0
    current = offset // limit if limit else 0
    pages = sorted({0, last, *range(max(0, current - 3), min(last, current + 3) + 1)})
    return {
        "current": current,
        "pages": [{"n": p + 1, "offset": p * limit} for p in pages],
        "prev": max(0, offset - limit) if offset > 0 else None,
        "next": offset + limit if offset + limit < total else None,
        "limit": limit,
        "q": query,
    }


@router.get("/", response_class=HTMLResponse)
def search_page(
    request: Request,
    q: str = Query("", max_length=10_000),
    limit: int = Query(PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE),
    offset: int = Query(0, ge=0, le=10**9),
    who: Principal = Depends(principal),
) -> HTMLResponse:
    """Search images with the query language: thumbnails, a table, facets and pages."""
    repo = state(request).repo
    ctx: dict[str, Any] = {"title": "Search", "nav": "search", "q": q, "error": None}
    try:
        ids, total = repo.query.page(
            q, limit=limit, offset=offset, only=_guard.visible_images(repo, who)
        )
        facets, short = _facets(repo, who, q)
    except InvalidInput as e:
        ctx.update(error=str(e), rows=[], total=0, facets=[], short=False, paging=None)
        return page(request, "search.html.j2", status_code=400, **ctx)
    ctx.update(
        rows=_rows(repo, ids),
        total=total,
        first=offset + 1,
        facets=facets,
        short=short,
        facet_limit=FACET_LIMIT,
        paging=_paging(total, limit, offset, q),
    )
    return page(request, "search.html.j2", **ctx)
