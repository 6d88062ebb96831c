"""What every part of the HTML quality-control report shares.

The statuses of
the images (pass / warn / fail / not checked: their ranks, labels and colours, the worst of
several); metric values looked up in an :class:`~quantscope.qc._data.ImageQCRecord`, the
(channel, metric) pairs its reasons name, and the QC limits quoted in the reasons; finite
values, means and outlier-robust ranges of metric values. Used by :mod:`._report` (the page),
:mod:`._report_plots` (SVG) and :mod:`._report_graphics` (images). Escaping and number formats
are the HTML toolkit's (:mod:`quantscope._html`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

from .._html import as_float as _real
from ._data import ImageQCRecord

_STATUS_RANK = {"fail": 0, "warn": 1, "pass": 2}
_STATUS_LABEL = {"fail": "fail", "warn": "warn", "pass": "pass", "none": "not checked"}
_STATUS_COLOR = {"pass": "#2da44e", "warn": "#d4a72c", "fail": "#cf222e", "none": "#8c959f"}

# "ch DAPI: snr = 4.2 is below the fail limit 5: low signal-to-noise ratio"
_LIMIT_RE = re.compile(
    r"(?P<metric>\w+) = \S+(?: %| ADU)? is (?P<side>below|above) the (?P<level>warn|fail) "
    r"limit (?P<bound>[-+0-9.eE]+|-?inf)"
)
_CHANNEL_RE = re.compile(r"^ch (?P<channel>.*?): (?P<metric>\w+) = ")


def _isfinite(value: object) -> bool:
    return math.isfinite(_real(value))


def _status(record: ImageQCRecord) -> str:
    return record.status if record.status in _STATUS_RANK else "none"


def _worse(a: str, b: str) -> str:
    ranks = {"fail": 0, "warn": 1, "pass": 2, "none": 3}
    return a if ranks[a] <= ranks[b] else b


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


def _status_of(records: Iterable[ImageQCRecord]) -> str:
    worst = "none"
    for record in records:
        status = _status(record)
        worst = status if worst == "none" else _worse(worst, status)
    return worst
