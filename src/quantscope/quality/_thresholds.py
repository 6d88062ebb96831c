"""Quality-control thresholds: per-metric limits and the settings of dataset-level outliers."""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any

from ..errors import InvalidInput
from ._registry import METRICS

__all__ = ["DEFAULT_LIMITS", "DEFAULT_OUTLIER_METRICS", "Limit", "QCThresholds"]

_LIMIT_KEYS = ("warn_below", "fail_below", "warn_above", "fail_above")


def _did_you_mean(word: str, options: Any) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.5)
    return f"; did you mean {close[0]!r}?" if close else ""


def _number(where: str, value: Any, *, low: float | None = None, integer: bool = False) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        kind = "an integer" if integer else "a number"
        raise InvalidInput(f"{where}: expected {kind}, got {value!r} ({type(value).__name__})")
    if integer and not isinstance(value, int):
        raise InvalidInput(f"{where}: expected an integer, got {value!r}")
    if math.isnan(value):
        raise InvalidInput(f"{where}: expected a number, got NaN")
    if low is not None and not value >= low:
        raise InvalidInput(f"{where}: {value!r} is out of range; it must be >= {low:g}")
    return value


@dataclass(frozen=True)
class Limit:
    """Absolute limits of one metric. A value beyond a ``fail_*`` bound fails the image, beyond
    a ``warn_*`` bound warns; None means no bound. NaN values are never flagged.

    Attributes
    ----------
    warn_below, fail_below : float or None
        Flag values strictly below this bound.
    warn_above, fail_above : float or None
        Flag values strictly above this bound.
    """

    warn_below: float | None = None
    fail_below: float | None = None
    warn_above: float | None = None
    fail_above: float | None = None

    def __post_init__(self) -> None:
        for name in _LIMIT_KEYS:
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, float(_number(name, value)))
        if (
            self.warn_below is not None
            and self.fail_below is not None
            and self.fail_below > self.warn_below
        ):
            raise InvalidInput(
                f"fail_below ({self.fail_below:g}) must not be above warn_below "
                f"({self.warn_below:g}): failing is the more severe bound"
            )
        if (
            self.warn_above is not None
            and self.fail_above is not None
            and self.fail_above < self.warn_above
        ):
            raise InvalidInput(
                f"fail_above ({self.fail_above:g}) must not be below warn_above "
                f"({self.warn_above:g}): failing is the more severe bound"
            )

    def to_dict(self) -> dict[str, float]:
        """The bounds that are set, as a dict (the TOML table of this limit)."""
        return {k: getattr(self, k) for k in _LIMIT_KEYS if getattr(self, k) is not None}


#: Default absolute limits (see :class:`QCThresholds` for the reasoning behind each).
DEFAULT_LIMITS: Mapping[str, Limit] = MappingProxyType(
    {
        "saturation_pct_at_max": Limit(warn_above=0.1, fail_above=1.0),
        "saturation_pct_at_dtype_max": Limit(warn_above=0.1, fail_above=1.0),
        "pct_at_min": Limit(warn_above=1.0, fail_above=25.0),
        "dynamic_range_used": Limit(warn_below=0.005),
        "snr": Limit(warn_below=20.0, fail_below=5.0),
        "illum_corner_center_ratio": Limit(warn_below=0.8, fail_below=0.5),
        "illum_flatness": Limit(warn_below=0.45),
        "foreground_pct": Limit(warn_below=0.05),
        "pct_nonfinite": Limit(warn_above=0.0, fail_above=50.0),
        "focus_plls": Limit(warn_below=-3.6, fail_below=-4.0),
    }
)

#: Metrics checked for dataset-level outliers by default: the cross-field focus metrics and
#: the signal-to-noise ratio.
DEFAULT_OUTLIER_METRICS: tuple[str, ...] = (
    "focus_plls",
    "focus_local",
    "focus_laplacian_var",
    "snr",
)


def _default_limits() -> Mapping[str, Limit]:
    return DEFAULT_LIMITS


@dataclass(frozen=True)
class QCThresholds:
    """Thresholds that turn metrics into pass / warn / fail: absolute limits and outliers.

    Attributes
    ----------
    limits : mapping of str to Limit
        Absolute limits per metric name (a key of :data:`METRICS`). Defaults
        (:data:`DEFAULT_LIMITS`), calibrated on the synthetic knobs and the real test images:

        - ``saturation_pct_at_max`` and ``saturation_pct_at_dtype_max``: warn above 0.1 %,
          fail above 1 % of the pixels (a clean image has a handful of pixels at its maximum;
          one of the 40 BBBC039 images, clipped at 4095, has 0.28 %).
        - ``pct_at_min``: warn above 1 %, fail above 25 % (clipping at the low end: an offset
          set too low).
        - ``dynamic_range_used``: warn below 0.005 (less than 0.5 % of the detector range).
        - ``snr``: warn below 20, fail below 5 (real in-focus 16-bit images: 100-340; the dim
          8-bit CellProfiler illumination example: 8-46; a tenfold noisier synthetic camera:
          15-35).
        - ``illum_corner_center_ratio``: warn below 0.8, fail below 0.5 (corners 20 % / 50 %
          darker than the centre, camera offset included). Measured (min-max): clean
          synthetic plates, seeds 0-4 (2x3, 2 fields, 256 px; 60 fields per channel), DAPI
          0.95-1.05, GFP 0.95-1.06; real in-focus images: BBBC039 0.86-0.97, BBBC006 z10
          0.96-1.02; synthetic vignetting 0.3: 0.82-0.92 (not flagged: the 100 ADU camera
          offset is not vignetted), 0.5: 0.73-0.82, 0.7: 0.62-0.72 (all flagged); the
          CellProfiler illumination example 0.31-0.74 (all flagged). The warn bound lies
          halfway between the lowest clean real image (0.86) and the strongest synthetic
          vignetting's highest value (0.72).
        - ``illum_flatness``: warn below 0.45. Measured: clean synthetic plates above 0.88,
          BBBC039 0.78-0.88, BBBC006 z10 0.91-0.98, synthetic vignetting 0.7: 0.60-0.69 (caught
          by the ratio), the CellProfiler illumination example 0.00-0.28. Fields under about
          128 px, with cells covering most blocks, can still score low (the field estimate
          needs fields several times larger than the cells).
        - ``foreground_pct``: warn below 0.05 % (an empty or blank field; a warning only, as
          a negative-control well may rightly show nothing in a channel).
        - ``pct_nonfinite``: warn above 0 %, fail above 50 % (NaN or infinite pixels).

        - ``focus_plls``: warn below -3.6, fail below -4.0, so that a plate (or a set of
          loose images) that is out of focus *as a whole* fails without any sharp peer.
          Calibrated with ``bench/qc_focus_limits.py`` on the slope QC stores (binned for
          planes of >= 128 px): the 12 strongly defocused BBBC006 fields -5.55 to -4.60; in
          focus: BBBC006 z-plane 10 -2.27 to -1.80, BBBC039 -2.23 to -1.58, CellProfiler's
          examples (84 planes) -2.55 to -0.42, the CTC HeLa and CHO data -1.87 to -1.46, and
          510 DSB2018 images from many labs, microscopes and magnifications (256 to 1388 px,
          no pixel sizes) -3.30 to -0.25. The fail bound sits 0.60 above the sharpest
          defocused field and 0.70 below the blurriest sharp image (warn: 0.30 below it).
          The slope measures blur *relative to the pixel* (frequencies up to 1/8 cycle/px):
          on synthetic fields the worst of 6 crosses -4 at a total Gaussian PSF sigma of
          3.6 px (256 px fields) to 4.1 px (512 px), while an in-focus widefield PSF
          (sigma ~0.21 lambda/NA) sampled at Nyquist is about 0.84 px. The limits therefore
          hold for in-focus images sampled up to about 2-3x finer than Nyquist, whatever the
          magnification; heavily oversampled data (high-zoom confocal, a few huge nuclei
          filling the field) can read as blurred and need their own limit
          (``[qc.limits.focus_plls]``, an empty table switches it off). The other focus
          metrics have
          no absolute default: they depend on intensity scale and content.
    outlier_metrics : tuple of str
        Metrics whose robust z-score within a group flags outliers
        (:data:`DEFAULT_OUTLIER_METRICS`). Only the worse side is flagged (see
        :attr:`MetricInfo.direction`); metrics with ``log_scale`` are compared as ``log10``.
    outlier_warn_z, outlier_fail_z : float
        Robust z-score magnitudes from which an outlier warns (3.5, the cut-off of Iglewicz &
        Hoaglin 1993) or fails (7). Use ``inf`` to switch one off.
    outlier_min_group : int
        Outliers are computed only in groups of at least this many images with a finite value
        (8): median and MAD of fewer values are too unstable.
    outlier_min_rel_spread : float
        Floor of the robust spread, relative to the group median (0.05, i.e. 5 %; for
        log-scale metrics ``log10(1.05)``): in a very uniform group, differences of a few
        percent are not outliers.
    """

    limits: Mapping[str, Limit] = field(default_factory=_default_limits)
    outlier_metrics: tuple[str, ...] = DEFAULT_OUTLIER_METRICS
    outlier_warn_z: float = 3.5
    outlier_fail_z: float = 7.0
    outlier_min_group: int = 8
    outlier_min_rel_spread: float = 0.05

    def __post_init__(self) -> None:
        limits: dict[str, Limit] = {}
        for name, limit in dict(self.limits).items():
            if name not in METRICS:
                raise InvalidInput(f"limits: unknown metric {name!r}{_did_you_mean(name, METRICS)}")
            if not isinstance(limit, Limit):
                raise InvalidInput(f"limits.{name}: expected a Limit, got {limit!r}")
            limits[name] = limit
        object.__setattr__(self, "limits", MappingProxyType(limits))
        metrics = tuple(self.outlier_metrics)
        for name in metrics:
            if name not in METRICS:
                raise InvalidInput(
                    f"outlier_metrics: unknown metric {name!r}{_did_you_mean(name, METRICS)}"
                )
        object.__setattr__(self, "outlier_metrics", metrics)
        warn = float(_number("outlier_warn_z", self.outlier_warn_z, low=0.0))
        fail = float(_number("outlier_fail_z", self.outlier_fail_z, low=0.0))
        if fail < warn:
            raise InvalidInput(
                f"outlier_fail_z ({fail:g}) must not be below outlier_warn_z ({warn:g})"
            )
        object.__setattr__(self, "outlier_warn_z", warn)
        object.__setattr__(self, "outlier_fail_z", fail)
        min_group = _number("outlier_min_group", self.outlier_min_group, low=3, integer=True)
        object.__setattr__(self, "outlier_min_group", int(min_group))
        spread = _number("outlier_min_rel_spread", self.outlier_min_rel_spread, low=0.0)
        object.__setattr__(self, "outlier_min_rel_spread", float(spread))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "quality") -> QCThresholds:
        """Thresholds from a plain mapping such as the ``[quality]`` table of quantscope.toml.

        Parameters
        ----------
        data : mapping
            Any of the attribute names of :class:`QCThresholds`. ``limits`` maps metric
            names to tables of ``warn_below``, ``fail_below``, ``warn_above``,
            ``fail_above``; a metric's table *replaces* its default limit (an empty table
            removes it); metrics not named keep their defaults.
        where : str
            Where the mapping came from, for error messages (e.g. ``"quantscope.toml
            [quality]"``).

        Raises
        ------
        quantscope.errors.InvalidInput
            For an unknown key (with a "did you mean" suggestion), an unknown metric name, or a
            value of the wrong type or range.

        Examples
        --------
        >>> t = QCThresholds.from_dict(
        ...     {"outlier_warn_z": 4, "limits": {"snr": {"warn_below": 10}}}
        ... )
        >>> t.limits["snr"]
        Limit(warn_below=10.0, fail_below=None, warn_above=None, fail_above=None)
        """
        if not isinstance(data, Mapping):
            raise InvalidInput(f"{where}: expected a table of settings, got {data!r}")
        known = [f.name for f in fields(cls)]
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key not in known:
                raise InvalidInput(
                    f"{where}: unknown setting {key!r}{_did_you_mean(str(key), known)} "
                    f"(known: {', '.join(known)})"
                )
            if key == "limits":
                kwargs["limits"] = _limits_from_dict(value, f"{where}.limits")
            elif key == "outlier_metrics":
                if isinstance(value, str) or not isinstance(value, list | tuple):
                    raise InvalidInput(
                        f"{where}.outlier_metrics: expected a list of metric names, got {value!r}"
                    )
                kwargs[key] = tuple(value)
            else:
                kwargs[key] = value
        try:
            return cls(**kwargs)
        except InvalidInput as exc:
            raise InvalidInput(f"{where}: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        """The thresholds as plain data (round-trips through :meth:`from_dict`).

        A default limit that was removed appears as an empty table.
        """
        limits: dict[str, dict[str, float]] = {key: {} for key in DEFAULT_LIMITS}
        limits.update({name: limit.to_dict() for name, limit in self.limits.items()})
        return {
            "limits": limits,
            "outlier_metrics": list(self.outlier_metrics),
            "outlier_warn_z": self.outlier_warn_z,
            "outlier_fail_z": self.outlier_fail_z,
            "outlier_min_group": self.outlier_min_group,
            "outlier_min_rel_spread": self.outlier_min_rel_spread,
        }


def _limits_from_dict(value: Any, where: str) -> dict[str, Limit]:
    if not isinstance(value, Mapping):
        raise InvalidInput(f"{where}: expected a table of metric names, got {value!r}")
    limits = dict(DEFAULT_LIMITS)
    for name, table in value.items():
        if name not in METRICS:
            raise InvalidInput(
                f"{where}: unknown metric {name!r}{_did_you_mean(str(name), METRICS)}"
            )
        if not isinstance(table, Mapping):
            raise InvalidInput(
                f"{where}.{name}: expected a table such as {{warn_below = 10}}, got {table!r}"
            )
        for key in table:
            if key not in _LIMIT_KEYS:
                raise InvalidInput(
                    f"{where}.{name}: unknown bound {key!r}{_did_you_mean(str(key), _LIMIT_KEYS)} "
                    f"(known: {', '.join(_LIMIT_KEYS)})"
                )
        try:
            limit = Limit(**dict(table))
        except InvalidInput as exc:
            raise InvalidInput(f"{where}.{name}: {exc}") from None
        if limit.to_dict():
            limits[name] = limit
        else:
            limits.pop(name, None)
    return limits
