"""From metrics to pass / warn / fail: absolute limits and robust outliers within groups."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal, TypeVar

import numpy as np
import numpy.typing as npt

from .._text import plural
from ..errors import InvalidInput
from ._registry import METRICS
from ._thresholds import Limit, QCThresholds

__all__ = ["QCFlag", "QCResult", "Status", "check_limits", "evaluate", "robust_zscores"]

Status = Literal["pass", "warn", "fail"]
K = TypeVar("K", bound=Hashable)

_MAD_TO_SIGMA = 1.482602218505602
_HINTS = {
    "focus_plls": "out of focus (blurred)",
    "saturation_pct_at_max": "saturated (clipped at the image maximum)",
    "saturation_pct_at_dtype_max": "saturated (clipped at the detector maximum)",
    "pct_at_min": "clipped at the minimum (offset too low?)",
    "dynamic_range_used": "uses little of the detector range",
    "snr": "low signal-to-noise ratio",
    "illum_corner_center_ratio": "uneven illumination (dark corners)",
    "illum_flatness": "uneven illumination",
    "foreground_pct": "empty or blank field",
    "is_empty": "empty or blank field",
    "pct_nonfinite": "NaN or infinite pixels",
}
_OUTLIER_HINTS = {
    "focus": "blurrier than its peers",
    "snr": "noisier or dimmer than its peers",
    "saturation": "more saturated than its peers",
    "illumination": "less evenly lit than its peers",
}


@dataclass(frozen=True)
class QCFlag:
    """One reason for a warn or fail status.

    Attributes
    ----------
    metric : str
        The metric (a key of :data:`METRICS`).
    level : {"warn", "fail"}
        Severity.
    kind : {"limit", "outlier"}
        An absolute limit was crossed, or the value is a robust outlier within its group.
    value : float
        The metric value.
    bound : float or None
        The limit crossed (``kind == "limit"``).
    zscore : float or None
        The robust z-score within the group (``kind == "outlier"``).
    message : str
        Human-readable reason.
    """

    metric: str
    level: Literal["warn", "fail"]
    kind: Literal["limit", "outlier"]
    value: float
    bound: float | None
    zscore: float | None
    message: str

    def to_dict(self) -> dict[str, object]:
        """The flag as plain data (for JSON, tables and reports)."""
        return {
            "metric": self.metric,
            "level": self.level,
            "kind": self.kind,
            "value": self.value,
            "bound": self.bound,
            "zscore": self.zscore,
            "message": self.message,
        }


@dataclass(frozen=True)
class QCResult:
    """Quality-control verdict of one image (channel).

    Attributes
    ----------
    status : {"pass", "warn", "fail"}
        The most severe level among the flags; ``"pass"`` without flags.
    reasons : tuple of str
        One message per flag, fails first.
    flags : tuple of QCFlag
        The flags themselves (for tables and reports).
    zscores : mapping of str to float
        Robust z-score of each outlier metric within the group (NaN where not computed:
        too small a group, or an undefined value).
    """

    status: Status
    reasons: tuple[str, ...] = ()
    flags: tuple[QCFlag, ...] = ()
    zscores: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))

    def to_dict(self) -> dict[str, object]:
        """The verdict as plain data (for JSON, tables and reports)."""
        return {
            "status": self.status,
            "reasons": list(self.reasons),
            "flags": [f.to_dict() for f in self.flags],
            "zscores": dict(self.zscores),
        }


def _fmt(value: float, metric: str) -> str:
    unit = METRICS[metric].unit
    text = f"{value:.4g}"
    return f"{text} %" if unit == "%" else (f"{text} ADU" if unit == "ADU" else text)


def _limit_flags(metric: str, value: float, limit: Limit) -> list[QCFlag]:
    if not math.isfinite(value):
        return []
    hint = _HINTS.get(metric, "out of range")
    checks: tuple[tuple[Literal["warn", "fail"], float | None, str], ...] = (
        ("fail", limit.fail_below, "below"),
        ("fail", limit.fail_above, "above"),
        ("warn", limit.warn_below, "below"),
        ("warn", limit.warn_above, "above"),
    )
    for level, bound, side in checks:
        if bound is None:
            continue
        crossed = value < bound if side == "below" else value > bound
        if crossed:
            message = (
                f"{metric} = {_fmt(value, metric)} is {side} the {level} limit "
                f"{_fmt(bound, metric)}: {hint}"
            )
            return [QCFlag(metric, level, "limit", value, bound, None, message)]
    return []


def check_limits(
    metrics: Mapping[str, float], thresholds: QCThresholds | None = None
) -> list[QCFlag]:
    """Flags of one image's metrics against the absolute limits (no outliers).

    Parameters
    ----------
    metrics : mapping of str to float
        Metrics of one image channel, as from :func:`channel_metrics`. Missing or NaN
        values are not flagged.
    thresholds : QCThresholds, optional
        Limits to apply; the defaults when omitted.

    Returns
    -------
    list of QCFlag
        At most one flag per metric (the most severe bound crossed).
    """
    thresholds = thresholds or QCThresholds()
    out: list[QCFlag] = []
    for metric, limit in thresholds.limits.items():
        out.extend(_limit_flags(metric, _value(metrics, metric), limit))
    return out


def _robust(
    values: npt.ArrayLike, log_scale: bool, min_count: int, min_rel_spread: float
) -> tuple[npt.NDArray[np.float64], float, int]:
    v = np.asarray(values, dtype=np.float64)
    z = np.full(v.shape, math.nan)
    ok = np.isfinite(v)
    if log_scale:
        ok &= v > 0
    n = int(np.count_nonzero(ok))
    if n < min_count:
        return z, math.nan, n
    t = np.log10(v[ok]) if log_scale else v[ok]
    centre = float(np.median(t))
    spread = _MAD_TO_SIGMA * float(np.median(np.abs(t - centre)))
    floor = math.log10(1.0 + min_rel_spread) if log_scale else min_rel_spread * abs(centre)
    scale = max(spread, floor)
    if scale == 0.0:  # every value identical: nothing stands out; any difference does
        z[ok] = np.where(t == centre, 0.0, np.copysign(np.inf, t - centre))
    else:
        z[ok] = (t - centre) / scale
    return z, (10.0**centre if log_scale else centre), n


def robust_zscores(
    values: npt.ArrayLike,
    *,
    log_scale: bool = False,
    min_count: int = 8,
    min_rel_spread: float = 0.05,
) -> npt.NDArray[np.float64]:
    """Robust z-scores ``(x - median) / (1.4826 * MAD)`` of a group of values.

    Parameters
    ----------
    values : array_like
        One value per image; NaN / inf (and, with ``log_scale``, non-positive values) are
        ignored and get a NaN score.
    log_scale : bool
        Compute the scores on ``log10(values)``.
    min_count : int
        Fewer usable values than this give all-NaN scores.
    min_rel_spread : float
        Floor of the spread relative to the median (``log10(1 + min_rel_spread)`` on the log
        scale), so that tiny differences in a very uniform group are not outliers.

    Returns
    -------
    numpy.ndarray
        float64 scores, the shape of ``values``.

    References
    ----------
    .. [1] Iglewicz, B., Hoaglin, D. C. (1993). How to Detect and Handle Outliers. ASQC
       Quality Press. (Modified z-score and its 3.5 cut-off.)
    """
    return _robust(values, log_scale, min_count, min_rel_spread)[0]


def _is_bad(z: float, direction: str, cut: float) -> bool:
    if direction == "higher":
        return z <= -cut
    if direction == "lower":
        return z >= cut
    return abs(z) >= cut


def evaluate(
    metrics_by_image: Mapping[K, Mapping[str, float]],
    thresholds: QCThresholds | None = None,
    groups: Mapping[K, Hashable] | None = None,
) -> dict[K, QCResult]:
    """Pass / warn / fail every image from absolute limits and outliers among its peers.

    Parameters
    ----------
    metrics_by_image : mapping
        Image key (any hashable, e.g. ``(image_id, channel)``) to its metrics, as returned by
        :func:`channel_metrics`.
    thresholds : QCThresholds, optional
        Limits and outlier settings; the documented defaults when omitted.
    groups : mapping, optional
        Image key to its group (e.g. ``(plate, channel)``): outliers are computed among the
        images of one group. Omitted: all images form one group (so pass one channel at a
        time, or give groups).

    Returns
    -------
    dict
        Image key to :class:`QCResult`, in the order of ``metrics_by_image``.

    Raises
    ------
    quantscope.errors.InvalidInput
        If ``groups`` lacks a key of ``metrics_by_image``.

    Notes
    -----
    For each metric of ``thresholds.outlier_metrics`` and each group with at least
    ``outlier_min_group`` finite values, the robust z-score is
    ``(x - median) / max(1.4826 * MAD, outlier_min_rel_spread * |median|)`` (on ``log10``
    for log-scale metrics). Values on the worse side beyond ``outlier_warn_z`` warn, beyond
    ``outlier_fail_z`` fail. This catches, for example, the one image that is blurry
    *relative to its peers* although its focus is within any absolute limit.
    """
    thresholds = thresholds or QCThresholds()
    keys = list(metrics_by_image)
    if groups is None:
        group_of: dict[K, Hashable] = dict.fromkeys(keys, None)
    else:
        missing = [k for k in keys if k not in groups]
        if missing:
            raise InvalidInput(
                f"groups: no group for {plural(len(missing), 'image')}, e.g. {missing[0]!r}; give "
                f"every key of metrics_by_image a group (e.g. (plate, channel))"
            )
        group_of = {k: groups[k] for k in keys}

    flags: dict[K, list[QCFlag]] = {k: check_limits(metrics_by_image[k], thresholds) for k in keys}
    zscores: dict[K, dict[str, float]] = {k: {} for k in keys}
    members: dict[Hashable, list[K]] = defaultdict(list)
    for k in keys:
        members[group_of[k]].append(k)

    for metric in thresholds.outlier_metrics:
        info = METRICS[metric]
        for group_keys in members.values():
            values = [_value(metrics_by_image[k], metric) for k in group_keys]
            z, centre, n = _robust(
                values,
                info.log_scale,
                thresholds.outlier_min_group,
                thresholds.outlier_min_rel_spread,
            )
            for k, value, score in zip(group_keys, values, z.tolist(), strict=True):
                zscores[k][metric] = score
                if math.isnan(score):
                    continue
                flag = _outlier_flag(metric, value, score, centre, n, thresholds)
                if flag is not None:
                    flags[k].append(flag)

    return {k: _result(flags[k], zscores[k]) for k in keys}


def _value(metrics: Mapping[str, float], metric: str) -> float:
    value = metrics.get(metric)
    if value is None:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise InvalidInput(
            f"metrics: {metric} must be a number, got {value!r} ({type(value).__name__})"
        )
    return float(value)


def _outlier_flag(
    metric: str, value: float, z: float, centre: float, n: int, thresholds: QCThresholds
) -> QCFlag | None:
    info = METRICS[metric]
    if _is_bad(z, info.direction, thresholds.outlier_fail_z):
        level: Literal["warn", "fail"] = "fail"
    elif _is_bad(z, info.direction, thresholds.outlier_warn_z):
        level = "warn"
    else:
        return None
    side = "below" if z < 0 else "above"
    hint = _OUTLIER_HINTS.get(metric, _OUTLIER_HINTS.get(info.category, "unusual among its peers"))
    message = (
        f"{metric} = {_fmt(value, metric)} is an outlier {side} its group: robust z = "
        f"{z:+.1f} (median {_fmt(centre, metric)} of {n} images): {hint}"
    )
    return QCFlag(metric, level, "outlier", value, None, z, message)


def _result(flags: Iterable[QCFlag], zscores: Mapping[str, float]) -> QCResult:
    ordered = sorted(flags, key=lambda f: (f.level != "fail", f.kind != "limit"))
    status: Status = "pass"
    if any(f.level == "fail" for f in ordered):
        status = "fail"
    elif ordered:
        status = "warn"
    return QCResult(
        status=status,
        reasons=tuple(f.message for f in ordered),
        flags=tuple(ordered),
        zscores=MappingProxyType(dict(zscores)),
    )
