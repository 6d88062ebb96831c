"""Saturation, intensity, background, noise and content (empty-field) metrics of one plane."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ._common import SAMPLE_TARGET, Plane, prepare, safe_ratio
from ._field import BackgroundField, background_field

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


# ---------------------------------------------------------------- saturation


def _pct_at_value(p: Plane, which: str) -> float:
    if p.all_nonfinite:
        return math.nan
    if p.raw.dtype.kind in "ui":
        data: npt.NDArray[Any] = p.raw
        lo, hi = data.min(), data.max()
        if lo == hi:
            return math.nan
        hits = np.count_nonzero(data == (hi if which == "max" else lo))
    else:
        work = p.work
        lo, hi = work.min(), work.max()
        if lo == hi:
            return math.nan
        at = work == (hi if which == "max" else lo)
        if p.finite is not None:
            at &= p.finite
        hits = np.count_nonzero(at)
    return 100.0 * hits / p.n_finite


def _pct_at_dtype_max(p: Plane) -> float:
    if p.all_nonfinite or p.saturation_level is None:
        return math.nan
    level = p.saturation_level
    if p.raw.dtype.kind in "ui":
        level_int = int(level)
        info = np.iinfo(p.raw.dtype)
        if level_int > info.max:
            return 0.0
        hits = np.count_nonzero(p.raw >= p.raw.dtype.type(level_int))
    else:
        with np.errstate(invalid="ignore"):
            hits = np.count_nonzero(p.raw >= level)
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


def _intensity_range(p: Plane) -> tuple[float, float, float]:
    if p.all_nonfinite:
        return math.nan, math.nan, math.nan
    lo = p.to_units(float(p.work.min()))
    hi = p.to_units(float(p.work.max()))
    mean = p.to_units(float(np.mean(p.work, dtype=np.float64)))
    if p.finite is not None:  # the working copy holds the median in place of non-finite pixels
        finite = p.raw[p.finite]
        lo, hi = float(finite.min()), float(finite.max())
        mean = p.to_units(float(np.mean(p.work[p.finite], dtype=np.float64)))
    return lo, hi, mean


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


def _histogram_mode(s: npt.NDArray[np.float64], unit: float) -> float:
    """Most common value of sorted samples: the peak of a lightly smoothed histogram.

    Bins span the 0.1-99.9th percentiles in about 512 steps (whole multiples of ``unit``,
    one ADU, for integer images, so that every bin holds the same number of integer
    levels; ``unit`` is 0 for float images).
    """
    n = s.size
    lo = float(s[int(0.001 * (n - 1))])
    hi = float(s[math.ceil(0.999 * (n - 1))])
    if not hi > lo:
        return lo
    width = (hi - lo) / _MODE_BINS
    if unit > 0:
        width = max(1.0, math.ceil(width / unit)) * unit
    inside = s[(s >= lo) & (s <= hi)]
    index = ((inside - lo) / width).astype(np.intp)
    counts = np.bincount(index).astype(np.float64)
    if counts.size >= 3:
        counts = np.convolve(counts, np.ones(3), mode="same")
    peak = int(np.argmax(counts))
    # Refine to the median of the samples in the peak bin and its neighbours.
    near = inside[(index >= peak - 1) & (index <= peak + 1)]
    return float(np.median(near))


def _pixel_noise(p: Plane, top: float) -> float:
    """Noise sigma (work units) from differences of adjacent pixels both at or below ``top``.

    ``1.4826 * MAD / sqrt(2)`` of the differences, or, where larger, their standard deviation
    within +-5 sigma (at least +-3 ADU for integer images) over ``sqrt(2)``: the MAD of
    integer differences is too coarse when the noise is about one ADU.
    """
    work = p.work if p.work.shape[1] >= 2 else p.work.T
    if work.shape[1] < 2:
        return math.nan
    step = max(1, math.ceil(math.sqrt(p.size / SAMPLE_TARGET)))
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


def _background(p: Plane, sample: npt.NDArray[np.float64] | None = None) -> Background:
    """Background statistics, computed in working units (no overflow) and returned in ADU."""
    if p.all_nonfinite:
        return _NAN_BACKGROUND
    s = p.sample() if sample is None else sample
    if s.size == 0:
        return _NAN_BACKGROUND
    integer = p.raw.dtype.kind in "ui"
    unit = math.ldexp(1.0, -p.exponent) if integer else 0.0  # one ADU in working units
    mode = _histogram_mode(s, unit)
    below = s[: int(np.searchsorted(s, mode, side="right"))]
    sigma_left = MAD_TO_SIGMA * float(np.median(mode - below)) if below.size else 0.0
    top_value = mode + _CLIP_SIGMAS * sigma_left
    bg = s[: max(int(np.searchsorted(s, top_value, side="right")), 1)]
    median = float(np.median(bg))
    mad = float(np.median(np.abs(bg - median)))
    noise = _pixel_noise(p, top_value)
    if not math.isfinite(noise):  # too few adjacent background pixels: use the spread
        noise = MAD_TO_SIGMA * mad
    if integer:
        noise = max(noise, unit / math.sqrt(12.0))
    signal = float(np.percentile(s, SIGNAL_PERCENTILE))
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
        bgf = background_field(p.work)
    if bgf is None:  # tiny image: one global threshold
        threshold = bg.median + FOREGROUND_SIGMAS * max(bg.noise, bg.spread)
        with np.errstate(invalid="ignore"):
            hits = np.count_nonzero(p.raw > threshold)
        return 100.0 * hits / p.n_finite
    # The 5th percentile of pure background is 1.645 sigma below its level.
    margin = (_P5_SIGMAS + FOREGROUND_SIGMAS) * math.ldexp(bg.noise, -p.exponent)
    above = bgf.sub > bgf.upsampled() + margin
    return 100.0 * np.count_nonzero(above) / above.size


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
