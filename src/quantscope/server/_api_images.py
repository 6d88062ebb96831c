"""Images over HTTP: search (the query language, one page at a time) and one image's record.

- ``GET /api/images?q=&limit=&offset=``: ``{"items": [...], "total", "limit", "offset", "q"}``;
  the page and the total count only images the caller may see (the guard's condition goes into
  the SQL); a query error answers 400 with the CLI's message (caret included);
- ``GET /api/images/{id}``: what ``quantscope show --json`` prints (:func:`catalog.image_record`)
  plus ``zarr_url`` (absolute), ``levels`` (shape and scale per pyramid level), ``labels``
  (names in the image's ``labels/`` group), the omero colour/window of each channel, and the
  URLs of its pictures.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request

from ..catalog import Principal, image_record, image_row
from ..errors import InvalidInput
from ._auth import principal
from ._guard import image_for, visible_images
from ._render import TILE, open_image
from ._state import ServerState, state

__all__ = ["MAX_LIMIT", "router"]

router = APIRouter(tags=["images"])

MAX_LIMIT = 1000  # images per page at most
DEFAULT_LIMIT = 50
MAX_OFFSET = 2**53  # beyond what any catalog holds (and what SQLite's integers take)


def image_links(image_id: str) -> dict[str, str]:
    """The URLs (relative to the server) of an image's pictures and pages."""
    base = f"/api/images/{quote(image_id, safe='')}"
    return {
        "image_url": f"/images/{quote(image_id, safe='')}",
        "api_url": base,
        "thumbnail_url": f"{base}/thumbnail.png",
        "tile_url": f"{base}/tiles/{{level}}/{{z}}/{{y}}/{{x}}.png",
    }


def _check_page(limit: int, offset: int) -> None:
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit: expected 1-{MAX_LIMIT}, got {limit}")
    if not 0 <= offset <= MAX_OFFSET:
        raise InvalidInput(f"offset: expected 0-{MAX_OFFSET}, got {str(offset)[:40]}")


@router.get("/api/images", summary="Search images with the query language (one page)")
def list_images(
    q: str = Query("", description='A query, e.g. channel.name == "DAPI" and well == "A01"'),
    limit: int = Query(DEFAULT_LIMIT, description=f"Images per page (1-{MAX_LIMIT})"),
    offset: int = Query(0, description="Images to skip (>= 0)"),
    who: Principal = Depends(principal),
    st: ServerState = Depends(state),
) -> dict[str, Any]:
    _check_page(limit, offset)
    repo = st.repo
    try:
        ids, total = repo.query.page(q, limit=limit, offset=offset, only=visible_images(repo, who))
    except InvalidInput as e:
        if type(e) is InvalidInput:
            raise
        # QuerySyntaxError, UnknownField, ...: the contract's type is "InvalidInput" (the
        # message, caret line included, is the CLI's)
        raise InvalidInput(str(e)) from e
    found = {img.id: img for img in repo.images.all(ids)} if ids else {}
    qc = repo.quality.status(ids) if ids else {}
    items = []
    for i in ids:
        img = found.get(i)
        if img is None:  # deleted between the two queries
            continue
        row = image_row(img)
        row["qc_status"] = qc[i][0] if i in qc else None
        row.update(image_links(i))
        items.append(row)
    return {"items": items, "total": total, "limit": limit, "offset": offset, "q": q}


def _channels(doc: dict[str, Any], omero: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for k, ch in enumerate(doc.get("channels") or []):
        rec = dict(ch) if isinstance(ch, dict) else {"name": ch}
        om = omero[k] if k < len(omero) and isinstance(omero[k], dict) else {}
        if "color" in om:
            rec["color"] = om["color"]
        if isinstance(om.get("window"), dict):
            rec["window"] = om["window"]
        if "active" in om:
            rec["active"] = bool(om["active"])
        out.append(rec)
    return out


def zarr_url(request: Request, store_path: str) -> str:
    """The absolute ``/zarr/`` URL of a folder of the store (relative to the repository)."""
    base = str(request.base_url).rstrip("/")
    return f"{base}/zarr/{quote(store_path.strip('/'))}"


@router.get("/api/images/{image_id}", summary="Everything known about one image")
def get_image(
    request: Request,
    image_id: str,
    who: Principal = Depends(principal),
    st: ServerState = Depends(state),
) -> dict[str, Any]:
    repo = st.repo
    img = image_for(repo, who, image_id)
    doc = image_record(repo, img)
    opened = open_image(repo.root / img.store_path)
    # the folder relative to the repository: the server's own file layout is not the caller's
    # business (zarr_url is how a client reaches the files)
    doc["path"] = img.store_path
    doc["zarr_url"] = zarr_url(request, img.store_path)
    parts = img.store_path.split("/")
    if parts[0] == "plates" and len(parts) >= 2:
        doc["plate_zarr_url"] = zarr_url(request, "/".join(parts[:2]))
    doc["levels"] = [
        {"shape": list(shape), "scale": scale}
        for shape, scale in zip(opened.shapes, opened.scales, strict=False)
    ]
    doc["tile_size"] = TILE
    doc["labels"] = list(opened.labels)
    doc["channels"] = _channels(doc, opened.omero)
    qc = repo.quality.status([img.id]).get(img.id)
    doc["qc_status"] = qc[0] if qc else None
    doc["qc_reasons"] = qc[1] if qc else []
    doc.update(image_links(img.id))
    return doc
