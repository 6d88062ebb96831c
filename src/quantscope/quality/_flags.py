"""From metrics to pass / warn / fail: absolute limits and robust outliers within groups.

A verdict is made of :class:`QCFlag` records: each says which rule (:data:`RULES`) flagged
which metric of which channel, with the value, the limit crossed or the robust z-score, the
side and the severity. The sentence a person reads is rendered from the record in one place,
:func:`describe_flag` (also :attr:`QCFlag.message`); nothing parses such a sentence back.
"""

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

__all__ = [
    "RULES",
    "FlagKind",
    "QCFlag",
    "QCResult",
    "Status",
    "check_limits",
    "describe_flag",
    "evaluate",
    "finite_or_none",
    "flag_rule",
    "robust_zscores",
]

Status = Literal["pass", "warn", "fail"]
FlagKind = Literal["limit", "outlier", "error", "note"]
K = TypeVar("K", bound=Hashable)

_MAD_TO_SIGMA = 1.482602218505602

#: The rules a flag can name (:attr:`QCFlag.rule`), with what each means. Stable names: the
#: catalog stores them and the query language asks for them (``qc.flag == "saturation"``).
RULES: Mapping[str, str] = MappingProxyType(
    {
        "focus": "out of focus: a focus metric (focus_plls, focus_normvar, focus_local, "
        "focus_laplacian_var) below its limit or blurrier than the peers",
        "saturation": "saturated pixels: clipped at the image or the detector maximum",
        "clipped_min": "pixels clipped at the minimum (pct_at_min)",
        "dynamic_range": "little of the detector range used (dynamic_range_used)",
        "snr": "low signal-to-noise ratio, or noisier / dimmer than the peers",
        "intensity": "an intensity or background metric out of its configured range",
        "illumination": "uneven illumination (illum_corner_center_ratio, illum_flatness)",
        "empty": "an empty or blank field (foreground_pct, is_empty)",
        "nonfinite": "NaN or infinite pixels (pct_nonfinite)",
        "unreadable": "the stored image could not be measured",
        "note": "a reason given as text (by a caller, or by a catalog from before 0007 whose "
        "sentence could not be read as a rule)",
    }
)
_RULE_OF_METRIC = {
    "focus_plls": "focus",
    "focus_normvar": "focus",
    "focus_local": "focus",
    "focus_laplacian_var": "focus",
    "saturation_pct_at_max": "saturation",
    "saturation_pct_at_dtype_max": "saturation",
    "pct_at_min": "clipped_min",
    "intensity_min": "intensity",
    "intensity_max": "intensity",
    "intensity_mean": "intensity",
    "dynamic_range_used": "dynamic_range",
    "background_median": "intensity",
    "background_mad": "intensity",
    "snr": "snr",
    "illum_corner_center_ratio": "illumination",
    "illum_flatness": "illumination",
    "foreground_pct": "empty",
    "is_empty": "empty",
    "pct_nonfinite": "nonfinite",
}
_CATEGORY_RULE = {"focus": "focus", "saturation": "saturation", "illumination": "illumination"}
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


def flag_rule(metric: str) -> str:
    """The rule a flag of ``metric`` belongs to.

    Parameters
    ----------
    metric : str
        A metric name (a key of :data:`METRICS`).

    Returns
    -------
    str
        A key of :data:`RULES`. Every metric of :data:`METRICS` has its own entry; an unknown
        metric falls back to its category's rule, else ``"intensity"``.
    """
    rule = _RULE_OF_METRIC.get(metric)
    if rule is not None:
        return rule
    info = METRICS.get(metric)
    return _CATEGORY_RULE.get(info.category, "intensity") if info is not None else "intensity"


@dataclass(frozen=True)
class QCFlag:
    """One reason for a warn or fail status: a structured record.

    Attributes
    ----------
    metric : str
        The metric (a key of :data:`METRICS`); ``""`` for kinds ``"error"`` and ``"note"``.
    level : {"warn", "fail"}
        Severity (also :attr:`severity`).
    kind : {"limit", "outlier", "error", "note"}
        An absolute limit was crossed; the value is a robust outlier within its group; the
        image could not be measured (:attr:`detail` says why); a reason given as text only.
    value : float or None
        The metric value (None for ``"error"`` and ``"note"``).
    bound : float or None
        The limit crossed (``kind == "limit"``).
    zscore : float or None
        The robust z-score within the group (``kind == "outlier"``).
    median : float or None
        The group's median of the metric (``kind == "outlier"``).
    peers : int or None
        How many images of the group had a usable value (``kind == "outlier"``).
    channel : str or None
        The channel flagged, as QC of a repository names it: the channel name, or the names
        joined by ``=`` when identical channels were evaluated as one (``"R=G=B"``). None for
        a flag of the whole image, or outside a repository.
    channel_index : int or None
        Index of that channel (the first of merged identical channels).
    detail : str or None
        The text of an ``"error"`` (why the image could not be measured) or a ``"note"``.
    rule : str
        Derived: the rule that flagged it (:data:`RULES`, :func:`flag_rule`).
    direction : {"above", "below"} or None
        Derived: the side of the limit, or of the group's median, the value lies on.
    message : str
        Derived: the human-readable sentence, :func:`describe_flag`.
    """

    metric: str
    level: Literal["warn", "fail"]
    kind: FlagKind
    value: float | None
    bound: float | None = None
    zscore: float | None = None
    median: float | None = None
    peers: int | None = None
    channel: str | None = None
    channel_index: int | None = None
    detail: str | None = None

    @property
    def severity(self) -> Literal["warn", "fail"]:
        """The same as :attr:`level`."""
        return self.level

    @property
    def rule(self) -> str:
        """The rule that flagged this (a key of :data:`RULES`)."""
        if self.kind == "error":
            return "unreadable"
        if self.kind == "note":
            return "note"
        return flag_rule(self.metric)

    @property
    def direction(self) -> Literal["above", "below"] | None:
        """``"above"`` or ``"below"`` the limit (or the group's median); None without one."""
        if self.kind == "limit" and self.value is not None and self.bound is not None:
            return "below" if self.value < self.bound else "above"
        if self.kind == "outlier" and self.zscore is not None:
            return "below" if self.zscore < 0 else "above"
        return None

    @property
    def message(self) -> str:
        """The sentence shown to a person (:func:`describe_flag`)."""
        return describe_flag(self)

    @classmethod
    def error(cls, detail: str, level: Literal["warn", "fail"] = "warn") -> QCFlag:
        """The flag of an image that could not be measured, and why."""
        return cls("", level, "error", None, detail=detail)

    @classmethod
    def note(cls, text: str, level: Literal["warn", "fail"] = "warn") -> QCFlag:
        """A reason given as text only (no rule, metric or value)."""
        return cls("", level, "note", None, detail=text)

    def to_dict(self) -> dict[str, object]:
        """The flag as plain data (for JSON, tables and reports), its sentence included."""
        return {
            "metric": self.metric,
            "level": self.level,
            "kind": self.kind,
            "rule": self.rule,
            "channel": self.channel,
            "channel_index": self.channel_index,
            "value": finite_or_none(self.value),
            "bound": finite_or_none(self.bound),
            "zscore": finite_or_none(self.zscore),
            "direction": self.direction,
            "median": finite_or_none(self.median),
            "peers": self.peers,
            "detail": self.detail,
            "message": self.message,
        }


def finite_or_none(value: float | None) -> float | None:
    """A number for JSON, which has no NaN or infinity.

    Parameters
    ----------
    value : float or None
        A metric value, limit or z-score.

    Returns
    -------
    float or None
        ``value``, or None for None, NaN and infinities.
    """
    return value if value is not None and math.isfinite(value) else None


def describe_flag(flag: QCFlag) -> str:
    """The sentence a person reads for ``flag``: the one place it is written.

    Parameters
    ----------
    flag : QCFlag
        The record.

    Returns
    -------
    str
        ``"ch DAPI: snr = 4.2 is below the fail limit 5: low signal-to-noise ratio"``; an
        outlier quotes its robust z-score and its group's median; an error reads ``"quality
        could not be measured: <detail>"``, a note is its text. The ``"ch <channel>: "``
        prefix is there when the flag names its channel.
    """
    if flag.kind == "error":
        return f"quality could not be measured: {flag.detail or ''}"
    if flag.kind == "note":
        return flag.detail or ""
    prefix = f"ch {flag.channel}: " if flag.channel is not None else ""
    metric, value = flag.metric, math.nan if flag.value is None else flag.value
    side = flag.direction or "above"
    if flag.kind == "limit":
        bound = math.nan if flag.bound is None else flag.bound
        hint = _HINTS.get(metric, "out of range")
        return (
            f"{prefix}{metric} = {_fmt(value, metric)} is {side} the {flag.level} limit "
            f"{_fmt(bound, metric)}: {hint}"
        )
    info = METRICS.get(metric)
    category = info.category if info is not None else ""
    hint = _OUTLIER_HINTS.get(metric, _OUTLIER_HINTS.get(category, "unusual among its peers"))
    z = math.nan if flag.zscore is None else flag.zscore
    median = math.nan if flag.median is None else flag.median
    return (
        f"{prefix}{metric} = {_fmt(value, metric)} is an outlier {side} its group: robust z = "
        f"{z:+.1f} (median {_fmt(median, metric)} of {flag.peers or 0} images): {hint}"
    )


@dataclass(frozen=True)
class QCResult:
    """Quality-control verdict of one image (channel).

    Attributes
    ----------
    status : {"pass", "warn", "fail"}
        The most severe level among the flags; ``"pass"`` without flags.
    flags : tuple of QCFlag
        The flags, fails first (limits before outliers within a level).
    zscores : mapping of str to float
        Robust z-score of each outlier metric within the group (NaN where not computed:
        too small a group, or an undefined value).
    reasons : tuple of str
        Derived: one sentence per flag (:attr:`QCFlag.message`), in the order of ``flags``.
    """

    status: Status
    flags: tuple[QCFlag, ...] = ()
    zscores: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def reasons(self) -> tuple[str, ...]:
        """One sentence per flag, in the order of :attr:`flags`."""
        return tuple(f.message for f in self.flags)

    def to_dict(self) -> dict[str, object]:
        """The verdict as plain data (for JSON, tables and reports)."""
        return {
            "status": self.status,
            "reasons": list(self.reasons),
            "flags": [f.to_dict() for f in self.flags],
            "zscores": dict(self.zscores),
        }


def _fmt(value: float, metric: str) -> str:
    info = METRICS.get(metric)
    unit = info.unit if info is not None else "1"
    text = f"{value:.4g}"
    return f"{text} %" if unit == "%" else (f"{text} ADU" if unit == "ADU" else text)


def _limit_flags(metric: str, value: float, limit: Limit) -> list[QCFlag]:
    if not math.isfinite(value):
        return []
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
            return [QCFlag(metric, level, "limit", value, bound)]
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
    return QCFlag(metric, level, "outlier", value, zscore=z, median=centre, peers=n)


def _result(flags: Iterable[QCFlag], zscores: Mapping[str, float]) -> QCResult:
    ordered = sorted(flags, key=lambda f: (f.level != "fail", f.kind != "limit"))
    status: Status = "pass"
    if any(f.level == "fail" for f in ordered):
        status = "fail"
    elif ordered:
        status = "warn"
    return QCResult(
        status=status,
        flags=tuple(ordered),
        zscores=MappingProxyType(dict(zscores)),
    )
