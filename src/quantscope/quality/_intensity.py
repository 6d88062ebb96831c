"""Saturation, intensity, background, noise and content (empty-field) metrics of one plane."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ._common import _LAST_INDEX, SAMPLE_TARGET, Plane, prepare, safe_ratio, scratch
from ._field import BackgroundField, plane_field

__all__ = [
    "EMPTY_FOREGROUND_PCT",
    "FOREGROUND_SIGMAS",
    "Background",
    "background",
    "dynamic_range_used",
    "foreground_pct",
    "intensity_range",
    "is_empty",
    "percent_at_dtype_max",
    "percent_at_max",
    "percent_at_min",
    "signal_to_noise",
]

#: Gaussian sigma equivalent of the median absolute deviation.
MAD_TO_SIGMA = 1.482602218505602
#: Pixels brighter than their local background by this many noise sigmas are foreground.
FOREGROUND_SIGMAS = 6.0
#: A field whose foreground covers less than this percentage of the pixels is empty.
EMPTY_FOREGROUND_PCT = 0.05
#: Percentile of the image taken as "the signal" by the signal-to-noise ratio.
SIGNAL_PERCENTILE = 99.0
_CLIP_SIGMAS = 3.0
_P5_SIGMAS = 1.6448536269514722  # the 5th percentile of a Gaussian, in sigmas below the mean
_MODE_BINS = 512
#: Largest doubled distance (in units of one ADU) whose counts the MAD of a counted integer
#: sample tallies in one array (wider ranges bisect, see ``_Ranked.mad``).
_COUNTED_MAD_RANGE = 1 << 21


# ---------------------------------------------------------------- saturation


def _count_equal(p: Plane, value: int) -> int:
    """Pixels of an integer plane equal to ``value`` (cached: shared by the saturation metrics)."""
    key = f"count_equal:{value}"
    if key not in p.cache:
        equal = scratch("count_equal", p.raw.shape, np.bool_)
        np.equal(p.raw, p.raw.dtype.type(value), out=equal)
        p.cache[key] = int(np.count_nonzero(equal))
    return int(p.cache[key])


def _pct_at_value(p: Plane, which: str) -> float:
    if p.all_nonfinite:
        return math.nan
    if p.raw.dtype.kind in "ui":
        lo, hi = int(p.raw_min), int(p.raw_max)  # from prepare: no extra pass
        if lo == hi:
            return math.nan
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


def _pct_at_dtype_max(p: Plane) -> float:
    if p.all_nonfinite or p.saturation_level is None:
        return math.nan
    level = p.saturation_level
    if p.raw.dtype.kind in "ui":
        level_int = int(level)
        info = np.iinfo(p.raw.dtype)
        if level_int > info.max or level_int > p.raw_max:
            return 0.0  # nothing reaches the level: no pass over the pixels
        if level_int == p.raw_max:
            hits = _count_equal(p, level_int)
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
    """Mean of the finite pixels in working units (shared with the focus metrics).

    Integer planes of up to 32 bits: the exact integer sum; otherwise float64 sums.
    """
    if "mean" not in p.cache:
        if p.finite is not None:  # the working copy holds the median in place of non-finite
            mean = float(np.mean(p.work[p.finite], dtype=np.float64))
        elif p.raw.dtype.kind in "ui" and p.raw.dtype.itemsize <= 4:
            total = int(np.sum(p.raw, dtype=np.int64 if p.raw.dtype.kind == "i" else np.uint64))
            mean = math.ldexp(total / p.size, -p.exponent)
        else:
            mean = float(np.mean(p.work, dtype=np.float64))
        p.cache["mean"] = mean
    return float(p.cache["mean"])


def _intensity_range(p: Plane) -> tuple[float, float, float]:
    if p.all_nonfinite:
        return math.nan, math.nan, math.nan
    # The extremes of the finite pixels are found once, by prepare.
    return float(p.raw_min), float(p.raw_max), p.to_units(_plane_mean(p))


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


# ---------------------------------------------------------------- background and noise


@dataclass(frozen=True)
class Background:
    """Robust background statistics of one plane (raw intensity units, ADU).

    Attributes
    ----------
    mode : float
        Most common intensity (peak of the histogram): the background level.
    median : float
        Median of the background pixels (those up to 3 sigma above the mode).
    mad : float
        Median absolute deviation of the background pixels. ``1.4826 * mad`` is the spread of
        the background over the field: pixel noise plus gradients and vignetting.
    noise : float
        Pixel-to-pixel noise sigma of the background: ``1.4826 * MAD / sqrt(2)`` of the
        differences between horizontally adjacent background pixels (insensitive to smooth
        background variation), or their clipped standard deviation where larger (integer
        data of about one ADU of noise); at least the quantization noise ``1 / sqrt(12)``
        ADU of integer images.
    signal : float
        The signal level, the 99th percentile of all pixels.
    """

    mode: float
    median: float
    mad: float
    noise: float
    signal: float

    @property
    def spread(self) -> float:
        """Gaussian-equivalent spread of the background values, ``1.4826 * mad``."""
        return MAD_TO_SIGMA * self.mad

    @property
    def snr(self) -> float:
        """``(signal - median) / noise``; NaN when the noise is 0 (noise-free float images)."""
        return safe_ratio(self.signal - self.median, self.noise)


_NAN_BACKGROUND = Background(math.nan, math.nan, math.nan, math.nan, math.nan)


def _kth_of_two(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64], k: int) -> float:
    """The ``k``-th smallest (0-based) value of the union of two ascending arrays."""
    lo, hi = max(0, k + 1 - b.size), min(k + 1, a.size)
    while lo < hi:  # smallest count i taken from a with a[i] >= b[k - i]
        i = (lo + hi) // 2
        if a[i] < b[k - i]:
            lo = i + 1
        else:
            hi = i
    i, j = lo, k + 1 - lo
    if i == 0:
        return float(b[j - 1])
    if j == 0:
        return float(a[i - 1])
    return float(max(a[i - 1], b[j - 1]))


def _sorted_mad(x: npt.NDArray[np.float64], centre: float) -> float:
    """``np.median(np.abs(x - centre))`` of an ascending array, in O(log n), same value.

    The distances below and above ``centre`` form two ascending runs whose union's median
    is found by bisection instead of a partition of all the distances.
    """
    n = x.size
    if n == 0:
        return math.nan
    split = int(x.searchsorted(centre, side="left"))
    below = centre - x[:split][::-1]  # ascending distances of the values below the centre
    above = x[split:] - centre
    if n % 2:
        return _kth_of_two(below, above, n // 2)
    return (_kth_of_two(below, above, n // 2 - 1) + _kth_of_two(below, above, n // 2)) / 2.0


class _Ranked:
    """A sorted sample as ascending values with counts: order statistics in O(log n).

    Integer samples are counted (one entry per distinct value), so every statistic of the
    background works on a few hundred entries instead of ~65,000 samples, with exactly the
    values ``np.median`` and ``np.percentile`` give on the expanded sorted sample.
    """

    def __init__(
        self,
        values: npt.NDArray[np.float64],
        counts: npt.NDArray[np.int64],
        unit: float | None = None,
    ) -> None:
        self.values = values
        self.counts = counts
        self.cum = counts.cumsum()
        self.n = int(self.cum[-1]) if counts.size else 0
        self.unit_counts = values.size == self.n  # one sample per entry (float images)
        # a power of two of which every value is a whole multiple (counted integer samples
        # in working units), or None
        self.unit = unit

    def kth(self, k: int) -> float:
        """The ``k``-th smallest sample (0-based)."""
        if self.unit_counts:
            return float(self.values[k])
        return float(self.values[int(self.cum.searchsorted(k, side="right"))])

    def median(self, first: int, count: int) -> float:
        """``np.median`` of the samples of ranks ``first .. first + count - 1``."""
        mid = first + count // 2
        if count % 2:
            return self.kth(mid)
        return (self.kth(mid - 1) + self.kth(mid)) / 2.0

    def count_le(self, x: float) -> int:
        """Number of samples ``<= x``."""
        i = int(self.values.searchsorted(x, side="right"))
        return int(self.cum[i - 1]) if i else 0

    def percentile(self, q: float) -> float:
        """``np.percentile(sample, q)`` (linear interpolation, numpy's formula)."""
        virtual = (self.n - 1) * (q / 100.0)
        if virtual >= self.n - 1:
            return self.kth(self.n - 1)
        prev = math.floor(virtual)
        t = virtual - prev
        a, b = self.kth(prev), self.kth(prev + 1)
        diff = b - a
        # numpy's _lerp: interpolate from the nearer end.
        return b - diff * (1.0 - t) if t >= 0.5 else a + diff * t

    def mad(self, count: int, centre: float) -> float:
        """``np.median(np.abs(s - centre))`` of the ``count`` smallest samples ``s``."""
        if self.unit_counts:
            return _sorted_mad(self.values[:count], centre)
        if self.unit is not None and count > 0:
            return self._counted_mad(count, centre, self.unit)
        return self._general_mad(count, centre)

    def _general_mad(self, count: int, centre: float) -> float:
        """:meth:`mad` of counted samples: bisection over the distances on both sides."""
        last = int(self.cum.searchsorted(count - 1, side="right"))  # entry of rank count-1
        values = self.values[: last + 1]
        counts = self.counts[: last + 1].copy()
        counts[-1] -= int(self.cum[last]) - count  # only part of the last value's samples
        split = int(values.searchsorted(centre, side="left"))
        below = centre - values[:split][::-1]  # ascending distances, both sides
        above = values[split:] - centre
        zero = np.zeros(1, np.int64)
        cum_below = np.concatenate((zero, np.cumsum(counts[:split][::-1])))
        cum_above = np.concatenate((zero, np.cumsum(counts[split:])))

        def within(dist: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
            """Samples at most ``dist`` from the centre, for each of ``dist`` (ascending)."""
            i = below.searchsorted(dist, side="right")
            j = above.searchsorted(dist, side="right")
            return np.asarray(cum_below[i] + cum_above[j])

        reach_below = within(below)
        reach_above = within(above)

        def kth(k: int) -> float:
            best = math.inf
            i = int(reach_below.searchsorted(k + 1, side="left"))
            if i < below.size:
                best = float(below[i])
            j = int(reach_above.searchsorted(k + 1, side="left"))
            if j < above.size:
                best = min(best, float(above[j]))
            return best

        if count % 2:
            return kth(count // 2)
        return (kth(count // 2 - 1) + kth(count // 2)) / 2.0

    def _counted_mad(self, count: int, centre: float, unit: float) -> float:
        """:meth:`mad` of samples that are whole multiples of ``unit`` (a power of two) about
        a centre that is one of them or the mean of two: the distances, doubled and in units,
        are integers, so their counts are one ``bincount`` whose middle ranks are found in
        its cumulative sum (the same values as the general path, exactly)."""
        last = int(self.cum.searchsorted(count - 1, side="right"))  # entry of rank count-1
        scale = 2.0 / unit  # exact: a power of two
        reach = max(centre - float(self.values[0]), float(self.values[last]) - centre) * scale
        if not (reach <= _COUNTED_MAD_RANGE and (centre * scale).is_integer()):
            return self._general_mad(count, centre)  # wide integers, or another centre
        counts = self.counts[: last + 1].astype(np.float64)
        counts[-1] -= int(self.cum[last]) - count  # only part of the last value's samples
        doubled = np.abs(self.values[: last + 1] * scale - centre * scale)  # exact integers
        cum = np.bincount(doubled.astype(np.intp), weights=counts).cumsum()
        lo, hi = cum.searchsorted(((count - 1) // 2, count // 2), side="right")
        return (float(lo) + float(hi)) / 2.0 / scale


def _histogram_mode(r: _Ranked, unit: float) -> float:
    """Most common value of a sample: the peak of a lightly smoothed histogram.

    Bins span the 0.1-99.9th percentiles in about 512 steps (whole multiples of ``unit``,
    one ADU, for integer images, so that every bin holds the same number of integer
    levels; ``unit`` is 0 for float images).
    """
    n = r.n
    lo = r.kth(int(0.001 * (n - 1)))
    hi = r.kth(math.ceil(0.999 * (n - 1)))
    if not hi > lo:
        return lo
    width = (hi - lo) / _MODE_BINS
    if unit > 0:
        width = max(1.0, math.ceil(width / unit)) * unit
    # The values in [lo, hi] are a run of entries, and so are those of any run of bins.
    first = int(r.values.searchsorted(lo, side="left"))
    last = int(r.values.searchsorted(hi, side="right"))
    index = ((r.values[first:last] - lo) / width).astype(np.intp)
    weights = None if r.unit_counts else r.counts[first:last]
    counts = np.asarray(np.bincount(index, weights=weights), dtype=np.float64)
    if counts.size >= 3:
        # np.convolve(counts, np.ones(3), mode="same"): sums of whole counts (exact in
        # float64, in any order), without its set-up
        smooth = counts.copy()
        smooth[1:] += counts[:-1]
        smooth[:-1] += counts[1:]
        counts = smooth
    peak = int(np.argmax(counts))
    # Refine to the median of the samples in the peak bin and its neighbours.
    start = first + int(index.searchsorted(peak - 1, side="left"))
    stop = first + int(index.searchsorted(peak + 1, side="right"))
    below = int(r.cum[start - 1]) if start else 0
    return r.median(below, int(r.cum[stop - 1]) - below)


def _is_last_counting_sort(sample: npt.NDArray[np.intp]) -> bool:
    """Whether ``sample`` is still the buffer of this thread's last counting sort."""
    return getattr(_LAST_INDEX, "array", None) is sample


def _integer_diffs(p: Plane, top: float, step: int) -> _Ranked | None:
    """Differences (work units) of adjacent pixel pairs at or below ``top``, counted exactly
    from the raw integers; None for floats and integers wider than 16 bits."""
    raw = p.raw if p.raw.shape[1] >= 2 else p.raw.T
    if not p.small_ints:
        return None
    left = raw[::step, 0 : raw.shape[1] - 1 : step]
    right = raw[::step, 1::step][:, : left.shape[1]]
    # work <= top  <=>  raw <= top * 2**exponent (exact scaling) <=> raw <= floor(that)
    lo, hi = int(p.raw_min), int(p.raw_max)
    limit = math.floor(math.ldexp(top, p.exponent)) if math.isfinite(top) else top
    if limit < lo:
        return _Ranked(np.empty(0), np.empty(0, np.int64))
    top_int = int(min(limit, hi))
    span = top_int - lo  # the differences of the pairs kept lie in [-span, span]
    index = scratch("diffs", left.shape, np.intp)
    cached: tuple[int, int, npt.NDArray[np.intp]] | None = p.cache.get("sample_index")
    sample = None
    if cached is not None and raw is p.raw and cached[:2] == (step, lo):
        sample = cached[2]
    if (
        sample is not None
        and sample.shape[0] == left.shape[0]
        and sample.shape[1] >= left.shape[1]
        and _is_last_counting_sort(sample)
    ):
        # The left pixels are the counted sample (as offsets from the minimum): one strided
        # read of the plane instead of two, the rest on contiguous arrays.
        offsets = sample[:, : left.shape[1]]
        if top_int < hi and (span + 2) ** 2 <= offsets.size // 4:
            return _joint_diffs(p, right, offsets, lo, span)
        right_off = scratch("diffs_right", left.shape, np.intp)
        np.subtract(right, lo, out=right_off, dtype=np.intp)
        np.subtract(right_off, offsets, out=index)
        index += span
        if top_int < hi:  # pairs with a pixel above the limit are counted in an extra bin
            np.maximum(right_off, offsets, out=right_off)
            above = scratch("diffs_above", left.shape, np.bool_)
            np.greater(right_off, span, out=above)
            np.putmask(index, above, 2 * span + 1)  # (faster than copyto's where=)
    else:
        np.subtract(right, left, out=index, dtype=np.intp)
        index += span
        if top_int < hi:  # pairs with a pixel above the limit are counted in an extra bin
            brighter = scratch("diffs_max", left.shape, raw.dtype)
            np.maximum(left, right, out=brighter)
            index[brighter > raw.dtype.type(top_int)] = 2 * span + 1
    counts = np.bincount(index.ravel(), minlength=2 * span + 2)[: 2 * span + 1]
    return _ranked_diffs(counts, span, p.exponent)


def _ranked_diffs(counts: npt.NDArray[np.int64], span: int, exponent: int) -> _Ranked:
    """The differences ``-span .. span`` (raw units; ``counts[k]`` of ``k - span``) that
    occur, ranked in working units (``2**-exponent`` per raw unit)."""
    present = np.flatnonzero(counts)
    values = np.ldexp((present - span).astype(np.float64), -exponent)
    return _Ranked(values, counts[present].astype(np.int64, copy=False), math.ldexp(1.0, -exponent))


def _diagonal_sums(square: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Sums of the diagonals ``r - l = d`` of an ``(m, m)`` integer array, ``d = -(m - 1) ..
    m - 1``: its rows laid out skewed (row ``r`` reversed, from column ``r``, in rows of
    ``2m`` zeros) so that each diagonal is a column, summed in integers."""
    m = square.shape[0]
    skewed = np.zeros(m * 2 * m, np.int64)
    rows: npt.NDArray[np.int64] = np.ndarray((m, m), np.int64, skewed, 0, ((2 * m + 1) * 8, 8))
    rows[...] = square[:, ::-1]  # row r, column l -> skewed column r - l + m - 1
    return skewed.reshape(m, 2 * m).sum(axis=0)[: 2 * m - 1]


def _joint_diffs(
    p: Plane,
    right: npt.NDArray[Any],
    offsets: npt.NDArray[np.intp],
    lo: int,
    span: int,
) -> _Ranked:
    """:func:`_integer_diffs` of the pairs whose left pixels are ``offsets`` (offsets from the
    minimum ``lo``) and right pixels ``right``, kept where both are at most ``lo + span``, for
    a small ``span``: the joint counts of the two levels (each clipped to ``span + 1``, which
    stands for every level above the limit) in one ``bincount``, whose diagonals inside the
    kept levels are the counts of each difference. The same integer counts as counting the
    differences with the pairs above the limit set aside, in fewer passes."""
    side = span + 2
    index = scratch("diffs", offsets.shape, np.intp)
    level = scratch("diffs_right", offsets.shape, np.intp)
    np.minimum(right, right.dtype.type(lo + span + 1), out=level, dtype=np.intp)
    level -= lo  # the right level, 0 .. span + 1
    level *= side
    np.minimum(offsets, span + 1, out=index)  # the left level, 0 .. span + 1
    index += level
    joint = np.bincount(index.ravel(), minlength=side * side).reshape(side, side)
    counts = _diagonal_sums(joint[: span + 1, : span + 1])
    return _ranked_diffs(counts, span, p.exponent)


def _pixel_noise(p: Plane, top: float) -> float:
    """Noise sigma (work units) from differences of adjacent pixels both at or below ``top``.

    ``1.4826 * MAD / sqrt(2)`` of the differences, or, where larger, their standard deviation
    within +-5 sigma (at least +-3 ADU for integer images) over ``sqrt(2)``: the MAD of
    integer differences is too coarse when the noise is about one ADU.

    For integer images of up to 16 bits the differences are counted (one entry per distinct
    difference): the median and MAD are those of ``np.median``; the standard deviation is
    computed from the counts (equal to ``np.std`` up to the rounding of its sums).
    """
    if max(p.raw.shape) < 2:
        return math.nan
    step = max(1, math.ceil(math.sqrt(p.size / SAMPLE_TARGET)))
    ranked = _integer_diffs(p, top, step)
    if ranked is not None:
        if ranked.n < 16:
            return math.nan
        centre = ranked.median(0, ranked.n)
        sigma_d = MAD_TO_SIGMA * ranked.mad(ranked.n, centre)
        clip = max(5.0 * sigma_d, math.ldexp(3.0, -p.exponent))
        near = np.abs(ranked.values - centre) <= clip
        values, counts = ranked.values[near], ranked.counts[near].astype(np.float64)
        n_inside = float(counts.sum())
        if n_inside >= 16:
            mean = float(np.dot(values, counts)) / n_inside
            dev = values - mean
            sigma_d = max(sigma_d, math.sqrt(float(np.dot(dev * dev, counts)) / n_inside))
        return sigma_d / math.sqrt(2.0)
    work = p.work if p.work.shape[1] >= 2 else p.work.T
    left = work[::step, 0 : work.shape[1] - 1 : step]
    right = work[::step, 1::step][:, : left.shape[1]]
    keep = (left <= top) & (right <= top)
    diff = (right[keep].astype(np.float64) - left[keep]).ravel()
    if diff.size < 16:
        return math.nan
    centre = float(np.median(diff))
    dev = np.abs(diff - centre)
    sigma_d = MAD_TO_SIGMA * float(np.median(dev))
    clip = 5.0 * sigma_d
    if p.raw.dtype.kind in "ui":
        clip = max(clip, math.ldexp(3.0, -p.exponent))
    inside = diff[dev <= clip]
    if inside.size >= 16:
        sigma_d = max(sigma_d, float(np.std(inside)))
    return sigma_d / math.sqrt(2.0)


def _background(p: Plane) -> Background:
    """Background statistics, computed in working units (no overflow) and returned in ADU.

    The sample is ranked once (counted for integer images: one entry per distinct value);
    every median, MAD and percentile is then an order statistic (the values ``np.median``
    and ``np.percentile`` give on the sorted sample) found by bisection. Cached on the plane.
    """
    if p.all_nonfinite:
        return _NAN_BACKGROUND
    if "background" in p.cache:
        return p.cache["background"]  # type: ignore[no-any-return]
    integer = p.raw.dtype.kind in "ui"
    unit = math.ldexp(1.0, -p.exponent) if integer else 0.0  # one ADU in working units
    r = _Ranked(*p.counted_sample(), unit if integer else None)
    if r.n == 0:
        return _NAN_BACKGROUND
    mode = _histogram_mode(r, unit)
    n_below = r.count_le(mode)
    # The median of mode - s over the samples s <= mode.
    sigma_left = MAD_TO_SIGMA * (mode - r.median(0, n_below)) if n_below else 0.0
    top_value = mode + _CLIP_SIGMAS * sigma_left
    n_bg = max(r.count_le(top_value), 1)
    median = r.median(0, n_bg)
    mad = r.mad(n_bg, median)
    noise = _pixel_noise(p, top_value)
    if not math.isfinite(noise):  # too few adjacent background pixels: use the spread
        noise = MAD_TO_SIGMA * mad
    if integer:
        noise = max(noise, unit / math.sqrt(12.0))
    signal = r.percentile(SIGNAL_PERCENTILE)
    result = Background(
        mode=p.to_units(mode),
        median=p.to_units(median),
        mad=p.to_units(mad),
        noise=p.to_units(noise),
        signal=p.to_units(signal),
    )
    p.cache["background"] = result
    return result


def background(image: Any) -> Background:
    """Robust background level, noise and signal of a fluorescence image.

    The background level is found as the mode of the intensities (the peak of their
    histogram, in about 512 bins between the 0.1th and 99.9th percentiles): in fluorescence
    images the background is the narrowest, hence tallest, peak even where it covers only a
    tenth of the field, as in strongly defocused images. A first noise estimate comes from the
    pixels below the mode (which objects do not contaminate); pixels up to 3 of its sigmas
    above the mode form the background, whose median and median absolute deviation (MAD) are
    reported. The pixel noise is measured on differences of adjacent background pixels, so
    that vignetting and gradients do not count as noise. Statistics use a regular subsample
    of about 65,000 pixels (or pixel pairs).

    Parameters
    ----------
    image : array_like
        2-D image ``(Y, X)``; any real dtype. Only finite pixels count.

    Returns
    -------
    Background
        ``mode``, ``median``, ``mad``, ``noise`` and ``signal`` in raw units (ADU), and the
        derived ``spread`` and ``snr``; all NaN when no pixel is finite.

    Notes
    -----
    Integer samples are counted (``np.bincount``) instead of sorted, and every median,
    MAD and percentile is read off the counts by bisection: the values are those of
    ``np.median`` and ``np.percentile`` on the sorted sample.

    In images whose objects cover the whole field (confluent cells), the mode lies on the
    objects and the "background" is the cell layer. Where many pixels are clipped at the
    minimum (see :func:`percent_at_min`), the background is the clipped level. At less than
    about one photon per pixel the background is a few discrete levels and the noise
    estimate measures only the read noise.

    References
    ----------
    .. [1] Rousseeuw, P. J., Croux, C. (1993). Alternatives to the median absolute deviation.
       J Am Stat Assoc 88(424), 1273-1283. :doi:`10.1080/01621459.1993.10476408`
    .. [2] Immerkær, J. (1996). Fast noise variance estimation. Comput Vis Image Underst
       64(2), 300-302. :doi:`10.1006/cviu.1996.0060` (noise from differences of
       neighbouring pixels, which cancel smooth structure)
    """
    return _background(prepare(image, name="image"))


def signal_to_noise(image: Any) -> float:
    """Signal-to-noise ratio: ``(p99 - background median) / pixel noise of the background``.

    Parameters
    ----------
    image : array_like
        2-D image ``(Y, X)``; any real dtype.

    Returns
    -------
    float
        Dimensionless ratio (an empty field scores a few units, a good fluorescence image
        tens to hundreds). 0 for a constant integer image; NaN for a float image with a
        noise-free background or with no finite pixel.

    See Also
    --------
    background : how the background median and noise are estimated.
    """
    return _background(prepare(image, name="image")).snr


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
