"""The SVG plots of the HTML quality-control report.

:func:`_heatmap_svg`: one plate, one metric of one channel, a well per cell coloured by the mean
over its fields (viridis over an outlier-robust range), outlined by the worst status of its
images, with a colour bar; :func:`_plate_shape` picks the standard plate format that holds the
wells. :func:`_histogram_svg`: the values of one metric of one channel, stacked by status, with
the QC limits as dashed lines. Built in Python (coordinates are computed), every text escaped
with the HTML toolkit's :func:`quantscope._html.escape`; colours from its viridis map.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable

import numpy as np

from .._html import NAN_COLOR, escape, fmt_sig, row_name, viridis_hex, well_name
from .._text import plural
from ._data import ImageQCRecord
from ._report_common import (
    _STATUS_COLOR,
    _STATUS_LABEL,
    _isfinite,
    _robust_range,
    _status,
)
from ._report_graphics import _EMPTY_WELL

# Standard plate formats (rows, columns), smallest first.
_PLATE_FORMATS = ((2, 3), (3, 4), (4, 6), (6, 8), (8, 12), (16, 24), (32, 48))


def _plate_shape(cells: Iterable[tuple[int, int]]) -> tuple[int, int]:
    rows = cols = 0
    for r, c in cells:
        rows, cols = max(rows, r + 1), max(cols, c + 1)
    for fr, fc in _PLATE_FORMATS:
        if rows <= fr and cols <= fc:
            return fr, fc
    return rows, cols


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
    lo_text = ("≤ " if len(values) and values.min() < lo else "") + fmt_sig(lo)
    hi_text = ("≥ " if len(values) and values.max() > hi else "") + fmt_sig(hi)
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
        f"<svg class='heatmap' data-plate='{escape(plate)}' data-metric='{escape(metric)}' "
        f"data-channel='{escape(channel)}' width='{width}' height='{height}' "
        f"viewBox='0 0 {width} {height}' role='img' "
        f"aria-label='{escape(f'{metric} of {channel} on plate {plate}')}'>"
    ]
    step = 1 if cell >= 14 else 2
    for c in range(0, ncols, step):
        x = left + c * cell + cell / 2
        out.append(f"<text x='{x:g}' y='{top - 4}' class='lbl' font-size='{font}'>{c + 1}</text>")
    for r in range(nrows):
        y = top + r * cell + cell / 2 + font * 0.35
        out.append(
            f"<text x='{left - 5}' y='{y:g}' class='lbl' text-anchor='end' "
            f"font-size='{font}'>{row_name(r)}</text>"
        )
    for r in range(nrows):
        for c in range(ncols):
            x, y = left + c * cell + 1, top + r * cell + 1
            key = (r, c)
            if key not in wells:
                out.append(
                    f"<rect x='{x}' y='{y}' width='{cell - 2}' height='{cell - 2}' rx='2' "
                    f"fill='{_EMPTY_WELL}' stroke='#d8dee4' stroke-width='0.5'>"
                    f"<title>{well_name(r, c)}: no image</title></rect>"
                )
                continue
            records = wells[key]
            value = means[key]
            st = status[key]
            fill = viridis_hex((value - lo) / span) if math.isfinite(value) else NAN_COLOR
            if st == "fail":
                stroke = f" stroke='{_STATUS_COLOR['fail']}' stroke-width='2.5'"
                inset = 1.25
            elif st == "warn":
                stroke = f" stroke='{_STATUS_COLOR['warn']}' stroke-width='1.5'"
                inset = 0.75
            else:
                stroke, inset = "", 0.0
            well = records[0].well or f"{well_name(r, c)}"
            n_status = Counter(_status(rec) for rec in records)
            statuses = ", ".join(f"{n} {_STATUS_LABEL[s]}" for s, n in sorted(n_status.items()))
            fields = f"mean of {len(records)} fields" if len(records) > 1 else "1 field"
            tip = f"{well}: {metric} ({channel}) = {fmt_sig(value)} ({fields}) · {statuses}"
            out.append(
                f"<rect class='well' x='{x + inset:g}' y='{y + inset:g}' "
                f"width='{cell - 2 - 2 * inset:g}' height='{cell - 2 - 2 * inset:g}' rx='2' "
                f"fill='{fill}'{stroke} data-q='{escape(f'{plate} {well}')}'>"
                f"<title>{escape(tip)}</title></rect>"
            )
    # legend: a bar of the colour map under the plate, the range of the colours below it
    ly = top + nrows * cell + 6
    bar_x, bar_w = left + 1, ncols * cell - 2
    n_steps = 32
    for i in range(n_steps):
        colour = viridis_hex(i / (n_steps - 1))
        out.append(
            f"<rect x='{bar_x + i * bar_w / n_steps:.1f}' y='{ly}' "
            f"width='{bar_w / n_steps + 0.6:.1f}' height='7' fill='{colour}'/>"
        )
    if len(values):
        hi_x = max(bar_x + bar_w, bar_x + labels)
        out.append(
            f"<text x='{bar_x}' y='{ly + 19}' class='lbl' text-anchor='start' font-size='10'>"
            f"{escape(lo_text)}</text><text x='{hi_x}' y='{ly + 19}' class='lbl' "
            f"text-anchor='end' font-size='10'>{escape(hi_text)}</text>"
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
        f"<svg class='histogram' data-metric='{escape(metric)}' data-channel='{escape(channel)}' "
        f"width='{width}' height='{height}' viewBox='0 0 {width} {height}' role='img' "
        f"aria-label='{escape(f'histogram of {metric} of {channel}')}'>"
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
                where = f"≤ {fmt_sig(edges[1])}"
            elif i == len(edges) - 2 and clipped_hi:
                where = f"≥ {fmt_sig(edges[i])}"
            else:
                where = f"{fmt_sig(edges[i])} to {fmt_sig(edges[i + 1])}"
            tip = f"{where}: " + ", ".join(parts)
            out.append(
                f"<rect x='{x:.1f}' y='{top}' width='{bw:.1f}' height='{ph}' fill='transparent'>"
                f"<title>{escape(tip)}</title></rect>"
            )
    for key, bound in sorted(limits.items()):
        if not (_isfinite(bound) and lo <= bound <= hi):
            continue
        level = key.split("_")[0]
        x = left + (bound - lo) / (hi - lo) * pw
        out.append(
            f"<line x1='{x:.1f}' y1='{top}' x2='{x:.1f}' y2='{top + ph}' "
            f"stroke='{_STATUS_COLOR[level]}' stroke-width='1.5' stroke-dasharray='4 3'>"
            f"<title>{escape(f'{level} limit {fmt_sig(bound)}')}</title></line>"
        )
    out.append(
        f"<text x='{left - 4}' y='{top + 8}' class='lbl' text-anchor='end' font-size='10'>"
        f"{ymax}</text><text x='{left - 4}' y='{top + ph}' class='lbl' text-anchor='end' "
        f"font-size='10'>0</text>"
        f"<text x='{left}' y='{top + ph + 14}' class='lbl' text-anchor='start' font-size='10'>"
        f"{'≤ ' if clipped_lo else ''}{escape(fmt_sig(lo))}</text><text x='{left + pw}' "
        f"y='{top + ph + 14}' class='lbl' text-anchor='end' font-size='10'>"
        f"{'≥ ' if clipped_hi else ''}{escape(fmt_sig(hi))}</text>"
        f"<text x='{left + pw / 2}' y='{top + ph + 26}' class='lbl' font-size='10'>"
        f"{plural(len(every), 'image')}</text></svg>"
    )
    return "".join(out)
