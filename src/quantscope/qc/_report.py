"""A self-contained HTML report of the quality control of a repository.

:func:`write_report` turns one :class:`~quantscope.qc._data.QCReportData` into a single HTML
file that needs nothing else to be read: plots are inline SVG, images are PNG data URIs, the
table is sorted and filtered by a few lines of vanilla JavaScript. Sections:

- a header with the repository, the date, pass / warn / fail counts and a per-channel summary;
- plate heatmaps of a handful of key metrics, per plate and channel (mean over the fields of a
  well; outlined red where an image of the well failed, amber where one warned);
- histograms of the key metrics per channel, stacked by status, with the QC limits;
- the worst images (failed first, then warned; most reasons first) as thumbnails with reasons;
- the illumination profiles (flat field in false colour, dark field in grey);
- a sortable, filterable table of every image; a link can open it sorted and filtered:
  ``qc.html#sort=snr:DAPI&dir=desc&status=fail+warn&q=A01`` (``sort``: ``id``, ``name``,
  ``plate``, ``well``, ``field``, ``status``, ``reasons`` or ``<metric>:<channel>``).

Every string from the data is HTML-escaped; nothing refers to an external resource.

This module gathers what each section shows (:class:`_Report`) and fills the templates
``qc_report.html.j2`` and ``qc_*.html.j2`` of the HTML toolkit (:mod:`quantscope._html`, which
also holds the page's CSS and JavaScript, ``static/qc_report.css`` and ``static/qc_report.js``,
inlined into the page). Its parts live in rooms beside it: :mod:`._report_common` (statuses,
metric values and limits), :mod:`._report_plots` (the SVG heatmaps and histograms) and
:mod:`._report_graphics` (PNG thumbnails and profile images).
"""

import math
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from .._files import atomic_write
from .._html import Markup, render
from ..errors import InvalidInput, NotFound
from ._data import ImageQCRecord, MetricDescription, QCReportData
from ._report_common import (
    _STATUS_COLOR,
    _STATUS_LABEL,
    _STATUS_RANK,
    _channel_value,
    _finite,
    _flagged_cells,
    _mean,
    _metric_limits,
    _status,
    _status_of,
)
from ._report_graphics import _profile_card, _thumbnails
from ._report_plots import _heatmap_svg, _histogram_svg, _plate_shape

__all__ = ["KEY_METRICS", "render_report", "report_sections", "write_report"]

#: Metrics shown as plate heatmaps, histograms and table columns (those present in the data).
KEY_METRICS: tuple[str, ...] = (
    "focus_plls",
    "snr",
    "saturation_pct_at_max",
    "illum_corner_center_ratio",
    "background_median",
    "foreground_pct",
)

#: How many of the worst images are shown with thumbnails.
WORST_N = 12


# ----------------------------------------------------------------------------------------------
# entry points


def write_report(path: Path, data: QCReportData) -> None:
    """Write the HTML quality-control report of ``data`` to ``path``.

    The file is self-contained (inline CSS, SVG, PNG data URIs and a few lines of JavaScript)
    and written atomically: to a temporary file beside ``path``, then renamed over it.

    Parameters
    ----------
    path : pathlib.Path
        The HTML file to write (its folder must exist).
    data : QCReportData
        What to show, from :func:`quantscope.qc.collect_report_data`.

    Raises
    ------
    quantscope.errors.NotFound
        If the folder of ``path`` does not exist.
    quantscope.errors.InvalidInput
        If ``path`` is a folder.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise NotFound(
            f"cannot write the QC report {path}: folder {path.parent} does not exist; "
            "create it or choose another path"
        )
    if path.is_dir():
        raise InvalidInput(f"cannot write the QC report to {path}: it is a folder; give a file")
    atomic_write(path, render_report(data))


def render_report(data: QCReportData) -> str:
    """The HTML text of the quality-control report of ``data`` (see :func:`write_report`)."""
    return _Report(data).render()


def report_sections(data: QCReportData) -> dict[str, Any]:
    """What the report's header, plate heatmaps and histograms show, as the context of their
    templates (``qc_header.html.j2``, ``qc_heatmaps.html.j2``, ``qc_histograms.html.j2``,
    with ``qc_macros.html.j2``): the web portal's QC dashboard includes those templates with
    this context, so that it shows the same figures as the report."""
    return _Report(data).sections()


# ----------------------------------------------------------------------------------------------
# the report


def _reasons(record: ImageQCRecord) -> list[str]:
    """The sentences that say why ``record`` warned or failed, as shown on the page."""
    return list(record.reasons)


class _Report:
    """What the sections of the page show, gathered from the data; :meth:`render` fills the
    templates with it."""

    def __init__(self, data: QCReportData) -> None:
        self.data = data
        self.images: list[ImageQCRecord] = list(data.images)
        self.info: dict[str, MetricDescription] = {m.name: m for m in data.metrics}
        channels: list[str] = []
        present: set[str] = set()
        for record in self.images:
            for name in record.channels:
                if name not in channels:
                    channels.append(name)
            for values in record.metrics.values():
                present.update(values)
        self.channels = channels
        self.key_metrics = [m for m in KEY_METRICS if m in present]
        self.limits = _metric_limits(self.images)
        self.counts = Counter(_status(r) for r in self.images)

    # -- page -----------------------------------------------------------------------------------

    def sections(self) -> dict[str, Any]:
        """The context of the header, heatmaps and histograms (see :func:`report_sections`)."""
        context: dict[str, Any] = {
            "r": self,
            "labels": _STATUS_LABEL,
            "colors": _STATUS_COLOR,
            **self._header(),
            "plates": [],
            "loose": 0,
            "histograms": [],
        }
        if self.images:
            plates, loose = self._plates()
            context.update(plates=plates, loose=loose, histograms=self._histograms())
        return context

    def render(self) -> str:
        context: dict[str, Any] = {
            "r": self,
            "title": f"Quality control · {self.data.root.name or self.data.root}",
            "labels": _STATUS_LABEL,
            "colors": _STATUS_COLOR,
            "profiles": [_profile_card(p) for p in self.data.profiles],
            "missing": list(self.data.missing_profiles),
            **self._header(),
        }
        if self.images:
            plates, loose = self._plates()
            worst, more = self._worst()
            context.update(
                plates=plates,
                loose=loose,
                histograms=self._histograms(),
                worst=worst,
                more=more,
                columns=[(m, c) for m in self.key_metrics for c in self.channels],
                rows=self._table_rows(),
            )
        return render("qc_report.html.j2", **context)

    def _header(self) -> dict[str, Any]:
        """The date, the counts per status and the per-channel summary of the header."""
        n = len(self.images)
        counts = []
        for status in ("pass", "warn", "fail", "none"):
            count = self.counts.get(status, 0)
            if status == "none" and not count:
                continue
            counts.append((status, count, f"{100.0 * count / n:.0f} %" if n else "–"))
        return {
            "date": self.data.created.strftime("%Y-%m-%d %H:%M %Z").strip(),
            "counts": counts,
            "summary": self._channel_summary() if n else [],
        }

    def _channel_summary(self) -> list[dict[str, Any]]:
        """Per channel: its images, how many of them are flagged in it and the median of each
        key metric, with the number of undefined values."""
        flagged: dict[str, int] = Counter()
        for record in self.images:
            for channel in {c for c, _ in _flagged_cells(record)}:
                flagged[channel] += 1
        rows = []
        for channel in self.channels:
            with_channel = [r for r in self.images if channel in r.channels]
            medians = []
            for metric in self.key_metrics:
                values = _finite(_channel_value(r, channel, metric) for r in with_channel)
                median = float(np.median(values)) if len(values) else math.nan
                medians.append((median, len(with_channel) - len(values)))
            rows.append(
                {
                    "channel": channel,
                    "images": len(with_channel),
                    "flagged": flagged.get(channel, 0),
                    "medians": medians,
                }
            )
        return rows

    # -- plate heatmaps -------------------------------------------------------------------------

    def _plates(self) -> tuple[list[dict[str, Any]], int]:
        """The plates' heatmaps, and the number of images not on a plate."""
        plates: dict[str, list[ImageQCRecord]] = defaultdict(list)
        loose = 0
        for record in self.images:
            if record.plate is not None and record.row is not None and record.column is not None:
                plates[record.plate].append(record)
            else:
                loose += 1
        return [self._plate(plate, records) for plate, records in plates.items()], loose

    def _plate(self, plate: str, records: list[ImageQCRecord]) -> dict[str, Any]:
        wells: dict[tuple[int, int], list[ImageQCRecord]] = defaultdict(list)
        for record in records:
            assert record.row is not None and record.column is not None
            wells[(record.row, record.column)].append(record)
        nrows, ncols = _plate_shape(wells)
        channels = [c for c in self.channels if any(c in r.channels for r in records)]
        status = {k: _status_of(v) for k, v in wells.items()}
        metrics = []
        for metric in self.key_metrics:
            info = self.info.get(metric)
            better = {"higher": "higher is better", "lower": "lower is better"}.get(
                info.direction if info else "", ""
            )
            maps = []
            for channel in channels:
                means = {
                    k: _mean([_channel_value(r, channel, metric) for r in v])
                    for k, v in wells.items()
                }
                svg = _heatmap_svg(plate, metric, channel, nrows, ncols, means, status, wells)
                maps.append((channel, Markup(svg)))
            metrics.append((metric, better, maps))
        return {
            "name": plate,
            "images": len(records),
            "wells": len(wells),
            "failed": sum(1 for s in status.values() if s == "fail"),
            "metrics": metrics,
        }

    # -- histograms -----------------------------------------------------------------------------

    def _histograms(self) -> list[tuple[str, list[tuple[str, str, Markup]]]]:
        """Per channel, per key metric: a note on undefined values and the histogram."""
        out = []
        for channel in self.channels:
            plots = []
            for metric in self.key_metrics:
                by_status: dict[str, list[float]] = defaultdict(list)
                nan = 0
                for record in self.images:
                    if channel not in record.channels:
                        continue
                    value = _channel_value(record, channel, metric)
                    if math.isfinite(value):
                        by_status[_status(record)].append(value)
                    else:
                        nan += 1
                note = f" · {nan} undefined" if nan else ""
                svg = _histogram_svg(metric, channel, by_status, self.limits.get(metric, {}))
                plots.append((metric, note, Markup(svg)))
            out.append((channel, plots))
        return out

    # -- worst images ---------------------------------------------------------------------------

    def _worst(self) -> tuple[list[dict[str, Any]], str]:
        """The cards of the worst images, and `` of N`` when not every flagged image is shown."""
        bad = [r for r in self.images if _status(r) in ("fail", "warn")]
        bad.sort(key=lambda r: (_STATUS_RANK[_status(r)], -len(_reasons(r))))
        shown = bad[:WORST_N]
        cards = []
        for record in shown:
            where = " · ".join(
                part
                for part in (
                    f"plate {record.plate}" if record.plate is not None else "",
                    f"well {record.well}" if record.well is not None else "",
                    f"field {record.field}" if record.field is not None else "",
                )
                if part
            )
            cards.append(
                {
                    "record": record,
                    "status": _status(record),
                    "where": where,
                    "thumbnails": _thumbnails(record),
                    "reasons": _reasons(record),
                }
            )
        return cards, f" of {len(bad)}" if len(bad) > len(shown) else ""

    # -- table ----------------------------------------------------------------------------------

    def _table_rows(self) -> list[dict[str, Any]]:
        """One row per image: its status, reasons and key metric values (flagged or not)."""
        columns = [(m, c) for m in self.key_metrics for c in self.channels]
        rows = []
        for record in self.images:
            status = _status(record)
            flagged = _flagged_cells(record)
            cells = [
                (_channel_value(record, channel, metric), (channel, metric) in flagged)
                for metric, channel in columns
            ]
            rows.append(
                {
                    "record": record,
                    "status": status,
                    "rank": _STATUS_RANK.get(status, 3),
                    "field": "" if record.field is None else str(record.field),
                    "reasons": _reasons(record),
                    "cells": cells,
                }
            )
        return rows
