"""Pictures of an image over HTTP: thumbnail, deep-zoom tiles, label overlays, object crops.

Every route finds the image through :func:`._guard.image_for` (404 for an image the caller may
not see), renders with :mod:`._render` (pure pixel functions, in FastAPI's thread pool) and
answers a PNG with an ``ETag`` (the image's files' stamp and the request's parameters; a
matching ``If-None-Match`` answers 304 without rendering) and ``Cache-Control``.

- ``/api/images/{id}/thumbnail.png?c=&min=&max=``
- ``/api/images/{id}/tiles/{level}/{z}/{y}/{x}.png?c=0,1&t=0&min=a,b&max=c,d`` (256² RGB;
  level 0 = full resolution; y, x = tile row and column; edge tiles cropped)
- ``/api/images/{id}/labels/{name}/tiles/{level}/{z}/{y}/{x}.png?t=0`` (RGBA)
- ``/api/images/{id}/objects/{value}/crop.png?labels=NAME&c=&t=&z=&min=&max=``
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from ..catalog import Principal
from ._auth import principal
from ._guard import image_for
from ._render import (
    OpenImage,
    Styles,
    crop_png,
    label_tile_png,
    open_image,
    parse_styles,
    thumbnail_png,
    tile_png,
)
from ._state import ServerState, state

__all__ = ["CACHE_CONTROL", "GUARD_TTL_S", "not_modified", "router", "visible_store_path"]

router = APIRouter(tags=["images"])

#: Browsers keep a picture this long, then revalidate it with its ETag (a 304 costs no render).
CACHE_CONTROL = "private, max-age=300"
_PNG: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/png": {}}, "description": "A PNG picture"},
    304: {"description": "Not modified (If-None-Match matched the ETag)"},
    400: {"description": "A malformed parameter (the message names it)"},
    404: {
        "description": "No such image (or not visible to the caller), or a coordinate out of range"
    },
}

C_DOC = "Channels to composite, comma-separated (default: the omero-active ones, else all)"
MIN_DOC = "Contrast minimum per channel of c (or one for all); default: the omero window"
MAX_DOC = "Contrast maximum per channel of c (or one for all); default: the omero window"


#: How long (s) the guard's yes for (caller, image) is reused: a viewer fetches dozens of tiles
#: a second, each would otherwise load the image's record; a revoked right takes effect after it.
GUARD_TTL_S = 2.0
_SEEN: OrderedDict[tuple[int, Principal, str], tuple[float, str]] = OrderedDict()
_SEEN_LOCK = threading.Lock()
_SEEN_MAX = 4096


def visible_store_path(st: ServerState, who: Principal, image_id: str) -> str:
    """The store path of image ``image_id`` if :func:`._guard.image_for` lets ``who`` see it
    (its yes is reused for :data:`GUARD_TTL_S`; a no is never cached).

    Raises
    ------
    NotFound
        No such image, or one ``who`` may not see.
    """
    key = (id(st.repo), who, image_id)
    try:
        hash(key)
    except TypeError:  # a caller record that cannot be a key: ask every time
        return image_for(st.repo, who, image_id).store_path
    now = time.monotonic()
    with _SEEN_LOCK:
        got = _SEEN.get(key)
        if got is not None and got[0] > now:
            return got[1]
    img = image_for(st.repo, who, image_id)
    with _SEEN_LOCK:
        _SEEN[key] = (now + GUARD_TTL_S, img.store_path)
        _SEEN.move_to_end(key)
        while len(_SEEN) > _SEEN_MAX:
            _SEEN.popitem(last=False)
    return img.store_path


def _open(st: ServerState, who: Principal, image_id: str) -> OpenImage:
    return open_image(st.repo.root / visible_store_path(st, who, image_id))


def _etag(img: OpenImage, *parts: object) -> str:
    text = "|".join(str(p) for p in (img.path, img.stamp, *parts))
    return '"' + hashlib.blake2b(text.encode(), digest_size=12).hexdigest() + '"'


def _styles_key(s: Styles) -> str:
    return f"{s.channels}{s.colors}{s.windows}"


def not_modified(request: Request, etag: str) -> bool:
    """Whether ``If-None-Match`` of ``request`` names ``etag`` (or ``*``)."""
    inm = request.headers.get("if-none-match")
    if not inm:
        return False
    tags = [t.strip().removeprefix("W/") for t in inm.split(",")]
    return etag in tags or "*" in tags


class RenderedCache:
    """Encoded pictures by ETag (an ETag names the files' stamp and every parameter), bounded
    by bytes: viewers of one image ask for the same tiles again and again."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        with self._lock:
            got = self._items.get(key)
            if got is not None:
                self._items.move_to_end(key)
            return got

    def put(self, key: str, body: bytes) -> None:
        with self._lock:
            if key in self._items or len(body) > self.max_bytes:
                return
            self._items[key] = body
            self._bytes += len(body)
            while self._bytes > self.max_bytes:
                _, old = self._items.popitem(last=False)
                self._bytes -= len(old)


RENDERED = RenderedCache(int(os.environ.get("QUANTSCOPE_TILE_CACHE_MB", "64")) * 2**20)


def _png(request: Request, etag: str, render: Callable[[], bytes]) -> Response:
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL}
    if not_modified(request, etag):
        return Response(status_code=304, headers=headers)
    body = RENDERED.get(etag)
    if body is None:
        body = render()
        RENDERED.put(etag, body)
    return Response(body, media_type="image/png", headers=headers)


@router.get(
    "/api/images/{image_id}/thumbnail.png",
    summary="A small RGB picture of the image (longest edge <= 256 px)",
    response_class=Response,
    responses=_PNG,
)
def thumbnail(
    request: Request,
    image_id: str,
    c: str | None = Query(None, description=C_DOC),
    min: str | None = Query(None, description=MIN_DOC),
    max: str | None = Query(None, description=MAX_DOC),
    who: Principal = Depends(principal),
) -> Response:
    st = state(request)  # not a dependency: one thread-pool hop less per request
    img = _open(st, who, image_id)
    styles = parse_styles(img, c, min, max)
    etag = _etag(img, "thumb", _styles_key(styles))
    return _png(request, etag, lambda: thumbnail_png(img, styles))


@router.get(
    "/api/images/{image_id}/tiles/{level}/{z}/{y}/{x}.png",
    summary="One 256x256 RGB tile of a pyramid level (edge tiles cropped)",
    response_class=Response,
    responses=_PNG,
)
def tile(
    request: Request,
    image_id: str,
    level: int,
    z: int,
    y: int,
    x: int,
    c: str | None = Query(None, description=C_DOC),
    t: int = Query(0, description="Time point"),
    min: str | None = Query(None, description=MIN_DOC),
    max: str | None = Query(None, description=MAX_DOC),
    who: Principal = Depends(principal),
) -> Response:
    st = state(request)  # not a dependency: one thread-pool hop less per request
    img = _open(st, who, image_id)
    styles = parse_styles(img, c, min, max)
    from ._render import tile_box

    tile_box(img, level, z, t, y, x)  # 404 before any ETag for a coordinate out of range
    etag = _etag(img, "tile", level, z, y, x, t, _styles_key(styles))
    return _png(request, etag, lambda: tile_png(img, level, z, y, x, t, styles))


@router.get(
    "/api/images/{image_id}/labels/{name}/tiles/{level}/{z}/{y}/{x}.png",
    summary="One 256x256 RGBA tile of a label image (a colour per object, background clear)",
    response_class=Response,
    responses=_PNG,
)
def label_tile(
    request: Request,
    image_id: str,
    name: str,
    level: int,
    z: int,
    y: int,
    x: int,
    t: int = Query(0, description="Time point"),
    who: Principal = Depends(principal),
) -> Response:
    st = state(request)  # not a dependency: one thread-pool hop less per request
    from ._render import tile_box

    img = _open(st, who, image_id)
    lab = img.label(name)
    tile_box(lab, level, z, t, y, x)
    etag = _etag(img, "labels", lab.path.name, lab.stamp, level, z, y, x, t)
    return _png(request, etag, lambda: label_tile_png(img, name, level, z, y, x, t))


@router.get(
    "/api/images/{image_id}/objects/{value}/crop.png",
    summary="A crop around one segmented object, its outline drawn in yellow",
    response_class=Response,
    responses=_PNG,
)
def object_crop(
    request: Request,
    image_id: str,
    value: int,
    labels: str | None = Query(
        None, description="Label image name (default: the image's only one)"
    ),
    c: str | None = Query(None, description=C_DOC),
    t: int = Query(0, description="Time point"),
    z: int = Query(0, description="z plane"),
    min: str | None = Query(None, description=MIN_DOC),
    max: str | None = Query(None, description=MAX_DOC),
    who: Principal = Depends(principal),
) -> Response:
    st = state(request)  # not a dependency: one thread-pool hop less per request
    from ..errors import InvalidInput

    img = _open(st, who, image_id)
    if labels is None:
        if len(img.labels) != 1:
            raise InvalidInput(
                f"labels: name the label image (this image has {len(img.labels)}: "
                f"{', '.join(img.labels) or 'none'})"
            )
        labels = img.labels[0]
    lab = img.label(labels)
    styles = parse_styles(img, c, min, max)
    etag = _etag(img, "crop", lab.path.name, lab.stamp, value, t, z, _styles_key(styles))
    name = labels
    return _png(request, etag, lambda: crop_png(img, name, value, styles, t=t, z=z))
