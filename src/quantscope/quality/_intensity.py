"""Saturation, intensity range and content (empty-field) metrics of one plane.

Saturation (:func:`percent_at_max`, :func:`percent_at_min`, :func:`percent_at_dtype_max`),
the intensity range (:func:`intensity_range`, :func:`dynamic_range_used`) and the content of
a field (:func:`foreground_pct`, :func:`is_empty`: pixels brighter than their local
background by several noise sigmas). The background and noise they use are computed in
:mod:`._background`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._background import Background, _background
from ._common import Plane, prepare, safe_ratio
from ._field import BackgroundField, plane_field
from ._kernels import scratch

__all__ = [
    "EMPTY_FOREGROUND_PCT",
    "FOREGROUND_SIGMAS",
    "dynamic_range_used",
    "foreground_pct",
    "intensity_range",
    "is_empty",
    "percent_at_dtype_max",
    "percent_at_max",
    "percent_at_min",
]

#: Pixels brighter than their local background by this many noise sigmas are foreground.
FOREGROUND_SIGMAS = 6.0
#: A field whose foreground covers less than this percentage of the pixels is empty.
EMPTY_FOREGROUND_PCT = 0.05
_P5_SIGMAS = 1.6448536269514722  # the 5th percentile of a Gaussian, in sigmas below the mean


# ---------------------------------------------------------------- saturation


def _count_equal(p: Plane, value: int) -> int:
    """Pixels of an integer plane equal to ``value``."""
    equal = scratch("count_equal", p.raw.shape, np.bool_)
    np.equal(p.raw, p.raw.dtype.type(value), out=equal)
    return int(np.count_nonzero(equal))


def _extreme_counts(p: Plane) -> tuple[int, int] | None:
    """Pixels of an integer plane at its minimum and at its maximum (None for floats and
    constant planes): what :func:`channel_metrics <quantscope.quality.channel_metrics>`
    counts once and passes to the saturation metrics."""
    if p.all_nonfinite or p.raw.dtype.kind not in "ui" or p.raw_min == p.raw_max:
        return None
    return _count_equal(p, int(p.raw_min)), _count_equal(p, int(p.raw_max))


def _pct_at_value(p: Plane, which: str, extremes: tuple[int, int] | None = None) -> float:
    """Percent of the pixels at the plane's ``which`` ("min" or "max") extreme
    (``extremes``: the :func:`_extreme_counts` of ``p``, when known)."""
    if p.all_nonfinite:
        return math.nan
    if p.raw.dtype.kind in "ui":
        lo, hi = int(p.raw_min), int(p.raw_max)  # from prepare: no extra pass
        if lo == hi:
            return math.nan
        if extremes is not None:
            hits = extremes[1] if which == "max" else extremes[0]
        else:
            hits = _count_equal(p, hi if which == "max" else lo)
    else:
        work = p.work
        wlo, whi = work.min(), work.max()
        if wlo == whi:
            return math.nan
        at = work == (whi if which == "max" else wlo)
        if p.finite is not None:
            at &= p.finite
        hits = int(np.count_nonzero(at))
    return 100.0 * hits / p.n_finite


def _pct_at_dtype_max(p: Plane, extremes: tuple[int, int] | None = None) -> float:
    """Percent of the pixels at or above the saturation level (``extremes``: the
    :func:`_extreme_counts` of ``p``, when known)."""
    if p.all_nonfinite or p.saturation_level is None:
        return math.nan
    level = p.saturation_level
    if p.raw.dtype.kind in "ui":
        level_int = int(level)
        info = np.iinfo(p.raw.dtype)
        if level_int > info.max or level_int > p.raw_max:
            return 0.0  # nothing reaches the level: no pass over the pixels
        if level_int == p.raw_max:
            hits = _count_equal(p, level_int) if extremes is None else extremes[1]
        else:
            hits = int(np.count_nonzero(p.raw >= p.raw.dtype.type(level_int)))
    else:
        with np.errstate(invalid="ignore"):
            hits = int(np.count_nonzero(p.raw >= level))
    return 100.0 * hits / p.n_finite


def percent_at_max(image: Any) -> float:
    """Percent of pixels at the image's own maximum (CellProfiler's ``PercentMaximal``).

    A sensitive saturation indicator when the detector clips below the dtype maximum (e.g. a
    12-bit camera stored as uint16). Natural images have only a handful of pixels at their
    maximum; a clipped image has many.

    Parameters
    ----------
    image : array_like
        2-D image ``(Y, X)``; any real dtype. Only finite pixels count.

    Returns
    -------
    float
        Percent (0-100) of the finite pixels. NaN for a constant image (no contrast: the
        maximum is also the minimum) or no finite pixel.

    References
    ----------
    .. [1] CellProfiler MeasureImageQuality, "PercentMaximal".
       https://cellprofiler-manual.s3.amazonaws.com/CellProfiler-4.2.6/modules/measurement.html#measureimagequality
    """
    return _pct_at_value(prepare(image, name="image"), "max")


def percent_at_min(image: Any) -> float:
    """Percent of pixels at the image's own minimum (CellProfiler's ``PercentMinimal``).

    High values mean clipping at the low end (an offset set too low, or over-aggressive
    background subtraction).

    Parameters
    ----------
    image : array_like
        2-D image ``(Y, X)``; any real dtype. Only finite pixels count.

    Returns
    -------
    float
        Percent (0-100) of the finite pixels. NaN for a constant image or no finite pixel.

    References
    ----------
    .. [1] CellProfiler MeasureImageQuality, "PercentMinimal".
       https://cellprofiler-manual.s3.amazonaws.com/CellProfiler-4.2.6/modules/measurement.html#measureimagequality
    """
    return _pct_at_value(prepare(image, name="image"), "min")


def percent_at_dtype_max(image: Any, *, significant_bits: int | None = None) -> float:
    """Percent of pixels at (or above) the detector's saturation level.

    The level is ``2**significant_bits - 1`` when given, otherwise the integer dtype maximum
    (65535 for uint16). This is CellProfiler's former ``PercentSaturation``.

    Parameters
    ----------
    image : array_like
        2-D image ``(Y, X)``.
    significant_bits : int, optional
        Bits used by the detector (e.g. 12 for a 12-bit camera stored as uint16).

    Returns
    -------
    float
        Percent (0-100) of the finite pixels. NaN for float images without
        ``significant_bits`` (they have no defined maximum) or with no finite pixel.

    References
    ----------
    .. [1] Bray, M.-A. et al. (2012). J Biomol Screen 17(2), 266-274.
       :doi:`10.1177/1087057111420292`
    """
    return _pct_at_dtype_max(prepare(image, significant_bits=significant_bits, name="image"))


# ---------------------------------------------------------------- intensity range


def _plane_mean(p: Plane) -> float:
    """Mean of the finite pixels in working units.

    Integer planes of up to 32 bits: the exact integer sum; otherwise float64 sums.
    """
    if p.finite is not None:  # the working copy holds the median in place of non-finite
        return float(np.mean(p.work[p.finite], dtype=np.float64))
    if p.raw.dtype.kind in "ui" and p.raw.dtype.itemsize <= 4:
        total = int(np.sum(p.raw, dtype=np.int64 if p.raw.dtype.kind == "i" else np.uint64))
        return math.ldexp(total / p.size, -p.exponent)
    return float(np.mean(p.work, dtype=np.float64))


def _intensity_range(p: Plane, mean: float | None = None) -> tuple[float, float, float]:
    """Minimum, maximum and mean in raw units (``mean``: :func:`_plane_mean` of ``p``, when
    the caller knows it, e.g. from the exact tile sums)."""
    if p.all_nonfinite:
        return math.nan, math.nan, math.nan
    # The extremes of the finite pixels are found once, by prepare.
    return float(p.raw_min), float(p.raw_max), p.to_units(_plane_mean(p) if mean is None else mean)


def intensity_range(image: Any) -> tuple[float, float, float]:
    """Minimum, maximum and mean intensity of the finite pixels, in the image's units.

    Parameters
    ----------
    image : array_like
        2-D image ``(Y, X)``; any real dtype.

    Returns
    -------
    tuple of float
        ``(min, max, mean)`` in raw intensity units (ADU); NaN if no pixel is finite.
    """
    return _intensity_range(prepare(image, name="image"))


def _dynamic_range(p: Plane, lo: float | None = None, hi: float | None = None) -> float:
    if p.all_nonfinite or p.saturation_level is None:
        return math.nan
    if lo is None or hi is None:
        lo, hi, _ = _intensity_range(p)
    return safe_ratio(hi - lo, p.saturation_level - p.range_min)


def dynamic_range_used(image: Any, *, significant_bits: int | None = None) -> float:
    """Fraction of the detector's range spanned by the image: ``(max - min) / range``.

    Parameters
    ----------
    image : array_like
        2-D image ``(Y, X)``.
    significant_bits : int, optional
        Bits used by the detector; the range is then ``2**significant_bits - 1`` instead of
        the dtype's range.

    Returns
    -------
    float
        Fraction 0-1 (1: the image spans the whole range). NaN for float images without
        ``significant_bits`` or with no finite pixel.

    Notes
    -----
    Without ``significant_bits`` a 12-bit camera stored as uint16 uses at most 6 % of the
    uint16 range: pass the bit depth from the acquisition metadata where it is known.
    """
    return _dynamic_range(prepare(image, significant_bits=significant_bits, name="image"))


# ---------------------------------------------------------------- content


def _foreground_pct(p: Plane, bg: Background, bgf: BackgroundField | None = None) -> float:
    if p.all_nonfinite or not math.isfinite(bg.noise):
        return math.nan
    if bgf is None:
        bgf = plane_field(p)
    if bgf is None:  # tiny image: one global threshold
        level = bg.median + FOREGROUND_SIGMAS * max(bg.noise, bg.spread)
        with np.errstate(invalid="ignore"):
            hits = np.count_nonzero(p.raw > level)
        return 100.0 * hits / p.n_finite
    # The 5th percentile of pure background is 1.645 sigma below its level.
    margin = (_P5_SIGMAS + FOREGROUND_SIGMAS) * math.ldexp(bg.noise, -p.exponent)
    # sub is in units of 2**-exponent: the threshold is scaled (exactly) to them instead.
    threshold = bgf.upsampled(bgf.exponent, slot="foreground_threshold")
    threshold += math.ldexp(margin, bgf.exponent)
    above = scratch("foreground_mask", threshold.shape, np.bool_)
    np.greater(bgf.sub, threshold, out=above)
    return 100.0 * np.count_nonzero(above) / bgf.sub.size


def foreground_pct(image: Any) -> float:
    """Percent of pixels brighter than their local background by more than 6 noise sigmas.

    The local background is the smooth field of the block-wise 5th percentiles (8 x 8 blocks,
    see :func:`illumination_uniformity`) plus 1.645 sigma (the 5th percentile of Gaussian
    noise lies 1.645 sigma below the mean); the sigma is the pixel noise of
    :func:`background` (6 sigma: real noise has heavier tails than a Gaussian, and the
    smooth field follows the illumination only approximately). Following the local
    background, an empty but unevenly lit field has no foreground, and a confluent field (no
    background anywhere) still has the texture of its cells as foreground. Counted on a
    regular subsample of at most 512 px per side.

    Parameters
    ----------
    image : array_like
        2-D image ``(Y, X)``; any real dtype.

    Returns
    -------
    float
        Percent (0-100); NaN if no pixel is finite. Images smaller than 16 px on a side use
        one global threshold: background median + 6 x the larger of the noise and the
        spread of the background.

    See Also
    --------
    is_empty : the empty-field decision made from this percentage.
    """
    p = prepare(image, name="image")
    return _foreground_pct(p, _background(p))


def is_empty(image: Any, *, min_foreground_pct: float = EMPTY_FOREGROUND_PCT) -> bool:
    """Whether a field is empty or blank: foreground below ``min_foreground_pct`` percent.

    Parameters
    ----------
    image : array_like
        2-D image ``(Y, X)``; any real dtype.
    min_foreground_pct : float
        Smallest foreground percentage of a field with content (default 0.05 %: about
        2,000 px, a few nuclei, in a 2048 x 2048 px field). The fraction makes the decision
        independent of the image size; on the test data the empty fields score below
        0.012 % and the sparsest fields with cells above 0.5 %.

    Returns
    -------
    bool
        True for a field with no (or almost no) pixel 6 sigma above its local background
        (see :func:`foreground_pct`), including constant (blank) images and images without
        a finite pixel.
    """
    pct = foreground_pct(image)
    return not pct >= min_foreground_pct
