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
"""

from __future__ import annotations

import base64
import contextlib
import html
import io
import math
import os
import re
import secrets
import warnings
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from .._text import plural
from ..errors import InvalidInput, NotFound
from ._data import ImageQCRecord, MetricDescription, ProfileRecord, QCReportData

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

_STATUS_RANK = {"fail": 0, "warn": 1, "pass": 2}
_STATUS_LABEL = {"fail": "fail", "warn": "warn", "pass": "pass", "none": "not checked"}
_STATUS_COLOR = {"pass": "#2da44e", "warn": "#d4a72c", "fail": "#cf222e", "none": "#8c959f"}

# Viridis (matplotlib) sampled at 0, 0.1, ..., 1; interpolated linearly in between.
_VIRIDIS = (
    "#440154",
    "#482475",
    "#414487",
    "#355f8d",
    "#2a788e",
    "#21918c",
    "#22a884",
    "#44bf70",
    "#7ad151",
    "#bddf26",
    "#fde725",
)
_VIRIDIS_RGB = np.array([[int(c[i : i + 2], 16) for i in (1, 3, 5)] for c in _VIRIDIS], float)
_NAN_COLOR = "#d0d7de"
_EMPTY_WELL = "#f6f8fa"

# Additive colours of the channels of a composite thumbnail (RGB, 0..1).
_CHANNEL_COLORS = (
    (0.25, 0.55, 1.0),  # blue-ish (often DNA)
    (0.1, 1.0, 0.1),  # green
    (1.0, 0.1, 1.0),  # magenta
    (1.0, 0.25, 0.1),  # red
    (0.1, 1.0, 1.0),  # cyan
    (1.0, 1.0, 0.1),  # yellow
)

# Standard plate formats (rows, columns), smallest first.
_PLATE_FORMATS = ((2, 3), (3, 4), (4, 6), (6, 8), (8, 12), (16, 24), (32, 48))

# "ch DAPI: snr = 4.2 is below the fail limit 5: low signal-to-noise ratio"
_LIMIT_RE = re.compile(
    r"(?P<metric>\w+) = \S+(?: %| ADU)? is (?P<side>below|above) the (?P<level>warn|fail) "
    r"limit (?P<bound>[-+0-9.eE]+|-?inf)"
)
_CHANNEL_RE = re.compile(r"^ch (?P<channel>.*?): (?P<metric>\w+) = ")


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
# small helpers


def _e(value: object) -> str:
    """HTML-escape any value (quotes included: safe in text and in attributes)."""
    return html.escape(str(value), quote=True)


def _real(value: object) -> float:
    """``value`` as a Python float (numpy scalars included); NaN for anything else."""
    if isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool):
        return float(value)
    return math.nan


def _isfinite(value: object) -> bool:
    return math.isfinite(_real(value))


def _num(value: object) -> str:
    """A metric value for people: 4 significant digits, NaN as an en dash."""
    value = _real(value)
    if math.isnan(value):
        return "–"
    if math.isinf(value):
        return "∞" if value > 0 else "−∞"
    if value != 0 and (abs(value) >= 1e6 or abs(value) < 1e-3):
        return f"{value:.3g}"
    return f"{value:.4g}"


def _sortkey(value: float) -> str:
    """A ``data-v`` attribute value for sorting numbers (empty for NaN: sorted last)."""
    return f"{value:.9g}" if math.isfinite(value) else ""


def _status(record: ImageQCRecord) -> str:
    return record.status if record.status in _STATUS_RANK else "none"


def _worse(a: str, b: str) -> str:
    ranks = {"fail": 0, "warn": 1, "pass": 2, "none": 3}
    return a if ranks[a] <= ranks[b] else b


def _colors(t: npt.NDArray[np.float64]) -> npt.NDArray[np.uint8]:
    """Viridis RGB (uint8, shape ``t.shape + (3,)``) of values in [0, 1]."""
    x = np.clip(np.nan_to_num(t, nan=0.0), 0.0, 1.0) * (len(_VIRIDIS) - 1)
    lo = np.minimum(np.floor(x).astype(np.intp), len(_VIRIDIS) - 2)
    frac = (x - lo)[..., None]
    rgb = _VIRIDIS_RGB[lo] * (1.0 - frac) + _VIRIDIS_RGB[lo + 1] * frac
    return np.asarray(np.rint(rgb), dtype=np.uint8)


def _hex(t: float) -> str:
    r, g, b = (int(v) for v in _colors(np.array([t]))[0])
    return f"#{r:02x}{g:02x}{b:02x}"


def _png_uri(array: npt.NDArray[np.uint8]) -> str:
    """A ``data:image/png;base64,...`` URI of a 2-D (grey) or 3-D (RGB) uint8 array."""
    from PIL import Image as PILImage

    buf = io.BytesIO()
    PILImage.fromarray(np.ascontiguousarray(array)).save(buf, format="PNG", compress_level=6)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _finite(values: Iterable[float | None]) -> npt.NDArray[np.float64]:
    arr = np.array([_real(v) for v in values], float)
    return arr[np.isfinite(arr)]


def _mean(values: Sequence[float]) -> float:
    good = [v for v in values if _isfinite(v)]
    return math.fsum(good) / len(good) if good else math.nan


def _robust_range(values: npt.NDArray[np.float64], k: float) -> tuple[float, float]:
    """Range of the finite ``values`` that leaves out outliers: the minimum and maximum,
    narrowed to the median +- ``k`` robust sigmas (1.4826 MAD), so that one bad well does not
    squash the colours of all the others (with 8 values or more: median and MAD of fewer are
    too unstable). NaN, NaN when there is no value."""
    if not len(values):
        return math.nan, math.nan
    lo, hi = float(values.min()), float(values.max())
    if len(values) < 8:
        return lo, hi
    median = float(np.median(values))
    sigma = 1.482602218505602 * float(np.median(np.abs(values - median)))
    if sigma > 0:
        lo, hi = max(lo, median - k * sigma), min(hi, median + k * sigma)
    return lo, hi


def _plate_shape(cells: Iterable[tuple[int, int]]) -> tuple[int, int]:
    rows = cols = 0
    for r, c in cells:
        rows, cols = max(rows, r + 1), max(cols, c + 1)
    for fr, fc in _PLATE_FORMATS:
        if rows <= fr and cols <= fc:
            return fr, fc
    return rows, cols


def _row_name(row: int) -> str:
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    return letters[row] if row < 26 else letters[row // 26 - 1] + letters[row % 26]


def _metric_limits(records: Sequence[ImageQCRecord]) -> dict[str, dict[str, float]]:
    """QC limits per metric: the defaults, overridden by the bounds quoted in the reasons.

    Returns ``{metric: {"warn_below": x, "fail_above": y, ...}}``.
    """
    limits: dict[str, dict[str, float]] = {}
    try:
        from ..quality import DEFAULT_LIMITS

        for name, limit in DEFAULT_LIMITS.items():
            limits[name] = dict(limit.to_dict())
    except ImportError:  # pragma: no cover - quality is part of the package
        pass
    seen: set[tuple[str, str]] = set()
    for record in records:
        for reason in record.reasons:
            for m in _LIMIT_RE.finditer(reason):
                try:
                    bound = float(m["bound"])
                except ValueError:
                    continue
                key = f"{m['level']}_{m['side']}"
                metric = m["metric"]
                if (metric, key) not in seen:  # the repository's own limit replaces the default
                    seen.add((metric, key))
                    limits.setdefault(metric, {})[key] = bound
    return limits


def _flagged_cells(record: ImageQCRecord) -> set[tuple[str, str]]:
    """(channel name, metric) pairs named in the reasons of ``record``."""
    out: set[tuple[str, str]] = set()
    for reason in record.reasons:
        m = _CHANNEL_RE.match(reason)
        if m:
            out.add((m["channel"], m["metric"]))
    return out


def _channel_value(record: ImageQCRecord, channel: str, metric: str) -> float:
    try:
        index = record.channels.index(channel)
    except ValueError:
        return math.nan
    return _real(record.metrics.get(index, {}).get(metric, math.nan))


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


def _status_of(records: Iterable[ImageQCRecord]) -> str:
    worst = "none"
    for record in records:
        status = _status(record)
        worst = status if worst == "none" else _worse(worst, status)
    return worst


# ----------------------------------------------------------------------------------------------
# SVG plots


def _heatmap_svg(
    plate: str,
    metric: str,
    channel: str,
    nrows: int,
    ncols: int,
    means: dict[tuple[int, int], float],
    status: dict[tuple[int, int], str],
    wells: dict[tuple[int, int], list[ImageQCRecord]],
) -> str:
    cell = max(9, min(26, 312 // max(ncols, 1)))
    left, top, legend = 22, 16, 30
    width, height = left + ncols * cell + 2, top + nrows * cell + legend
    values = np.array([v for v in means.values() if math.isfinite(v)], float)
    lo, hi = _robust_range(values, 5.0)
    span = hi - lo if len(values) and hi > lo else 1.0
    lo_text = ("≤ " if len(values) and values.min() < lo else "") + _num(lo)
    hi_text = ("≥ " if len(values) and values.max() > hi else "") + _num(hi)
    # the colour-bar labels (10 px font, at most ~6 px per character) must fit in the SVG: a
    # plate of one or two columns is narrower than its two labels side by side
    labels = (
        _label_px(lo_text) + 8 + _label_px(hi_text)
        if len(values)
        else _label_px("no defined value")
    )
    width = max(width, math.ceil(left + 1 + labels + 2))
    font = 10 if cell >= 14 else 8
    out = [
        f"<svg class='heatmap' data-plate='{_e(plate)}' data-metric='{_e(metric)}' "
        f"data-channel='{_e(channel)}' width='{width}' height='{height}' "
        f"viewBox='0 0 {width} {height}' role='img' "
        f"aria-label='{_e(f'{metric} of {channel} on plate {plate}')}'>"
    ]
    step = 1 if cell >= 14 else 2
    for c in range(0, ncols, step):
        x = left + c * cell + cell / 2
        out.append(f"<text x='{x:g}' y='{top - 4}' class='lbl' font-size='{font}'>{c + 1}</text>")
    for r in range(nrows):
        y = top + r * cell + cell / 2 + font * 0.35
        out.append(
            f"<text x='{left - 5}' y='{y:g}' class='lbl' text-anchor='end' "
            f"font-size='{font}'>{_row_name(r)}</text>"
        )
    for r in range(nrows):
        for c in range(ncols):
            x, y = left + c * cell + 1, top + r * cell + 1
            key = (r, c)
            if key not in wells:
                out.append(
                    f"<rect x='{x}' y='{y}' width='{cell - 2}' height='{cell - 2}' rx='2' "
                    f"fill='{_EMPTY_WELL}' stroke='#d8dee4' stroke-width='0.5'>"
                    f"<title>{_row_name(r)}{c + 1:02d}: no image</title></rect>"
                )
                continue
            records = wells[key]
            value = means[key]
            st = status[key]
            fill = _hex((value - lo) / span) if math.isfinite(value) else _NAN_COLOR
            if st == "fail":
                stroke = f" stroke='{_STATUS_COLOR['fail']}' stroke-width='2.5'"
                inset = 1.25
            elif st == "warn":
                stroke = f" stroke='{_STATUS_COLOR['warn']}' stroke-width='1.5'"
                inset = 0.75
            else:
                stroke, inset = "", 0.0
            well = records[0].well or f"{_row_name(r)}{c + 1:02d}"
            n_status = Counter(_status(rec) for rec in records)
            statuses = ", ".join(f"{n} {_STATUS_LABEL[s]}" for s, n in sorted(n_status.items()))
            fields = f"mean of {len(records)} fields" if len(records) > 1 else "1 field"
            tip = f"{well}: {metric} ({channel}) = {_num(value)} ({fields}) · {statuses}"
            out.append(
                f"<rect class='well' x='{x + inset:g}' y='{y + inset:g}' "
                f"width='{cell - 2 - 2 * inset:g}' height='{cell - 2 - 2 * inset:g}' rx='2' "
                f"fill='{fill}'{stroke} data-q='{_e(f'{plate} {well}')}'>"
                f"<title>{_e(tip)}</title></rect>"
            )
    # legend: a bar of the colour map under the plate, the range of the colours below it
    ly = top + nrows * cell + 6
    bar_x, bar_w = left + 1, ncols * cell - 2
    n_steps = 32
    for i in range(n_steps):
        out.append(
            f"<rect x='{bar_x + i * bar_w / n_steps:.1f}' y='{ly}' "
            f"width='{bar_w / n_steps + 0.6:.1f}' height='7' fill='{_hex(i / (n_steps - 1))}'/>"
        )
    if len(values):
        hi_x = max(bar_x + bar_w, bar_x + labels)
        out.append(
            f"<text x='{bar_x}' y='{ly + 19}' class='lbl' text-anchor='start' font-size='10'>"
            f"{_e(lo_text)}</text><text x='{hi_x}' y='{ly + 19}' class='lbl' "
            f"text-anchor='end' font-size='10'>{_e(hi_text)}</text>"
        )
    else:
        out.append(
            f"<text x='{bar_x}' y='{ly + 19}' class='lbl' text-anchor='start' font-size='10'>"
            "no defined value</text>"
        )
    out.append("</svg>")
    return "".join(out)


def _label_px(text: str, font_px: float = 10.0) -> int:
    """A generous width estimate of an SVG label (sans-serif digits are ~0.55 em wide)."""
    return math.ceil(0.62 * font_px * len(text)) + 2


def _histogram_svg(
    metric: str,
    channel: str,
    by_status: dict[str, list[float]],
    limits: dict[str, float],
) -> str:
    width, height = 260, 132
    left, right, top, bottom = 34, 8, 8, 30
    pw, ph = width - left - right, height - top - bottom
    every = [v for values in by_status.values() for v in values]
    out = [
        f"<svg class='histogram' data-metric='{_e(metric)}' data-channel='{_e(channel)}' "
        f"width='{width}' height='{height}' viewBox='0 0 {width} {height}' role='img' "
        f"aria-label='{_e(f'histogram of {metric} of {channel}')}'>"
    ]
    if not every:
        out.append(
            f"<text x='{width / 2}' y='{height / 2}' class='lbl' font-size='11'>"
            "no defined value</text></svg>"
        )
        return "".join(out)
    lo, hi = _robust_range(np.asarray(every, float), 6.0)
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    span, vmin, vmax = hi - lo, min(every), max(every)
    for bound in limits.values():  # show the limits that lie among or near the values
        if _isfinite(bound) and (vmin <= bound <= vmax or lo - span / 2 <= bound <= hi + span / 2):
            lo, hi = min(lo, bound - span / 50), max(hi, bound + span / 50)
    clipped_lo, clipped_hi = vmin < lo, vmax > hi
    edges = np.linspace(lo, hi, 25)
    order = ("pass", "warn", "fail", "none")
    counts = {
        s: np.histogram(np.clip(np.asarray(by_status.get(s, []), float), lo, hi), bins=edges)[0]
        for s in order
    }
    total = sum(counts.values())
    ymax = max(int(np.max(total)), 1)
    bw = pw / (len(edges) - 1)
    out.append(
        f"<line x1='{left}' y1='{top + ph}' x2='{left + pw}' y2='{top + ph}' class='axis'/>"
        f"<line x1='{left}' y1='{top}' x2='{left}' y2='{top + ph}' class='axis'/>"
    )
    for i in range(len(edges) - 1):
        base = 0
        x = left + i * bw
        parts = []
        for s in order:
            n = int(counts[s][i])
            if not n:
                continue
            h0, h1 = ph * base / ymax, ph * (base + n) / ymax
            out.append(
                f"<rect x='{x + 0.5:.1f}' y='{top + ph - h1:.1f}' width='{max(bw - 1, 0.5):.1f}' "
                f"height='{h1 - h0:.1f}' fill='{_STATUS_COLOR[s]}'/>"
            )
            base += n
            parts.append(f"{n} {_STATUS_LABEL[s]}")
        if parts:
            if i == 0 and clipped_lo:
                where = f"≤ {_num(edges[1])}"
            elif i == len(edges) - 2 and clipped_hi:
                where = f"≥ {_num(edges[i])}"
            else:
                where = f"{_num(edges[i])} to {_num(edges[i + 1])}"
            tip = f"{where}: " + ", ".join(parts)
            out.append(
                f"<rect x='{x:.1f}' y='{top}' width='{bw:.1f}' height='{ph}' fill='transparent'>"
                f"<title>{_e(tip)}</title></rect>"
            )
    for key, bound in sorted(limits.items()):
        if not (_isfinite(bound) and lo <= bound <= hi):
            continue
        level = key.split("_")[0]
        x = left + (bound - lo) / (hi - lo) * pw
        out.append(
            f"<line x1='{x:.1f}' y1='{top}' x2='{x:.1f}' y2='{top + ph}' "
            f"stroke='{_STATUS_COLOR[level]}' stroke-width='1.5' stroke-dasharray='4 3'>"
            f"<title>{_e(f'{level} limit {_num(bound)}')}</title></line>"
        )
    out.append(
        f"<text x='{left - 4}' y='{top + 8}' class='lbl' text-anchor='end' font-size='10'>"
        f"{ymax}</text><text x='{left - 4}' y='{top + ph}' class='lbl' text-anchor='end' "
        f"font-size='10'>0</text>"
        f"<text x='{left}' y='{top + ph + 14}' class='lbl' text-anchor='start' font-size='10'>"
        f"{'≤ ' if clipped_lo else ''}{_e(_num(lo))}</text><text x='{left + pw}' "
        f"y='{top + ph + 14}' class='lbl' text-anchor='end' font-size='10'>"
        f"{'≥ ' if clipped_hi else ''}{_e(_num(hi))}</text>"
        f"<text x='{left + pw / 2}' y='{top + ph + 26}' class='lbl' font-size='10'>"
        f"{plural(len(every), 'image')}</text></svg>"
    )
    return "".join(out)


# ----------------------------------------------------------------------------------------------
# images


def _thumbnails(record: ImageQCRecord) -> str:
    thumbs = [
        (name, t)
        for name, t in zip(record.channels, record.thumbnails, strict=False)
        if isinstance(t, np.ndarray) and t.ndim == 2 and t.size
    ]
    if not thumbs:
        return "<div class='thumbs'><div class='nothumb'>no preview</div></div>"
    out = ["<div class='thumbs'>"]
    shapes = {t.shape for _, t in thumbs}
    if len(thumbs) > 1 and len(shapes) == 1:
        rgb = np.zeros((*thumbs[0][1].shape, 3), float)
        for i, (_, t) in enumerate(thumbs):
            rgb += t.astype(float)[..., None] * np.array(_CHANNEL_COLORS[i % len(_CHANNEL_COLORS)])
        composite = np.clip(rgb, 0, 255).astype(np.uint8)
        legend = " + ".join(
            f"<span style='color:{_css_rgb(_CHANNEL_COLORS[i % len(_CHANNEL_COLORS)])}'>"
            f"{_e(name)}</span>"
            for i, (name, _) in enumerate(thumbs)
        )
        out.append(
            f"<figure><img src='{_png_uri(composite)}' alt='composite of "
            f"{_e(record.name)}'><figcaption>{legend}</figcaption></figure>"
        )
    for name, t in thumbs:
        out.append(
            f"<figure><img src='{_png_uri(np.asarray(t, dtype=np.uint8))}' "
            f"alt='{_e(name)} of {_e(record.name)}'><figcaption>{_e(name)}</figcaption></figure>"
        )
    out.append("</div>")
    return "".join(out)


def _css_rgb(color: tuple[float, float, float]) -> str:
    # darkened so that the text stays readable on white
    r, g, b = (int(0.75 * 255 * c) for c in color)
    return f"rgb({r},{g},{b})"


def _downsample(field: npt.NDArray[np.floating], edge: int = 192) -> npt.NDArray[np.float64]:
    """Block-mean downsampling so that the longer edge is at most ``edge`` px."""
    arr = np.asarray(field, dtype=np.float64)
    factor = max(1, math.ceil(max(arr.shape) / edge))
    if factor == 1:
        return arr
    ny, nx = arr.shape[0] // factor, arr.shape[1] // factor
    if ny == 0 or nx == 0:
        return arr[::factor, ::factor]
    cut = arr[: ny * factor, : nx * factor]
    with warnings.catch_warnings():  # "mean of empty slice" where a block is all NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.asarray(np.nanmean(cut.reshape(ny, factor, nx, factor), axis=(1, 3)))


def _field_png(field: npt.NDArray[np.floating], *, false_colour: bool) -> tuple[str, float, float]:
    small = _downsample(field)
    finite = small[np.isfinite(small)]
    lo = float(finite.min()) if finite.size else math.nan
    hi = float(finite.max()) if finite.size else math.nan
    t = (small - lo) / (hi - lo) if finite.size and hi > lo else np.full(small.shape, 0.5)
    t = np.where(np.isfinite(t), t, 0.0)
    if false_colour:
        image = _colors(t)
    else:
        image = np.asarray(np.rint(np.clip(t, 0, 1) * 255), dtype=np.uint8)
    return _png_uri(image), lo, hi


def _profile_card(profile: ProfileRecord) -> str:
    flat = np.asarray(profile.flat)
    if flat.ndim != 2 or not flat.size:
        body = "<div class='nothumb'>no flat field</div>"
        stats = ""
    else:
        uri, lo, hi = _field_png(flat, false_colour=True)
        ratio = lo / hi if _isfinite(lo) and _isfinite(hi) and hi > 0 else math.nan
        body = (
            f"<figure><img class='field' src='{uri}' alt='flat field of "
            f"{_e(profile.channel_name)} on plate {_e(profile.plate)}'>"
            f"<figcaption><span class='cbar'></span><span class='cbar-l'>{_num(lo)}</span>"
            f"<span class='cbar-r'>{_num(hi)}</span></figcaption></figure>"
        )
        stats = (
            f"<div class='small'>flat: min {_num(lo)} · max {_num(hi)} · min/max "
            f"{_num(ratio)} · {flat.shape[1]}×{flat.shape[0]} px</div>"
        )
    dark = ""
    if profile.dark is not None and np.asarray(profile.dark).ndim == 2:
        duri, dlo, dhi = _field_png(np.asarray(profile.dark), false_colour=False)
        dark = (
            f"<figure><img class='field' src='{duri}' alt='dark field'>"
            f"<figcaption>dark field: {_num(dlo)} to {_num(dhi)} ADU</figcaption></figure>"
        )
    where = f" · <code>{_e(profile.store_path)}</code>" if profile.store_path else ""
    return (
        f"<article class='profile'><header><b>{_e(profile.plate)}</b> · "
        f"{_e(profile.channel_name)}<div class='muted small'>"
        f"from {plural(profile.n_images, 'image')}{where}</div></header>"
        f"<div class='thumbs'>{body}{dark}</div>{stats}</article>"
    )


# ----------------------------------------------------------------------------------------------
# inline CSS and JavaScript (static: no data goes into them)

_GRADIENT = ", ".join(_VIRIDIS)

_CSS = (
    """
:root{--fg:#1f2328;--muted:#656d76;--line:#d0d7de;--bg:#f6f8fa}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
color:var(--fg);background:var(--bg);margin:0;padding:16px 24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:0 0 8px}
h3{font-size:15px;margin:18px 0 8px}
.repo{font-weight:400;color:var(--muted);font-size:15px;word-break:break-all}
.muted{color:var(--muted)}.small{font-size:12px}small{font-weight:400}
code{font:12px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
.top,.card{background:#fff;border:1px solid var(--line);border-radius:8px;padding:16px 20px;
margin:0 0 16px}
.counts{display:flex;gap:12px;margin:10px 0}
.count{border-radius:6px;padding:6px 14px;min-width:110px}
.count b{display:block;font-size:24px}.count span{font-size:12px}
.st-pass.count,.badge.st-pass{background:#dafbe1;color:#116329}
.st-warn.count,.badge.st-warn{background:#fff8c5;color:#7d4e00}
.st-fail.count,.badge.st-fail{background:#ffebe9;color:#a40e26}
.st-none.count,.badge.st-none{background:#eaeef2;color:#57606a}
.badge{border-radius:10px;padding:1px 8px;font-size:12px;font-weight:600;white-space:nowrap}
.bar{display:flex;height:8px;border-radius:4px;overflow:hidden;margin:4px 0 14px;max-width:600px}
.problems{border:1px solid #cf222e;background:#ffebe9;border-radius:6px;padding:6px 12px}
nav{display:flex;gap:16px;margin-top:12px;flex-wrap:wrap}
nav a{color:#0969da;text-decoration:none}nav a:hover{text-decoration:underline}
table{border-collapse:collapse}
th,td{padding:3px 8px;border-bottom:1px solid #eaeef2;text-align:left;vertical-align:top}
.summary th,.summary td{font-size:13px}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.key{display:inline-block;width:12px;height:12px;border-radius:2px;vertical-align:-1px}
.key.fail{border:2.5px solid #cf222e}.key.warn{border:1.5px solid #d4a72c}
.hm-grid{display:flex;flex-wrap:wrap;gap:16px 36px}
.hist-grid{display:flex;flex-wrap:wrap;gap:14px 22px}
.hm-metric h4{font-size:13px;margin:0 0 4px}.maps{display:flex;flex-wrap:wrap;gap:10px 16px}
figure{margin:0}figcaption{font-size:12px;margin-bottom:2px}
svg .lbl{fill:#57606a;text-anchor:middle;font-family:system-ui,sans-serif}
svg .axis{stroke:#8c959f;stroke-width:1}
svg rect.well{cursor:pointer}svg rect.well:hover{stroke:#1f2328;stroke-width:2}
.worst{display:grid;grid-template-columns:repeat(auto-fill,minmax(360px,1fr));gap:12px}
.thumbcard,.profile{border:1px solid var(--line);border-radius:6px;padding:10px;background:#fff}
.thumbcard[data-status=fail]{border-left:4px solid #cf222e}
.thumbcard[data-status=warn]{border-left:4px solid #d4a72c}
.thumbcard .name{word-break:break-all}
.thumbs{display:flex;flex-wrap:wrap;gap:6px;margin:8px 0}
.thumbs img{display:block;width:96px;height:96px;object-fit:contain;background:#000;
border-radius:3px}
.thumbs figure:first-child img{width:128px;height:128px}
.thumbs figcaption{text-align:center;max-width:128px;overflow:hidden;text-overflow:ellipsis;
white-space:nowrap;margin:2px 0 0}
.nothumb{width:96px;height:96px;background:#eaeef2;color:var(--muted);font-size:12px;display:flex;
align-items:center;justify-content:center;border-radius:3px}
.reasons{margin:0;padding-left:18px;font-size:12.5px}
.profiles{display:flex;flex-wrap:wrap;gap:12px}
.profile .thumbs figcaption{max-width:none;text-align:left;white-space:normal}
.profile img.field,.profile .thumbs figure:first-child img{width:192px;height:auto;
object-fit:contain;background:#fff}
.cbar{display:block;height:8px;width:192px;border-radius:2px;margin:3px 0 1px;
background:linear-gradient(to right,GRADIENT)}
.cbar-l,.cbar-r{display:inline-block;width:96px;font-size:11px;color:var(--muted)}.cbar-r{text-align:right}
.filters{display:flex;gap:10px;align-items:center;margin-bottom:6px}
.filters input{flex:0 1 380px;padding:5px 8px;border:1px solid var(--line);border-radius:6px}
.filters select{padding:5px;border:1px solid var(--line);border-radius:6px}
.scroll{overflow:auto;max-height:80vh;border:1px solid #eaeef2;border-radius:6px}
#image-table{font-size:12.5px;width:100%}
#image-table thead th{position:sticky;top:0;background:#f6f8fa;cursor:pointer;white-space:nowrap;
user-select:none;border-bottom:1px solid var(--line);vertical-align:bottom}
#image-table thead th:hover{background:#eaeef2}
#image-table th[aria-sort=ascending]::after{content:" ▲";font-size:10px}
#image-table th[aria-sort=descending]::after{content:" ▼";font-size:10px}
#image-table td.reasons{min-width:260px;max-width:460px;font-size:11.5px;color:#57606a}
#image-table td.name{max-width:260px;word-break:break-all}
#image-table tr.st-fail td:first-child{box-shadow:inset 3px 0 #cf222e}
#image-table tr.st-warn td:first-child{box-shadow:inset 3px 0 #d4a72c}
td.flag{color:#a40e26;font-weight:700}
footer{margin:8px 0 24px;font-size:12px}
""".replace("GRADIENT", _GRADIENT)
    .strip()
    .replace("\n", "")
)

_JS = """
(function(){
var table=document.getElementById('image-table');if(!table)return;
var body=table.tBodies[0],rows=Array.prototype.slice.call(body.rows);
var text=rows.map(function(r){return r.textContent.toLowerCase();});
rows.forEach(function(r,i){r._i=i;});
var input=document.getElementById('filter'),sel=document.getElementById('status-filter');
var shown=document.getElementById('shown');
function apply(){
 var words=input.value.toLowerCase().split(/\\s+/).filter(Boolean);
 var st=sel.value?sel.value.split(' '):null,n=0;
 rows.forEach(function(r,i){
  var ok=(!st||st.some(function(s){return r.classList.contains('st-'+s);}))&&
   words.every(function(w){return text[i].indexOf(w)>=0;});
  r.style.display=ok?'':'none';if(ok)n++;});
 shown.textContent=n+' of '+rows.length+(rows.length==1?' image':' images');}
input.addEventListener('input',apply);sel.addEventListener('change',apply);
var heads=table.tHead.rows[0].cells;
function sortBy(col,dir){
 var th=heads[col],num=th.dataset.type==='num';
 Array.prototype.forEach.call(heads,function(h){h.removeAttribute('aria-sort');});
 th.setAttribute('aria-sort',dir>0?'ascending':'descending');
 function key(r){var c=r.cells[col];return c.hasAttribute('data-v')?c.getAttribute('data-v'):
  c.textContent;}
 rows.sort(function(a,b){var x=key(a),y=key(b),d;
  if(num){var fx=x===''?NaN:parseFloat(x),fy=y===''?NaN:parseFloat(y);
   if(isNaN(fx)||isNaN(fy))return isNaN(fx)===isNaN(fy)?a._i-b._i:(isNaN(fx)?1:-1);
   d=fx-fy;}else{d=x.localeCompare(y,undefined,{numeric:true});}
  return d*dir||a._i-b._i;});
 var frag=document.createDocumentFragment();rows.forEach(function(r){frag.appendChild(r);});
 body.appendChild(frag);
 text=rows.map(function(r){return r.textContent.toLowerCase();});}
Array.prototype.forEach.call(heads,function(th,col){
 th.addEventListener('click',function(){
  sortBy(col,th.getAttribute('aria-sort')==='ascending'?-1:1);});});
// links such as qc.html#sort=snr:DAPI&dir=desc&status=fail&q=A01 open the table so
function fromHash(){
 if(typeof location==='undefined'||!location.hash)return;
 var h={};location.hash.slice(1).split('&').forEach(function(kv){var i=kv.indexOf('=');
  if(i>0)h[decodeURIComponent(kv.slice(0,i))]=
   decodeURIComponent(kv.slice(i+1).replace(/\\+/g,' '));});
 if('q' in h)input.value=h.q;if('status' in h)sel.value=h.status;
 if('sort' in h){for(var col=0;col<heads.length;col++){
  if(heads[col].getAttribute('data-key')===h.sort){sortBy(col,h.dir==='desc'?-1:1);break;}}}
 apply();}
fromHash();
if(typeof window!=='undefined')window.addEventListener('hashchange',fromHash);
document.querySelectorAll('rect.well').forEach(function(w){
 w.addEventListener('click',function(){input.value=w.getAttribute('data-q');sel.value='';apply();
  document.getElementById('images').scrollIntoView();});});
})();
""".strip()
