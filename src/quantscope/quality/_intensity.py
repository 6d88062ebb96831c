"""Saturation, intensity, background, noise and content (empty-field) metrics of one plane."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ._common import SAMPLE_TARGET, Plane, prepare, safe_ratio

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
#: Pixels brighter than the background median by this many noise sigmas are foreground.
FOREGROUND_SIGMAS = 5.0
#: A field whose foreground covers less than this percentage of the pixels is empty.
EMPTY_FOREGROUND_PCT = 0.05
#: Percentile of the image taken as "the signal" by the signal-to-noise ratio.
SIGNAL_PERCENTILE = 99.0
_CLIP_SIGMAS = 3.0
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
        background variation), at least the quantization noise ``1 / sqrt(12)`` ADU of
        integer images.
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

    @property
    def foreground_threshold(self) -> float:
        """Intensity above which a pixel is foreground: ``median + 5 * max(noise, spread)``."""
        return self.median + FOREGROUND_SIGMAS * max(self.noise, self.spread)


_NAN_BACKGROUND = Background(math.nan, math.nan, math.nan, math.nan, math.nan)


def _histogram_mode(s: npt.NDArray[np.float64], integer: bool) -> float:
    """Most common value of sorted samples: the peak of a lightly smoothed histogram.

    Bins span the 0.1-99.9th percentiles in about 512 steps (whole numbers of ADU for
    integer images, so that every bin holds the same number of integer levels).
    """
    n = s.size
    lo = s[int(0.001 * (n - 1))]
    hi = s[math.ceil(0.999 * (n - 1))]
    if not hi > lo:
        return float(lo)
    width = (hi - lo) / _MODE_BINS
    if integer:
        width = max(1.0, math.ceil(width))
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
    """Noise sigma (work units) from differences of adjacent pixels both at or below ``top``."""
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
    return MAD_TO_SIGMA * float(np.median(np.abs(diff - centre))) / math.sqrt(2.0)


def _background(p: Plane, sample: npt.NDArray[Any] | None = None) -> Background:
    if p.all_nonfinite:
        return _NAN_BACKGROUND
    if sample is None:
        sample = p.sample()
    if sample.size == 0:
        return _NAN_BACKGROUND
    integer = p.raw.dtype.kind in "ui"
    s = sample.astype(np.float64)
    mode = _histogram_mode(s, integer)
    below = s[: int(np.searchsorted(s, mode, side="right"))]
    sigma_left = MAD_TO_SIGMA * float(np.median(mode - below)) if below.size else 0.0
    top_value = mode + _CLIP_SIGMAS * sigma_left
    bg = s[: max(int(np.searchsorted(s, top_value, side="right")), 1)]
    median = float(np.median(bg))
    mad = float(np.median(np.abs(bg - median)))
    noise = p.to_units(_pixel_noise(p, math.ldexp(top_value, -p.exponent)))
    if not math.isfinite(noise):  # too few adjacent background pixels: use the spread
        noise = MAD_TO_SIGMA * mad
    if integer:
        noise = max(noise, 1.0 / math.sqrt(12.0))
    signal = float(np.percentile(s, SIGNAL_PERCENTILE))
    return Background(mode=mode, median=median, mad=mad, noise=noise, signal=signal)


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
        derived ``spread``, ``snr`` and ``foreground_threshold``; all NaN when no pixel is
        finite.

    Notes
    -----
    In images whose objects cover the whole field (confluent cells), the mode lies on the
    objects and the "background" is the cell layer. Where many pixels are clipped at the
    minimum (see :func:`percent_at_min`), the background is the clipped level. At less than
    about one photon per pixel the background is a few discrete levels and the noise
    estimate measures only the read noise.
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
        Dimensionless ratio (an empty field scores about 2-3, a good fluorescence image
        tens to hundreds). 0 for a constant integer image; NaN for a float image with a
        noise-free background or with no finite pixel.

    See Also
    --------
    background : how the background median and noise are estimated.
    """
    return _background(prepare(image, name="image")).snr


# ---------------------------------------------------------------- content


def _foreground_pct(p: Plane, bg: Background) -> float:
    if p.all_nonfinite or not math.isfinite(bg.foreground_threshold):
        return math.nan
    with np.errstate(invalid="ignore"):
        hits = np.count_nonzero(p.raw > bg.foreground_threshold)
    return 100.0 * hits / p.n_finite


def foreground_pct(image: Any) -> float:
    """Percent of pixels brighter than the background median by more than 5 sigmas.

    The sigma is the larger of the pixel noise and the spread of the background values
    (which includes vignetting and gradients), so that an empty but unevenly lit field has
    no foreground.

    Parameters
    ----------
    image : array_like
        2-D image ``(Y, X)``; any real dtype.

    Returns
    -------
    float
        Percent (0-100) of the finite pixels; NaN if no pixel is finite.

    See Also
    --------
    background : the background median and noise used for the threshold.
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
        Smallest foreground percentage of a field with content (default 0.05 %, about
        three small cells in a 2048 x 2048 px field).

    Returns
    -------
    bool
        True for a field with no (or almost no) pixel above background + 5 sigma, including
        constant (blank) images and images without a finite pixel.
    """
    pct = foreground_pct(image)
    return not pct >= min_foreground_pct
