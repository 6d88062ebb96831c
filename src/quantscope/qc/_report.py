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

This module assembles the page section by section (:class:`_Report`); its parts live in rooms
beside it: :mod:`._report_common` (escaping, number formatting, statuses, metric values and
limits), :mod:`._report_plots` (the SVG heatmaps and histograms), :mod:`._report_graphics` (the
viridis colour map, PNG thumbnails and profile images) and :mod:`._report_assets` (the inline
CSS and JavaScript).
"""

import contextlib
import math
import os
import secrets
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from .._text import plural
from ..errors import InvalidInput, NotFound
from ._data import ImageQCRecord, MetricDescription, QCReportData
from ._report_assets import _CSS, _JS
from ._report_common import (
    _STATUS_COLOR,
    _STATUS_LABEL,
    _STATUS_RANK,
    _channel_value,
    _e,
    _finite,
    _flagged_cells,
    _mean,
    _metric_limits,
    _num,
    _sortkey,
    _status,
    _status_of,
)
from ._report_graphics import _profile_card, _thumbnails
from ._report_plots import _heatmap_svg, _histogram_svg, _plate_shape

__all__ = ["KEY_METRICS", "render_report", "write_report"]

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
    text = render_report(data)
    # os.open with mode 0o666 (not mkstemp's 0o600): the umask decides, as for any new file
    tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def render_report(data: QCReportData) -> str:
    """The HTML text of the quality-control report of ``data`` (see :func:`write_report`)."""
    return _Report(data).render()


# ----------------------------------------------------------------------------------------------
# the report


class _Report:
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

    def render(self) -> str:
        title = f"Quality control · {self.data.root.name or self.data.root}"
        parts = [
            "<!DOCTYPE html>\n<html lang='en'>\n<head>\n<meta charset='utf-8'>\n"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>\n",
            f"<title>{_e(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n",
            self._header(),
        ]
        if not self.images:
            parts.append(
                "<section id='empty' class='card'><h2>Nothing to report</h2>"
                "<p class='muted'>The repository has no images, so there is no quality "
                "control to show. Ingest images, run <code>quantscope qc</code>, then write "
                "the report again.</p></section>\n"
            )
            if self.data.profiles:
                parts.append(self._profiles())
        else:
            parts += [
                self._heatmaps(),
                self._histograms(),
                self._worst(),
                self._profiles(),
                self._table(),
            ]
        parts.append(
            "<footer class='muted'>Written by quantscope · every plot is embedded in this file"
            "</footer>\n"
        )
        if self.images:
            parts.append(f"<script>{_JS}</script>\n")
        parts.append("</body>\n</html>\n")
        return "".join(parts)

    def _header(self) -> str:
        created = self.data.created
        date = created.strftime("%Y-%m-%d %H:%M %Z").strip()
        n = len(self.images)
        out = [
            "<header class='top'>",
            f"<h1>Quality control <span class='repo'>{_e(self.data.root)}</span></h1>",
            f"<p class='muted'>Report of {plural(n, 'image')} · "
            f"<time datetime='{_e(created.isoformat())}'>{_e(date)}</time></p>",
            "<div class='counts'>",
        ]
        for status in ("pass", "warn", "fail", "none"):
            count = self.counts.get(status, 0)
            if status == "none" and not count:
                continue
            pct = f"{100.0 * count / n:.0f} %" if n else "–"
            out.append(
                f"<div class='count st-{status}'><b>{count}</b>"
                f"<span>{_STATUS_LABEL[status]} · {pct}</span></div>"
            )
        out.append("</div>")
        if n:
            out.append("<div class='bar' title='pass / warn / fail'>")
            for status in ("pass", "warn", "fail", "none"):
                count = self.counts.get(status, 0)
                if count:
                    out.append(
                        f"<span style='flex:{count};background:{_STATUS_COLOR[status]}'></span>"
                    )
            out.append("</div>")
            out.append(self._channel_summary())
            links = [
                ("heatmaps", "Plate heatmaps"),
                ("histograms", "Histograms"),
                ("worst", "Worst images"),
                ("profiles", "Illumination"),
                ("images", "All images"),
            ]
            out.append(
                "<nav>" + "".join(f"<a href='#{k}'>{label}</a>" for k, label in links) + "</nav>"
            )
        if self.data.problems:
            out.append(
                "<div class='problems' role='alert'><b>Not everything could be shown:</b><ul>"
                + "".join(f"<li>{_e(p)}</li>" for p in self.data.problems)
                + "</ul></div>"
            )
        out.append("</header>\n")
        return "".join(out)

    def _metric_head(self, metric: str) -> str:
        info = self.info.get(metric)
        unit = f" ({info.unit})" if info is not None and info.unit not in ("", "1") else ""
        tip = f" title='{_e(info.description)}'" if info is not None else ""
        return f"<span{tip}>{_e(metric)}{_e(unit)}</span>"

    def _channel_summary(self) -> str:
        flagged: dict[str, int] = Counter()
        for record in self.images:
            for channel in {c for c, _ in _flagged_cells(record)}:
                flagged[channel] += 1
        head = "".join(
            f"<th>{self._metric_head(m)}<br><small>median</small></th>" for m in self.key_metrics
        )
        rows = []
        for channel in self.channels:
            with_channel = [r for r in self.images if channel in r.channels]
            cells = []
            for metric in self.key_metrics:
                values = _finite(_channel_value(r, channel, metric) for r in with_channel)
                nan = len(with_channel) - len(values)
                median = float(np.median(values)) if len(values) else math.nan
                extra = f" <small class='muted'>({nan} NaN)</small>" if nan else ""
                cells.append(f"<td class='num'>{_num(median)}{extra}</td>")
            rows.append(
                f"<tr><th>{_e(channel)}</th><td class='num'>{len(with_channel)}</td>"
                f"<td class='num'>{flagged.get(channel, 0)}</td>{''.join(cells)}</tr>"
            )
        return (
            "<table class='summary'><thead><tr><th>channel</th><th>images</th>"
            f"<th>flagged</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        )

    # -- plate heatmaps -------------------------------------------------------------------------

    def _heatmaps(self) -> str:
        plates: dict[str, list[ImageQCRecord]] = defaultdict(list)
        loose = 0
        for record in self.images:
            if record.plate is not None and record.row is not None and record.column is not None:
                plates[record.plate].append(record)
            else:
                loose += 1
        out = ["<section id='heatmaps' class='card'><h2>Plate heatmaps</h2>"]
        out.append(
            "<p class='muted'>Colour: the mean over the fields of each well, in viridis from "
            "the smallest to the largest well of the plate (outlying wells are clipped to the "
            "ends of the scale, marked ≤ / ≥; grey: undefined). Outline: "
            "<span class='key fail'></span> an image of the well failed, "
            "<span class='key warn'></span> one warned. Hover a well for its values, click it "
            "to list its images.</p>"
        )
        if not plates:
            out.append("<p>No image is on a plate.</p>")
        elif not self.key_metrics:
            out.append("<p>No key metric has been measured.</p>")
        for plate, records in plates.items():
            out.append(self._plate(plate, records))
        if loose and plates:
            out.append(
                f"<p class='muted'>{plural(loose, 'image')} not on a plate "
                f"{'is' if loose == 1 else 'are'} not shown.</p>"
            )
        out.append("</section>\n")
        return "".join(out)

    def _plate(self, plate: str, records: list[ImageQCRecord]) -> str:
        wells: dict[tuple[int, int], list[ImageQCRecord]] = defaultdict(list)
        for record in records:
            assert record.row is not None and record.column is not None
            wells[(record.row, record.column)].append(record)
        nrows, ncols = _plate_shape(wells)
        channels = [c for c in self.channels if any(c in r.channels for r in records)]
        status = {k: _status_of(v) for k, v in wells.items()}
        n_fail = sum(1 for s in status.values() if s == "fail")
        out = [
            f"<h3>Plate {_e(plate)} <small class='muted'>{plural(len(records), 'image')} in "
            f"{plural(len(wells), 'well')} · {plural(n_fail, 'well')} with a failed image"
            "</small></h3>",
            "<div class='hm-grid'>",
        ]
        for metric in self.key_metrics:
            info = self.info.get(metric)
            better = {"higher": "higher is better", "lower": "lower is better"}.get(
                info.direction if info else "", ""
            )
            out.append(
                f"<div class='hm-metric'><h4>{self._metric_head(metric)} "
                f"<small class='muted'>{better}</small></h4><div class='maps'>"
            )
            for channel in channels:
                means = {
                    k: _mean([_channel_value(r, channel, metric) for r in v])
                    for k, v in wells.items()
                }
                svg = _heatmap_svg(plate, metric, channel, nrows, ncols, means, status, wells)
                out.append(f"<figure><figcaption>{_e(channel)}</figcaption>{svg}</figure>")
            out.append("</div></div>")
        out.append("</div>")
        return "".join(out)

    # -- histograms -----------------------------------------------------------------------------

    def _histograms(self) -> str:
        out = [
            "<section id='histograms' class='card'><h2>Histograms</h2>",
            "<p class='muted'>Images per value, stacked by status: "
            + "".join(
                f"<span class='key' style='background:{_STATUS_COLOR[s]}'></span> "
                f"{_STATUS_LABEL[s]} "
                for s in ("pass", "warn", "fail")
            )
            + ". Dashed lines: the QC limits (amber: warn, red: fail).</p>",
        ]
        if not self.key_metrics:
            out.append("<p>No key metric has been measured.</p>")
        for channel in self.channels:
            out.append(f"<h3>Channel {_e(channel)}</h3><div class='hist-grid'>")
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
                out.append(
                    f"<figure class='hist'><figcaption>{self._metric_head(metric)}"
                    f"<small class='muted'>{note}</small></figcaption>"
                    + _histogram_svg(metric, channel, by_status, self.limits.get(metric, {}))
                    + "</figure>"
                )
            out.append("</div>")
        out.append("</section>\n")
        return "".join(out)

    # -- worst images ---------------------------------------------------------------------------

    def _worst(self) -> str:
        bad = [r for r in self.images if _status(r) in ("fail", "warn")]
        bad.sort(key=lambda r: (_STATUS_RANK[_status(r)], -len(r.reasons)))
        shown = bad[:WORST_N]
        out = ["<section id='worst' class='card'><h2>Worst images</h2>"]
        if not shown:
            out.append("<p>Every image passed: nothing to show.</p></section>\n")
            return "".join(out)
        more = f" of {len(bad)}" if len(bad) > len(shown) else ""
        out.append(
            f"<p class='muted'>The {len(shown)}{more} flagged images with the most serious "
            "verdicts: failed first, then warned, most reasons first.</p><div class='worst'>"
        )
        for rank, record in enumerate(shown, 1):
            status = _status(record)
            where = " · ".join(
                part
                for part in (
                    f"plate {_e(record.plate)}" if record.plate is not None else "",
                    f"well {_e(record.well)}" if record.well is not None else "",
                    f"field {record.field}" if record.field is not None else "",
                )
                if part
            )
            reasons = "".join(f"<li>{_e(reason)}</li>" for reason in record.reasons)
            out.append(
                f"<article class='thumbcard' data-status='{status}' data-rank='{rank}'>"
                f"<header><span class='badge st-{status}'>{_STATUS_LABEL[status]}</span> "
                f"<b class='name' title='{_e(record.name)}'>{_e(record.name)}</b>"
                f"<div class='muted small'>{where or 'not on a plate'} · id "
                f"<code>{_e(record.id)}</code></div></header>"
                f"{_thumbnails(record)}<ul class='reasons'>{reasons}</ul></article>"
            )
        out.append("</div></section>\n")
        return "".join(out)

    # -- illumination profiles ------------------------------------------------------------------

    def _profiles(self) -> str:
        out = ["<section id='profiles' class='card'><h2>Illumination profiles</h2>"]
        missing = self.data.missing_profiles
        gaps = (
            "<ul id='missing-profiles' class='missing'>"
            + "".join(f"<li>{_e(m.message())}</li>" for m in missing)
            + "</ul>"
            if missing
            else ""
        )
        if not self.data.profiles:
            out.append(
                "<p>No illumination profile has been estimated (<code>quantscope qc "
                "--profiles</code> estimates them per plate and channel).</p>"
                + gaps
                + "</section>\n"
            )
            return "".join(out)
        out.append(
            "<p class='muted'>Flat fields (relative illumination, mean 1; viridis from the "
            "field's minimum to its maximum) and dark fields (grey, ADU) per plate and "
            "channel.</p><div class='profiles'>"
        )
        for profile in self.data.profiles:
            out.append(_profile_card(profile))
        out.append("</div>" + gaps + "</section>\n")
        return "".join(out)

    # -- table ----------------------------------------------------------------------------------

    def _table(self) -> str:
        columns = [(m, c) for m in self.key_metrics for c in self.channels]
        # data-key: the column's name in links (qc.html#sort=snr:DAPI&dir=desc)
        head = [
            "<th data-type='text' data-key='id'>id</th>",
            "<th data-type='text' data-key='name'>name</th>",
            "<th data-type='text' data-key='plate'>plate</th>",
            "<th data-type='text' data-key='well'>well</th>",
            "<th data-type='num' data-key='field'>field</th>",
            "<th data-type='num' data-key='status' title='fail, warn, pass'>status</th>",
            "<th data-type='num' data-key='reasons' title='number of reasons'>reasons</th>",
        ]
        head += [
            f"<th data-type='num' data-key='{_e(m)}:{_e(c)}'>{self._metric_head(m)}<br>"
            f"<small>{_e(c)}</small></th>"
            for m, c in columns
        ]
        rows = []
        for record in self.images:
            status = _status(record)
            flagged = _flagged_cells(record)
            field = "" if record.field is None else str(record.field)
            cells = [
                f"<td><code>{_e(record.id)}</code></td>",
                f"<td class='name'>{_e(record.name)}</td>",
                f"<td>{_e(record.plate or '')}</td>",
                f"<td>{_e(record.well or '')}</td>",
                f"<td class='num' data-v='{field}'>{field}</td>",
                f"<td data-v='{_STATUS_RANK.get(status, 3)}'>"
                f"<span class='badge st-{status}'>{_STATUS_LABEL[status]}</span></td>",
                f"<td class='reasons' data-v='{len(record.reasons)}'>"
                + "".join(f"<div>{_e(reason)}</div>" for reason in record.reasons)
                + "</td>",
            ]
            for metric, channel in columns:
                value = _channel_value(record, channel, metric)
                cls = "num flag" if (channel, metric) in flagged else "num"
                cells.append(f"<td class='{cls}' data-v='{_sortkey(value)}'>{_num(value)}</td>")
            rows.append(f"<tr class='st-{status}'>{''.join(cells)}</tr>\n")
        return (
            "<section id='images' class='card'><h2>All images</h2>"
            "<div class='filters'><input id='filter' type='search' "
            "placeholder='Filter: words in any column, e.g. a plate and a well'>"
            "<select id='status-filter'><option value=''>any status</option>"
            "<option value='fail warn'>fail or warn</option><option value='fail'>fail</option>"
            "<option value='warn'>warn</option><option value='pass'>pass</option></select>"
            f"<span id='shown' class='muted'>{plural(len(rows), 'image')}</span></div>"
            "<p class='muted small'>Click a column header to sort. Bold red values are named "
            "in the reasons.</p>"
            "<div class='scroll'><table id='image-table' class='sortable'><thead><tr>"
            + "".join(head)
            + "</tr></thead>\n<tbody>\n"
            + "".join(rows)
            + "</tbody></table></div></section>\n"
        )
