"""What every part of the HTML quality-control report shares.

The statuses of
the images (pass / warn / fail / not checked: their ranks, labels and colours, the worst of
several); metric values looked up in an :class:`~quantscope.qc._data.ImageQCRecord`, the
(channel, metric) pairs its flag records name, and the QC limits those records crossed; finite
values, means and outlier-robust ranges of metric values. Used by :mod:`._report` (the page),
:mod:`._report_plots` (SVG) and :mod:`._report_graphics` (images). Escaping and number formats
are the HTML toolkit's (:mod:`quantscope._html`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

from .._html import as_float as _real
from ._data import ImageQCRecord

_STATUS_RANK = {"fail": 0, "warn": 1, "pass": 2}
_STATUS_LABEL = {"fail": "fail", "warn": "warn", "pass": "pass", "none": "not checked"}
_STATUS_COLOR = {"pass": "#2da44e", "warn": "#d4a72c", "fail": "#cf222e", "none": "#8c959f"}


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
    """QC limits per metric: the defaults, overridden by the bounds the flags crossed (the
    repository's own limits, from its quantscope.toml).

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
        for flag in record.flags:
            if flag.kind != "limit" or flag.bound is None or flag.direction is None:
                continue
            key = f"{flag.level}_{flag.direction}"
            if (flag.metric, key) not in seen:  # the repository's own limit replaces the default
                seen.add((flag.metric, key))
                limits.setdefault(flag.metric, {})[key] = flag.bound
    return limits


def _flagged_cells(record: ImageQCRecord) -> set[tuple[str, str]]:
    """(channel name, metric) pairs the flags of ``record`` name (the channel as flagged:
    ``"R=G=B"`` for identical channels evaluated as one)."""
    return {
        (flag.channel, flag.metric)
        for flag in record.flags
        if flag.channel is not None and flag.metric
    }


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
