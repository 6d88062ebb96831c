"""Collect :class:`QCReportData` from the catalog and the store; write the HTML report."""

from __future__ import annotations

import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ..errors import QuantscopeError
from ..model import Image
from ._data import (
    THUMBNAIL_PX,
    ImageQCRecord,
    MetricDescription,
    ProfileRecord,
    QCReportData,
)
from ._measure import BEST_FOCUS_PLANE, StoredImage, thumbnail
from ._profiles import profile_gaps, read_profile

if TYPE_CHECKING:
    from ..catalog import Repository

__all__ = ["collect_report_data", "report_sections", "write_html_report"]


def _thumbnails(
    root: Path, img: Image, metrics: dict[int, dict[str, float]]
) -> tuple[npt.NDArray[np.uint8], ...]:
    try:
        stored = StoredImage.open(root / img.store_path)
        level = len(stored.shapes) - 1
        n_c, n_z = stored.shapes[level][1], stored.shapes[level][2]
        out = []
        for c in range(n_c):
            z = n_z // 2
            best = metrics.get(c, {}).get(BEST_FOCUS_PLANE, math.nan)
            if math.isfinite(best) and 0 <= int(best) < n_z:
                z = int(best)
            out.append(thumbnail(stored.plane(level, c, z), THUMBNAIL_PX))
        return tuple(out)
    except (QuantscopeError, OSError, ValueError, KeyError):
        return ()


def collect_report_data(
    repo: Repository,
    jobs: int = 2,
    *,
    image_ids: Sequence[str] | None = None,
    thumbnails: bool = True,
) -> QCReportData:
    """Collect the QC report data of every image of ``repo`` from its catalog and store.

    Reads the stored metrics, statuses and flag records (it does not compute any: run
    :func:`quantscope.qc.run_qc` first), a thumbnail per channel from the lowest pyramid level
    of each image (``jobs`` threads), and the stored illumination profiles.

    ``image_ids`` restricts the report to those images (the web portal's dashboard: what the
    caller may see); ``thumbnails=False`` reads no pixels (heatmaps and histograms need none).
    """
    from ..quality import METRICS

    images = repo.images.all(image_ids)
    ids = None if image_ids is None else [img.id for img in images]
    metrics = repo.quality.metrics(ids)
    statuses = repo.quality.status(ids)
    flags = repo.quality.flags(ids)

    def record(img: Image) -> ImageQCRecord:
        m = metrics.get(img.id, {})
        status = statuses[img.id][0] if img.id in statuses else None
        pos = img.position
        return ImageQCRecord(
            id=img.id,
            name=img.name,
            plate=pos.plate if pos else None,
            well=pos.well if pos else None,
            row=pos.row if pos else None,
            column=pos.column if pos else None,
            field=pos.field if pos else None,
            channels=tuple(c.name for c in img.channels),
            status=status,
            flags=tuple(flags.get(img.id, ())),
            metrics=m,
            thumbnails=_thumbnails(repo.root, img, m) if thumbnails else (),
        )

    with ThreadPoolExecutor(max(1, jobs)) as pool:
        records = list(pool.map(record, images))
    profiles: list[ProfileRecord] = []
    problems = [
        f"image {r.name} ({r.id}): no thumbnail, the stored image cannot be read"
        for r in records
        if thumbnails and not r.thumbnails and r.channels
    ]
    for row in repo.quality.illumination_profiles():
        try:
            flat, dark = read_profile(repo.root, row.store_path, row.plate, row.channel)
        except QuantscopeError as e:
            problems.append(str(e))
            continue
        profiles.append(
            ProfileRecord(
                plate=row.plate,
                channel=row.channel,
                channel_name=row.channel_name,
                n_images=row.n_images,
                flat=flat,
                dark=dark,
                store_path=row.store_path,
            )
        )
    return QCReportData(
        root=repo.root,
        images=records,
        metrics=[
            MetricDescription(
                name=m.name,
                category=m.category,
                description=m.description,
                unit=m.unit,
                direction=m.direction,
                reference=m.reference,
            )
            for m in METRICS.values()
        ],
        profiles=profiles,
        created=datetime.now(UTC),
        problems=problems,
        missing_profiles=profile_gaps(repo),
    )


def write_html_report(repo: Repository, path: str | Path, data: QCReportData | None = None) -> Path:
    """Write the self-contained HTML QC report of ``repo`` to ``path``; returns the path.

    Renders ``data``, by default collected now (:func:`quantscope.qc.collect_report_data`);
    what could not be collected is listed in ``data.problems`` and at the top of the report.

    Raises
    ------
    quantscope.errors.QuantscopeError
        The HTML report writer is not available in this installation.
    """
    import importlib

    try:
        writer: Any = importlib.import_module("._report", __package__).write_report
    except (ImportError, AttributeError) as e:
        raise QuantscopeError(
            f"the HTML QC report is not available in this installation ({e})"
        ) from e
    out = Path(path)
    writer(out, collect_report_data(repo) if data is None else data)
    return out


def report_sections(data: QCReportData) -> dict[str, Any]:
    """What the QC report's header, plate heatmaps and histograms show for ``data``: the
    context of the report's templates ``qc_header.html.j2``, ``qc_heatmaps.html.j2`` and
    ``qc_histograms.html.j2`` (with ``qc_macros.html.j2``). The web portal's QC dashboard
    includes those templates with it, so it shows the report's own figures, live."""
    from ._report import report_sections as sections

    return sections(data)
