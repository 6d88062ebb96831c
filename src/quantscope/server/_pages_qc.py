"""The QC dashboard (``/qc``): the QC report's header, plate heatmaps and histograms, live over
the repository and limited to the images the caller may see.

The figures are the report's own: :func:`quantscope.qc.collect_report_data` (without
thumbnails: no pixel is read) and :func:`quantscope.qc.report_sections`, shown with the
report's templates (``qc_header``, ``qc_heatmaps``, ``qc_histograms``). A click on a well of a
heatmap opens that plate's map at the well (``/static/portal/qc.js``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from ..catalog import Principal
from . import _guard
from ._auth import principal
from ._page import page
from ._state import state

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


@router.get("/qc", response_class=HTMLResponse)
def qc_page(request: Request, who: Principal = Depends(principal)) -> HTMLResponse:
    """QC counts, per-channel summary, plate heatmaps and histograms of the visible images."""
    from ..qc import collect_report_data, report_sections

    repo = state(request).repo
    only = _guard.visible_images(repo, who)
    ids = None
    if only is not None:
        ids, _ = repo.query.page("", limit=10**12, only=only)
    data = collect_report_data(repo, image_ids=ids, thumbnails=False)
    # the report names the repository's folder; the server's file system is not the caller's
    data = dataclasses.replace(data, root=Path(repo.root.name))
    return page(request, "qc.html.j2", title="Quality control", nav="qc", **report_sections(data))
