"""The image page (``/images/{id}``): a deep-zoom viewer over the stored pyramid, the metadata
tree with tier-completeness badges, QC metrics and flags, source files and the provenance of
the image's derived outputs.

The viewer is OpenSeadragon (``/static/vendor/openseadragon``, installed by the Makefile from
the npm registry) driven by ``/static/portal/viewer.js`` over the tile endpoints
(``/api/images/{id}/tiles/...`` and ``/api/images/{id}/labels/{name}/tiles/...``); this module
gives it the pyramid's shapes, the channels' colours and windows and the label names, read
from the stored OME-Zarr's ``zarr.json`` files (a few small reads). Without the vendor file the
page still renders, with a note and the thumbnail.

Completeness: :func:`quantscope.metadata.check_completeness` of the image completed from its
stored OME-XML (:func:`quantscope.metadata.enrich`, as ``quantscope metadata check`` does).
Parsing the OME-XML is the slow part (~30 ms), so the completed image is kept in a small cache
keyed by the image record and the XML text: the page stays under 50 ms of server time.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from ..catalog import Principal, image_record
from ..errors import QuantscopeError
from . import _guard
from ._auth import principal
from ._page import page
from ._state import state

if TYPE_CHECKING:
    from ..catalog import Repository
    from ..model import Image

__all__ = ["VENDOR_JS", "router", "viewer_config"]

router = APIRouter(include_in_schema=False)

#: OpenSeadragon's build, as the Makefile installs it (served at /static/vendor/...).
VENDOR_JS = (
    Path(__file__).resolve().parent / "static" / "vendor" / "openseadragon" / "openseadragon.min.js"
)
TILE = 256
# the default colours of channels without omero metadata (DAPI/Hoechst blue, then these)
_COLOURS = ("00FF00", "FF0000", "FF00FF", "00FFFF", "FFFF00", "FFFFFF")
_CACHE_SIZE = 256
_enriched: OrderedDict[tuple[str, str], Image] = OrderedDict()
_lock = threading.Lock()


def _read_json(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _default_colour(name: str, index: int) -> str:
    if any(k in name.lower() for k in ("dapi", "hoechst")):
        return "0000FF"
    return _COLOURS[index % len(_COLOURS)]


def viewer_config(repo: Repository, img: Image) -> dict[str, Any]:
    """What the viewer needs: the pyramid's level shapes (t, c, z, y, x; level 0 = full
    resolution), the channels with colour and display window, and the label images (name and
    number of levels)."""
    from ..io import OmeZarrPlanes

    folder = repo.root / img.store_path
    try:
        shapes = [list(s) for s in OmeZarrPlanes(folder).shapes]
    except (QuantscopeError, OSError, ValueError, KeyError):
        shapes = []
    ome = _read_json(folder / "zarr.json").get("attributes", {}).get("ome", {})
    omero = ome.get("omero", {}).get("channels", []) if isinstance(ome, dict) else []
    labels = _read_json(folder / "labels" / "zarr.json").get("attributes", {})
    names = labels.get("ome", {}).get("labels", []) if isinstance(labels, dict) else []
    big = 65535.0 if img.dtype == "uint16" else 255.0 if img.dtype == "uint8" else 1.0
    channels = []
    for k, ch in enumerate(img.channels):
        meta = omero[k] if k < len(omero) and isinstance(omero[k], dict) else {}
        window = meta.get("window") or {}
        lo, hi = window.get("min", 0.0), window.get("max", big)
        start, end = window.get("start", lo), window.get("end", hi)
        channels.append(
            {
                "index": k,
                "name": ch.name,
                "color": str(meta.get("color") or ch.color or _default_colour(ch.name, k)),
                "active": bool(meta.get("active", True)),
                "min": lo,
                "max": hi,
                "start": start,
                "end": end,
            }
        )
    t, _, z = img.shape[0], img.shape[1], img.shape[2]
    return {
        "id": img.id,
        "tile": TILE,
        "levels": shapes,
        "size": {"t": t, "z": z, "y": img.shape[3], "x": img.shape[4]},
        "channels": channels,
        "labels": [
            _label(folder / "labels" / n, len(shapes))
            for n in names
            if isinstance(n, str) and n and "/" not in n and not n.startswith(".")
        ],
    }


def _label(folder: Path, most: int) -> dict[str, Any]:
    """A label image's name, number of pyramid levels (at most ``most``; at least 1) and
    planes (the viewer asks a 2-D label image of a z-stack for its one plane)."""
    attrs = _read_json(folder / "zarr.json").get("attributes", {})
    try:
        datasets = attrs["ome"]["multiscales"][0]["datasets"]
        n, first = len(datasets), str(datasets[0]["path"])
    except (KeyError, IndexError, TypeError):
        n, first = 1, "0"
    shape = _read_json(folder / first / "zarr.json").get("shape") or []
    z = shape[-3] if len(shape) >= 3 and isinstance(shape[-3], int) else 1
    return {"name": folder.name, "levels": max(1, min(n, most or 1)), "z": max(1, z)}


def _enrich(repo: Repository, img: Image) -> Image:
    """``img`` completed from its stored OME-XML (cached by record and XML text)."""
    from ..metadata import enrich, stored_ome_xml

    xml = stored_ome_xml(repo.root, img)
    key = (
        hashlib.sha256(img.model_dump_json().encode()).hexdigest(),
        hashlib.sha256((xml or "").encode()).hexdigest(),
    )
    with _lock:
        hit = _enriched.get(key)
        if hit is not None:
            _enriched.move_to_end(key)
            return hit
    full = enrich(img, xml)
    with _lock:
        _enriched[key] = full
        while len(_enriched) > _CACHE_SIZE:
            _enriched.popitem(last=False)
    return full


def _completeness(repo: Repository, img: Image, anns: list[Any]) -> dict[str, Any]:
    """Badges (NBO tier 1, tier 2, REMBI: met / total) and the missing fields."""
    from ..metadata import check_completeness

    try:
        full = _enrich(repo, img)
    except QuantscopeError as e:
        return {"badges": [], "missing": [], "problem": str(e)}
    reports = [
        ("NBO tier 1", check_completeness(full, anns, standard="nbo", tier=1)),
        ("NBO tier 2", check_completeness(full, anns, standard="nbo", tier=2)),
        ("REMBI", check_completeness(full, anns, standard="rembi")),
    ]
    badges = []
    for title, rep in reports:
        cls = "pass" if rep.complete else "warn" if rep.score >= 0.5 else "fail"
        badges.append({"title": title, "met": len(rep.met), "total": rep.total, "cls": cls})
    missing = [
        {"standard": title, "id": rid, "field": fld}
        for title, rep in reports[1:]
        for rid, fld in rep.missing
    ]
    return {"badges": badges, "missing": missing, "problem": None}


def _tree(value: Any, depth: int = 0) -> Any:
    """The metadata as a tree of (key, value or subtree) for the template (empty parts left
    out)."""
    if depth > 8:
        return str(value)
    if isinstance(value, dict):
        items = [(str(k), _tree(v, depth + 1)) for k, v in value.items()]
        return [(k, v) for k, v in items if v not in (None, [], {}, "")]
    if isinstance(value, list):
        if all(not isinstance(v, dict | list) for v in value):
            return ", ".join(str(v) for v in value)
        return [(f"[{i}]", _tree(v, depth + 1)) for i, v in enumerate(value)]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _quality(repo: Repository, img: Image) -> dict[str, Any]:
    """QC status, flags (sentences) and the metrics table (metric x channel)."""
    from ..quality import METRICS, describe_flag

    status = repo.quality.status([img.id]).get(img.id)
    flags = repo.quality.flags([img.id]).get(img.id, [])
    metrics = repo.quality.metrics([img.id]).get(img.id, {})
    names: list[str] = []
    for values in metrics.values():
        names.extend(n for n in values if n not in names)
    order = {n: k for k, n in enumerate(METRICS)}
    names.sort(key=lambda n: (order.get(n, len(order)), n))
    flagged = {(f.metric, f.channel_index) for f in flags}
    rows = []
    for name in names:
        info = METRICS.get(name)
        cells = [
            (metrics.get(c.index, {}).get(name, math.nan), (name, c.index) in flagged)
            for c in img.channels
        ]
        rows.append(
            {
                "name": name,
                "unit": info.unit if info and info.unit not in ("", "1") else "",
                "description": info.description if info else "",
                "cells": cells,
            }
        )
    return {
        "status": status[0] if status else None,
        "flags": [{"level": f.level, "text": describe_flag(f)} for f in flags],
        "rows": rows,
    }


def _provenance(repo: Repository, img: Image) -> list[dict[str, Any]]:
    """The derived outputs of the image: artifact, tool, run and what each used."""
    out = []
    for art in repo.runs.artifacts_of_image(img.id, limit=50):
        used = repo.runs.artifact_inputs(art.key)
        out.append(
            {
                "key": art.key,
                "kind": art.kind,
                "output": art.output,
                "step": art.step,
                "path": art.path,
                "sha256": art.sha256,
                "n_objects": art.n_objects,
                "tool": f"{art.tool} {art.tool_version}",
                "params": art.params_json,
                "run_id": art.run_id,
                "ended_at": art.ended_at.strftime("%Y-%m-%d %H:%M:%S %Z").strip(),
                "used": [{"role": u.role, "kind": u.kind, "ref": u.ref} for u in used],
            }
        )
    return out


@router.get("/images/{image_id}", response_class=HTMLResponse)
def image_page(
    request: Request, image_id: str, who: Principal = Depends(principal)
) -> HTMLResponse:
    """One image: viewer, metadata with completeness, QC, source files and provenance."""
    repo = state(request).repo
    img = _guard.image_for(repo, who, image_id)
    record = image_record(repo, img)
    anns = repo.annotations.effective([img]).get(img.id, [])
    config = viewer_config(repo, img)
    return page(
        request,
        "image.html.j2",
        title=img.name,
        nav="search",
        image=record,
        config=json.dumps(config, separators=(",", ":")),
        viewer=config,
        vendor=VENDOR_JS.is_file(),
        annotations=[{"key": a.key, "value": a.value, "source": a.source} for a in anns],
        completeness=_completeness(repo, img, anns),
        tree=_tree(img.model_dump(mode="json", exclude={"sources", "channels"})),
        channels=[_tree(c.model_dump(mode="json")) for c in img.channels],
        qc=_quality(repo, img),
        provenance=_provenance(repo, img),
    )
