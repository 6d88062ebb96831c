"""Background level, pixel noise and signal-to-noise ratio of one plane.

:func:`background` finds the background as the mode of the intensities, its median and MAD,
and the pixel-to-pixel noise from differences of adjacent background pixels (counted exactly
from the raw integers for images of up to 16 bits: :func:`_integer_diffs`, with the kernel
:func:`~._kernels.pair_difference_counts`); :func:`signal_to_noise` derives from it. The
order statistics come from :class:`._ranked._Ranked`. Nothing is kept on the plane: callers
that need the background twice keep the :class:`Background`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ._common import SAMPLE_TARGET, Plane, prepare, safe_ratio
from ._kernels import pair_difference_counts
from ._ranked import _Ranked

__all__ = ["MAD_TO_SIGMA", "SIGNAL_PERCENTILE", "Background", "background", "signal_to_noise"]

#: Gaussian sigma equivalent of the median absolute deviation.
MAD_TO_SIGMA = 1.482602218505602
#: Percentile of the image taken as "the signal" by the signal-to-noise ratio.
SIGNAL_PERCENTILE = 99.0
_CLIP_SIGMAS = 3.0
_MODE_BINS = 512


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
    counts = pair_difference_counts(left, right, lo, top_int, hi)
    return _ranked_diffs(counts, top_int - lo, p.exponent)


def _ranked_diffs(counts: npt.NDArray[np.int64], span: int, exponent: int) -> _Ranked:
    """The differences ``-span .. span`` (raw units; ``counts[k]`` of ``k - span``) that
    occur, ranked in working units (``2**-exponent`` per raw unit)."""
    present = np.flatnonzero(counts)
    values = np.ldexp((present - span).astype(np.float64), -exponent)
    return _Ranked(values, counts[present].astype(np.int64, copy=False), math.ldexp(1.0, -exponent))


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
    and ``np.percentile`` give on the sorted sample) found by bisection.
    """
    if p.all_nonfinite:
        return _NAN_BACKGROUND
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
    return Background(
        mode=p.to_units(mode),
        median=p.to_units(median),
        mad=p.to_units(mad),
        noise=p.to_units(noise),
        signal=p.to_units(signal),
    )


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
