"""The repository's OME-Zarr store over HTTP, read-only: ``GET``/``HEAD /zarr/{path}``.

Any Zarr v3 client reads an image (or a plate) where ``/api/images/{id}`` says (``zarr_url``):
``zarr.open_group(url, mode="r")`` over fsspec's HTTP file system, ``ome_zarr.io.parse_url``,
a browser viewer. What is served:

- only files under ``images/`` and ``plates/`` of the repository (never the catalog, settings or
  feature tables), after resolving symbolic links: a path that leaves the store (``..``, an
  encoded ``%2e%2e``, an absolute path, a backslash, a NUL byte, a link pointing outside) is 404;
- a file of an image only if the caller may see that image (:func:`._guard.image_for`); the
  plate's own metadata (plate, row and well groups) if the caller may see at least one of its
  images (:func:`._guard.filter_visible`); anything else is 404, like a missing file;
- ``Range: bytes=...`` (one range) answers 206 with ``Content-Range``; an unsatisfiable or
  malformed range 416; ``ETag`` is the file's SHA-256 as recorded in the catalog at ingest
  (else its size and modification time), ``If-None-Match`` answers 304; ``Cache-Control``.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from ..catalog import Principal
from ..errors import InvalidInput, NotFound
from ._auth import principal
from ._guard import filter_visible
from ._state import state
from ._tiles import not_modified, visible_store_path

if TYPE_CHECKING:
    from ..catalog import Repository

__all__ = ["CACHE_CONTROL", "StoreIndex", "parse_range", "router", "safe_parts"]

router = APIRouter(tags=["zarr"])

#: Clients keep a file this long, then revalidate it with its ETag.
CACHE_CONTROL = "private, max-age=60"
ROOTS = ("images", "plates")  # the folders of the repository that hold the store
_JSON_NAMES = {"zarr.json", ".zarray", ".zattrs", ".zgroup", ".zmetadata"}
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_REFRESH_S = 1.0  # the store index is reread at most this often when a path is unknown


def _missing(path: str) -> NotFound:
    return NotFound(f"/zarr/{path[:200]}: no such file in the store")


def safe_parts(path: str) -> list[str]:
    """The parts of a ``/zarr/`` path (already URL-decoded) if it names something inside the
    store; otherwise :class:`NotFound` (``..``, ``.``, empty parts, an absolute path,
    backslashes, NUL and other control characters, a drive letter, a root other than
    ``images``/``plates``)."""
    if not path or path.startswith("/") or len(path) > 4096:
        raise _missing(path)
    if any(ord(ch) < 32 or ch in "\\:" for ch in path):
        raise _missing(path.replace("\x00", "\\0"))
    parts = path.split("/")
    if any(p in ("", ".", "..") for p in parts) or parts[0] not in ROOTS:
        raise _missing(path)
    return parts


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(start, end)`` (end exclusive) of a single ``bytes=`` range within ``size`` bytes;
    ``None`` without a header (or a unit other than bytes, which is ignored).

    Raises
    ------
    InvalidInput
        A malformed or unsatisfiable byte range (the server answers 416).
    """
    if header is None:
        return None
    h = header.strip()
    if not h.lower().startswith("bytes="):
        return None
    m = _RANGE.match("bytes=" + h[6:].strip())
    if m is None or (not m.group(1) and not m.group(2)):
        raise InvalidInput(f"Range: {header[:80]!r} is not one byte range (bytes=START-END)")
    a, b = m.group(1), m.group(2)
    if not a:  # suffix: the last N bytes
        n = int(b)
        if n == 0 or size == 0:
            raise InvalidInput(f"Range: {header[:80]!r} selects no bytes of {size}")
        return max(0, size - n), size
    start = int(a)
    end = min(size, int(b) + 1) if b else size
    if start >= size or (b and int(b) < start):
        raise InvalidInput(f"Range: {header[:80]!r} is outside the file's {size} bytes")
    return start, end


class StoreIndex:
    """Which image (or plate) each folder of the store belongs to, and the SHA-256 of each
    stored file, cached per process (reread when a path is unknown, at most once a second)."""

    def __init__(self, repo: Repository) -> None:
        self.repo = repo
        self._lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        self._images: dict[str, str] = {}
        self._plates: dict[str, list[str]] = {}
        self._read_at = -1e9
        self._sums: OrderedDict[tuple[str, int], tuple[float, dict[str, tuple[int, str]]]] = (
            OrderedDict()
        )

    def refresh(self, *, force: bool = False) -> None:
        """Reread the store paths (unless read less than a second ago). Callers arriving while
        another reads wait for its result: none may see the empty index of a fresh server
        (a spurious 404 is a chunk of fill values to a Zarr reader)."""
        asked = time.monotonic()
        with self._refresh_lock:
            if self._read_at >= asked or (not force and asked - self._read_at < _REFRESH_S):
                return
            paths = self.repo.images.store_paths()
            # every group above image folders (plate, row, well) -> the images below it
            plates: dict[str, list[str]] = {}
            for image_id, sp in paths.items():
                parts = sp.strip("/").split("/")
                if parts[0] == "plates" and len(parts) > 2:
                    for k in range(2, len(parts)):
                        plates.setdefault("/".join(parts[:k]), []).append(image_id)
            with self._lock:
                self._images = {sp.strip("/"): i for i, sp in paths.items()}
                self._plates = plates
            self._read_at = time.monotonic()

    def owner(self, parts: list[str]) -> tuple[str, str | list[str]] | None:
        """``("image", id)``, ``("plate", [ids])`` or ``None`` for the path of ``parts``."""
        for attempt in range(2):
            with self._lock:
                images, plates = self._images, self._plates
            for k in range(len(parts), 1, -1):
                got = images.get("/".join(parts[:k]))
                if got is not None:
                    return "image", got
            for k in range(len(parts), 1, -1):  # the innermost group: well, row, plate
                below = plates.get("/".join(parts[:k]))
                if below is not None:
                    return "plate", below
            if attempt == 0:
                self.refresh()
        return None

    def sha256(self, image_id: str, rel: str, stamp: int, mtime: float) -> tuple[int, str] | None:
        """(size, SHA-256) recorded in the catalog for file ``rel`` of image ``image_id``, if
        the file (modified at ``mtime``) is older than that reading of the catalog: a file
        rewritten since may not be recorded yet, and a wrong ETag would be a stale 304."""
        key = (image_id, stamp)
        with self._lock:
            got = self._sums.get(key)
        if got is None:
            read_at = time.time()
            sums = {p: (int(n), h) for _, p, n, h in self.repo.images.stored_files(image_id)}
            got = (read_at, sums)
            with self._lock:
                self._sums[key] = got
                while len(self._sums) > 256:
                    self._sums.popitem(last=False)
        read_at, sums = got
        if mtime >= read_at - 2.0:
            return None
        return sums.get(rel)


_INDEX_LOCK = threading.Lock()


def store_index(request: Request) -> StoreIndex:
    """The :class:`StoreIndex` of the app serving ``request`` (kept on the app's state)."""
    st = state(request)
    app_state = request.app.state
    with _INDEX_LOCK:
        idx = getattr(app_state, "quantscope_store_index", None)
        if not isinstance(idx, StoreIndex) or idx.repo is not st.repo:
            idx = StoreIndex(st.repo)
            app_state.quantscope_store_index = idx
        return idx


def _content_type(name: str) -> str:
    if name in _JSON_NAMES or name.endswith(".json"):
        return "application/json"
    if name.endswith(".xml"):
        return "application/xml"
    return "application/octet-stream"


def _resolve(root: Path, parts: list[str], path: str) -> tuple[Path, list[str]]:
    """The file of ``parts`` under ``root`` with links resolved, and its parts relative to the
    resolved root; 404 for anything outside the store or not a regular file."""
    real_root = root.resolve()
    try:
        full = real_root.joinpath(*parts).resolve(strict=True)
    except (OSError, RuntimeError, ValueError):
        raise _missing(path) from None
    if not full.is_relative_to(real_root) or not full.is_file():
        raise _missing(path)
    rel = list(full.relative_to(real_root).parts)
    if len(rel) < 2 or rel[0] not in ROOTS:
        raise _missing(path)
    return full, rel


def _check_access(request: Request, who: Principal, rel: list[str], path: str) -> str | None:
    """The image id the file belongs to (None: plate metadata), if ``who`` may read it."""
    st = state(request)
    idx = store_index(request)
    found = idx.owner(rel)
    if found is None:
        raise _missing(path)
    kind, owner = found
    if kind == "plate":
        assert isinstance(owner, list)
        if not filter_visible(st.repo, who, owner):
            raise _missing(path)
        return None
    assert isinstance(owner, str)
    try:
        sp = visible_store_path(st, who, owner).strip("/")
    except NotFound:  # forbidden: the same answer as a missing file (the id is not told)
        raise _missing(path) from None
    if "/".join(rel) != sp and not "/".join(rel).startswith(sp + "/"):
        idx.refresh(force=True)  # the folder moved since the index was read
        raise _missing(path)
    return owner


_ZARR_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/octet-stream": {}, "application/json": {}}},
    206: {"description": "Partial content (a Range request)"},
    304: {"description": "Not modified (If-None-Match matched the ETag)"},
    404: {"description": "No such file, or not visible to the caller"},
    416: {"description": "A malformed or unsatisfiable Range"},
}


@router.head(
    "/zarr/{path:path}",
    summary="The headers of a file of the store (size, ETag)",
    response_class=Response,
    responses=_ZARR_RESPONSES,
    operation_id="zarr_file_head",
)
@router.get(
    "/zarr/{path:path}",
    summary="A file of the repository's OME-Zarr store (read-only; HTTP ranges)",
    response_class=Response,
    responses=_ZARR_RESPONSES,
    operation_id="zarr_file",
)
def zarr_file(
    request: Request,
    path: str,
    who: Principal = Depends(principal),
) -> Response:
    st = state(request)  # not a dependency: one thread-pool hop less per request
    parts = safe_parts(path)
    full, rel = _resolve(st.repo.root, parts, path)
    image_id = _check_access(request, who, rel, path)
    stat = full.stat()
    size = stat.st_size
    recorded = (
        store_index(request).sha256(image_id, "/".join(rel), _dir_stamp(full), stat.st_mtime)
        if image_id is not None
        else None
    )
    if recorded is not None and recorded[0] == size:
        etag = f'"{recorded[1]}"'
    else:
        etag = f'"{size:x}-{stat.st_mtime_ns:x}"'
    headers = {
        "ETag": etag,
        "Cache-Control": CACHE_CONTROL,
        "Accept-Ranges": "bytes",
        "Content-Type": _content_type(full.name),
    }
    if not_modified(request, etag):
        return Response(status_code=304, headers=headers)
    try:
        span = parse_range(request.headers.get("range"), size)
    except InvalidInput as e:
        return Response(
            content=f'{{"error": {{"type": "RangeNotSatisfiable", "message": "{_json_text(e)}"}}}}',
            status_code=416,
            headers={"Content-Range": f"bytes */{size}", "Content-Type": "application/json"},
        )
    start, end = span if span is not None else (0, size)
    status = 206 if span is not None else 200
    if span is not None:
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    headers["Content-Length"] = str(end - start)
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers)
    with open(full, "rb") as f:
        f.seek(start)
        body = f.read(end - start)
    return Response(body, status_code=status, headers=headers)


def _dir_stamp(full: Path) -> int:
    try:
        return os.stat(full.parent).st_mtime_ns
    except OSError:
        return 0


def _json_text(e: Exception) -> str:
    import json

    return json.dumps(str(e))[1:-1]
