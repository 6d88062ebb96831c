"""Focus (blur) metrics of one 2-D plane, and the best-focus plane of a z-stack.

All four metrics are larger for sharper images. The power-spectrum slope is dimensionless and
nearly independent of brightness and content; the other three are in units of the intensity
"full scale" (the detector's maximum: ``2**significant_bits - 1``, the integer dtype maximum,
or 1 for float images), so they are comparable across images of one channel and acquisition
setting, not across channels.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import InvalidInput
from ._common import FloatArray, Plane, prepare

__all__ = [
    "FOCUS_METRICS",
    "PLLS_MAX_SIZE",
    "focus_laplacian_var",
    "focus_local",
    "focus_normvar",
    "focus_plls",
    "plane_focus",
    "stack_metrics",
]

#: The power spectrum is computed on a central crop of at most this many pixels per side.
PLLS_MAX_SIZE = 1024
_NOISE_FREQ = 0.35  # cycles/px above which the power spectrum measures the white-noise floor
#: Tile size (px) of the local focus score, CellProfiler's default.
LOCAL_WINDOW = 20
#: Gaussian pre-smoothing (px) of the Laplacian focus measure.
LAPLACIAN_SIGMA = 1.0
_BLOCK = 1 << 20  # elements per chunk in the chunked variance
_BAND = 1 << 17  # pixels per band of the banded Laplacian (fits in the CPU cache)


def _mean_var(x: FloatArray) -> tuple[float, float]:
    """Mean and (population) variance in float64, in chunks (no full-size float64 copy)."""
    flat = x.reshape(-1)
    n = flat.size
    mean = float(np.sum(flat, dtype=np.float64)) / n
    acc = 0.0
    for start in range(0, n, _BLOCK):
        d = flat[start : start + _BLOCK].astype(np.float64)
        d -= mean
        acc += float(np.dot(d, d))
    return mean, acc / n


# ---------------------------------------------------------------- power-spectrum slope (PLLS)


@lru_cache(maxsize=8)
def _spectrum_layout(ny: int, nx: int) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float64], int]:
    """Bin of every ``rfft2`` coefficient, coefficients per bin, and the number of annuli.

    The radius is the spatial frequency in units of ``1 / min(ny, nx)`` cycles/px (isotropic
    for non-square images); annulus ``k`` holds radii in ``[k - 1, k)``, as in CellProfiler.
    Annuli ``2 .. kmax - 1`` (``kmax = min(ny, nx) // 8``: up to 1/8 cycle/px) are fitted;
    bin ``kmax + 1`` collects the frequencies above 0.35 cycle/px that measure the noise floor;
    bin ``kmax`` the rest. Counts include the mirrored half of the plane that ``rfft2`` omits.
    """
    n = min(ny, nx)
    kmax = n // 8
    fy = np.fft.fftfreq(ny)[:, None]
    fx = np.fft.rfftfreq(nx)[None, :]
    freq = np.hypot(fy, fx)
    label = np.floor(freq * n).astype(np.intp) + 1
    label[(label >= kmax) | (label < 2)] = kmax
    label[freq > _NOISE_FREQ] = kmax + 1
    weight = np.ones((1, fx.size))
    weight[0, 1 : (nx + 1) // 2] = 2.0  # columns whose mirror image rfft2 leaves out
    counts = np.bincount(
        label.ravel(), weights=np.broadcast_to(weight, label.shape).ravel(), minlength=kmax + 2
    )
    return label.ravel(), np.asarray(counts, dtype=np.float64), kmax


@lru_cache(maxsize=8)
def _hann(length: int) -> npt.NDArray[np.float32]:
    return np.hanning(length).astype(np.float32) if length > 2 else np.ones(length, np.float32)


def _plls(p: Plane, max_size: int = PLLS_MAX_SIZE) -> float:
    if p.all_nonfinite:
        return math.nan
    from scipy import fft

    ny, nx = p.work.shape
    cy, cx = min(ny, max_size), min(nx, max_size)
    y0, x0 = (ny - cy) // 2, (nx - cx) // 2
    crop = p.work[y0 : y0 + cy, x0 : x0 + cx]
    labels, counts, kmax = _spectrum_layout(cy, cx)
    if kmax - 2 < 2:  # fewer than two annuli: no slope (image shorter than 32 px)
        return math.nan
    centred = crop.astype(np.float32)
    centred -= np.float32(np.mean(crop, dtype=np.float64))
    centred *= _hann(cy)[:, None]
    centred *= _hann(cx)[None, :]
    spectrum = fft.rfft2(centred)
    power = spectrum.real**2 + spectrum.imag**2
    power[:, 1 : (cx + 1) // 2] *= 2.0
    sums = np.bincount(labels, weights=power.ravel(), minlength=kmax + 2)
    floor = sums[kmax + 1] / counts[kmax + 1] if counts[kmax + 1] > 0 else 0.0
    signal = sums[2:kmax] - floor * counts[2:kmax]
    radii = np.arange(2, kmax, dtype=np.float64)
    keep = signal > 0
    if np.count_nonzero(keep) < 2:  # constant image, or no annulus above the noise floor
        return math.nan
    x = np.log(radii[keep])
    y = np.log(signal[keep])
    x -= x.mean()
    return float(np.dot(x, y - y.mean()) / np.dot(x, x))


def focus_plls(image: Any, *, max_size: int = PLLS_MAX_SIZE) -> float:
    """Power-spectrum log-log slope (PLLS) of a 2-D image: higher (less negative) is sharper.

    The image (minus its mean, times a 2-D Hann window) is Fourier transformed; the power is
    summed over annuli of spatial frequency ``k / N`` cycles/px, ``k = 2 .. N/8 - 1``
    (``N`` = the shorter side); the white-noise floor, measured as the mean power above
    0.35 cycle/px, is subtracted from each annulus; and the slope of ``log(power)`` against
    ``log(k)`` is fitted by least squares over the annuli left above the floor. Defocus
    removes high frequencies, so the spectrum falls faster and the slope is more negative.

    Parameters
    ----------
    image : array_like
        2-D image ``(Y, X)``; any real dtype. Non-finite pixels are replaced by the median.
    max_size : int
        Images larger than this (px per side) are measured on a central crop of
        ``max_size x max_size`` px, which bounds the cost for large images and measures the
        same band of frequencies (up to 1/8 cycle/px).

    Returns
    -------
    float
        Slope, dimensionless (log power per log frequency): about -1.5 to -2.5 for sharp
        widefield images, below -3 for defocused ones. NaN for a constant image, an image
        whose shorter side is below 32 px, no annulus above the noise floor (pure noise), or
        no finite pixel.

    Notes
    -----
    This follows Bray et al. (2012) and CellProfiler's MeasureImageQuality
    (``PowerLogLogSlope``: annulus *sums*, annuli 2 .. N/8) with two deliberate changes.
    Without a window the image borders leak power at every frequency (a ``k**-1`` floor in
    the annulus sums), and without the noise floor the camera noise flattens the spectrum of
    a blurred image; both make CellProfiler's slope stop falling, or rise again, beyond a
    few px of defocus (on synthetic focus series, blur 0-8 px, it was not monotonic in 26 of
    48 series; with both changes 1 of 48, a 128 px image at 3x the noise). Values are
    therefore more negative than CellProfiler's for blurred images and not interchangeable
    with them.

    References
    ----------
    .. [1] Bray, M.-A., Fraser, A. N., Hasaka, T. P., Carpenter, A. E. (2012). Workflow and
       metrics for image quality control in large-scale high-content screens. J Biomol
       Screen 17(2), 266-274. :doi:`10.1177/1087057111420292`
    """
    if isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 32:
        raise InvalidInput(f"max_size: expected an integer >= 32 (px), got {max_size!r}")
    return _plls(prepare(image, name="image"), max_size)


# ---------------------------------------------------------------- normalized variance


def _normvar(p: Plane) -> float:
    if p.all_nonfinite:
        return math.nan
    mean, var = _mean_var(p.work)
    if not mean > 0:
        return math.nan
    return p.to_full_scale(var / mean)


def focus_normvar(image: Any, *, significant_bits: int | None = None) -> float:
    """Normalized-variance focus score (CellProfiler's ``FocusScore``): higher is sharper.

    ``FocusScore = var(I) / mean(I)`` with ``I`` the intensity as a fraction of the full
    scale (Groen et al. 1985; ranked best of 18 autofocus functions by Sun et al. 2004).

    Parameters
    ----------
    image : array_like
        2-D image ``(Y, X)``; any real dtype.
    significant_bits : int, optional
        Bits used by the detector; the full scale is then ``2**significant_bits - 1``
        instead of the integer dtype maximum (1 for floats).

    Returns
    -------
    float
        Score in units of the full scale (scales linearly with brightness and with the amount
        of content, so compare images of one channel and setting). 0 for a constant image;
        NaN when the mean is not positive or no pixel is finite.

    Notes
    -----
    A focus measure *within one field* (picking the best plane of a z-stack, as
    :func:`stack_metrics` does by default), not across fields: it follows the amount of
    content as much as the focus. On the real test images (BBBC006, BBBC039) the most
    content-rich out-of-focus field scores above the sparsest in-focus ones, so it is not
    used for dataset-level focus outliers (``METRICS["focus_normvar"].cross_field`` is
    False); use :func:`focus_plls`, :func:`focus_laplacian_var` or :func:`focus_local` to
    compare fields.

    References
    ----------
    .. [1] CellProfiler MeasureImageQuality, "FocusScore".
       https://cellprofiler-manual.s3.amazonaws.com/CellProfiler-4.2.6/modules/measurement.html#measureimagequality
    .. [2] Sun, Y., Duthaler, S., Nelson, B. J. (2004). Autofocusing in computer microscopy:
       selecting the optimal focus algorithm. Microsc Res Tech 65(3), 139-149.
       :doi:`10.1002/jemt.20118`
    """
    return _normvar(prepare(image, significant_bits=significant_bits, name="image"))


# ---------------------------------------------------------------- local focus score


def _tile_starts(length: int, window: int) -> npt.NDArray[np.intp]:
    """Start of each of ``ceil(length / window)`` near-equal tiles (CellProfiler's grid)."""
    m = -(-length // window)
    k = np.arange(m, dtype=np.int64)
    return ((k * length + m - 1) // m).astype(np.intp)


def _local(p: Plane, window: int = LOCAL_WINDOW) -> float:
    if p.all_nonfinite:
        return math.nan
    w = p.work
    rows = _tile_starts(w.shape[0], window)
    cols = _tile_starts(w.shape[1], window)
    rsize = np.diff(np.append(rows, w.shape[0]))
    csize = np.diff(np.append(cols, w.shape[1]))
    count = np.outer(rsize, csize).astype(np.float64)
    sums = np.empty(count.shape)
    squares = np.empty(count.shape)
    # Bands of whole tile rows, about _BLOCK pixels each: float64 sums of x and x**2 per tile
    # (exact enough in float64; the values are in [-1, 1]) without full-size temporaries.
    per_band = max(1, _BLOCK // max(1, window * w.shape[1]))
    for first in range(0, rows.size, per_band):
        last = min(rows.size, first + per_band)
        top = int(rows[first])
        bottom = int(rows[last]) if last < rows.size else w.shape[0]
        band = w[top:bottom].astype(np.float64)
        starts = rows[first:last] - top
        sums[first:last] = np.add.reduceat(np.add.reduceat(band, starts, axis=0), cols, axis=1)
        band *= band
        squares[first:last] = np.add.reduceat(np.add.reduceat(band, starts, axis=0), cols, axis=1)
    means = sums / count
    positive = means > 0
    if not np.any(positive):
        return math.nan
    variance = np.maximum(squares[positive] / count[positive] - means[positive] ** 2, 0.0)
    local = variance / means[positive]
    median = float(np.median(local))
    if not median > 0:  # most tiles flat: the score is undefined
        return math.nan
    return p.to_full_scale(float(np.var(local)) / median)


def focus_local(
    image: Any, *, window: int = LOCAL_WINDOW, significant_bits: int | None = None
) -> float:
    """Local focus score (CellProfiler's ``LocalFocusScore``): higher is sharper.

    The image is divided into a grid of near-equal tiles of about ``window x window`` px.
    For each tile with a positive mean, the normalized variance ``var / mean`` is computed;
    the score is the variance of these values divided by their median. It measures how
    unevenly sharp structure is spread over the field, which makes it less sensitive than
    :func:`focus_normvar` to the overall amount of content.

    Parameters
    ----------
    image : array_like
        2-D image ``(Y, X)``; any real dtype.
    window : int
        Tile size in px (CellProfiler's default 20; about twice the object diameter).
    significant_bits : int, optional
        Bits used by the detector (sets the full scale, see :func:`focus_normvar`).

    Returns
    -------
    float
        Score in units of the full scale. NaN when no tile has a positive mean, when most
        tiles are perfectly flat (median tile variance 0, e.g. a constant image), or when no
        pixel is finite.

    References
    ----------
    .. [1] CellProfiler MeasureImageQuality, "LocalFocusScore".
       https://cellprofiler-manual.s3.amazonaws.com/CellProfiler-4.2.6/modules/measurement.html#measureimagequality
    .. [2] Bray, M.-A. et al. (2012). J Biomol Screen 17(2), 266-274.
       :doi:`10.1177/1087057111420292`
    """
    if isinstance(window, bool) or not isinstance(window, int) or window < 2:
        raise InvalidInput(f"window: expected an integer tile size >= 2 (px), got {window!r}")
    return _local(prepare(image, significant_bits=significant_bits, name="image"), window)


# ---------------------------------------------------------------- variance of the Laplacian


@lru_cache(maxsize=8)
def _gaussian_kernel(sigma: float) -> npt.NDArray[np.float32]:
    """The 1-D kernel of ``scipy.ndimage.gaussian_filter`` (truncated at 4 sigma)."""
    radius = int(4.0 * sigma + 0.5)
    k = np.arange(-radius, radius + 1, dtype=np.float64)
    weights = np.exp(-0.5 * (k / sigma) ** 2)
    return (weights / weights.sum()).astype(np.float32)


_SECOND_DIFF = np.array([1.0, -2.0, 1.0], dtype=np.float32)


def _rows(w: FloatArray, lo: int, hi: int) -> FloatArray:
    """Rows ``lo .. hi - 1`` of ``w``, reflected (half-sample) beyond the edges."""
    ny = w.shape[0]
    if lo >= 0 and hi <= ny:
        return w[lo:hi]
    index = np.mod(np.arange(lo, hi), 2 * ny)
    return w[np.where(index >= ny, 2 * ny - 1 - index, index)]


def _laplacian_var(p: Plane, sigma: float = LAPLACIAN_SIGMA) -> float:
    if p.all_nonfinite:
        return math.nan
    from scipy import ndimage

    w = p.work
    ny, nx = w.shape
    kernel = _gaussian_kernel(sigma) if sigma > 0 else None
    halo = (kernel.size // 2 if kernel is not None else 0) + 1
    step = max(16, _BAND // max(1, nx))
    total = 0.0
    total_sq = 0.0
    # Bands of rows with a halo: the vertical passes are sums of shifted rows (ndimage is
    # slow across the rows of wide images), the horizontal ones ndimage.correlate1d. Equal
    # to ndimage.laplace(ndimage.gaussian_filter(w, sigma)) with mode="reflect".
    for top in range(0, ny, step):
        bottom = min(ny, top + step)
        band = _rows(w, top - halo, bottom + halo)
        m = bottom - top + 2
        if kernel is not None:
            smooth = kernel[0] * band[0:m]
            for k in range(1, kernel.size):
                smooth += kernel[k] * band[k : k + m]
            smooth = ndimage.correlate1d(smooth, kernel, axis=1, mode="reflect")
        else:
            smooth = band
        lap = ndimage.correlate1d(smooth[1:-1], _SECOND_DIFF, axis=1, mode="reflect")
        lap += smooth[0:-2]
        lap += smooth[2:]
        lap -= 2.0 * smooth[1:-1]
        flat = lap.astype(np.float64).ravel()
        total += float(flat.sum())
        total_sq += float(np.dot(flat, flat))
    n = float(w.size)
    var = max(total_sq / n - (total / n) ** 2, 0.0)
    return p.to_full_scale(var, power=2)


def focus_laplacian_var(
    image: Any, *, sigma: float = LAPLACIAN_SIGMA, significant_bits: int | None = None
) -> float:
    """Variance of the Laplacian of the Gaussian-smoothed image: higher is sharper.

    The image (as a fraction of the full scale) is smoothed by a Gaussian of ``sigma`` px,
    filtered with the 3 x 3 Laplacian kernel ``[[0, 1, 0], [1, -4, 1], [0, 1, 0]]`` (borders
    reflected), and the variance of the result is returned.

    Parameters
    ----------
    image : array_like
        2-D image ``(Y, X)``; any real dtype.
    sigma : float
        Gaussian pre-smoothing in px (default 1). ``sigma=0`` gives the plain variance of
        the Laplacian of Pech-Pacheco et al. (2000).
    significant_bits : int, optional
        Bits used by the detector (sets the full scale, see :func:`focus_normvar`).

    Returns
    -------
    float
        Variance in (full scale / px²)². 0 for a constant image; NaN when no pixel is finite.

    Notes
    -----
    The plain 3 x 3 Laplacian (``sigma=0``) responds mostly to pixel noise in widefield
    fluorescence images: on the real BBBC006 / BBBC039 images in the test data it does *not*
    rank the out-of-focus fields below the in-focus ones (its values overlap), so it is not
    used as a focus metric. Smoothing by 1 px first removes the noise and keeps the cell-scale
    detail that defocus destroys; with it, every out-of-focus field scores at least 4x below
    every in-focus one.

    References
    ----------
    .. [1] Pech-Pacheco, J. L., Cristóbal, G., Chamorro-Martínez, J., Fernández-Valdivia, J.
       (2000). Diatom autofocusing in brightfield microscopy: a comparative study. Proc. 15th
       ICPR, vol. 3, 314-317. :doi:`10.1109/ICPR.2000.903548`
    """
    try:
        s = float(sigma)
    except (TypeError, ValueError):
        raise InvalidInput(f"sigma: expected a number of px >= 0, got {sigma!r}") from None
    if not (math.isfinite(s) and s >= 0):
        raise InvalidInput(f"sigma: expected a number of px >= 0, got {sigma!r}")
    return _laplacian_var(prepare(image, significant_bits=significant_bits, name="image"), s)


# ---------------------------------------------------------------- z-stacks

FOCUS_METRICS: dict[str, Any] = {
    "focus_plls": _plls,
    "focus_normvar": _normvar,
    "focus_local": _local,
    "focus_laplacian_var": _laplacian_var,
}


def plane_focus(p: Plane) -> dict[str, float]:
    """All focus metrics of a prepared plane."""
    return {name: float(fn(p)) for name, fn in FOCUS_METRICS.items()}


def stack_metrics(
    stack: Any,
    *,
    metric: str = "focus_normvar",
    significant_bits: int | None = None,
) -> tuple[int, npt.NDArray[np.float64]]:
    """Best-focus plane of a z-stack and the focus of every plane.

    Parameters
    ----------
    stack : array_like
        3-D stack ``(Z, Y, X)`` of one channel (a 2-D plane is treated as one plane).
    metric : str
        Focus metric used: ``"focus_normvar"`` (default; the best-ranked autofocus function of
        Sun et al. 2004), ``"focus_laplacian_var"``, ``"focus_local"`` or ``"focus_plls"``.
    significant_bits : int, optional
        Bits used by the detector (see :func:`focus_normvar`).

    Returns
    -------
    best : int
        Index of the plane with the highest focus; -1 if no plane has a defined focus value.
    per_plane : numpy.ndarray
        Focus value of each plane (float64, length ``Z``; NaN where undefined).

    Raises
    ------
    quantscope.errors.InvalidInput
        If the stack is not 2-D or 3-D, is empty, or ``metric`` is unknown.

    References
    ----------
    .. [1] Sun, Y., Duthaler, S., Nelson, B. J. (2004). Microsc Res Tech 65(3), 139-149.
       :doi:`10.1002/jemt.20118`
    """
    fn = FOCUS_METRICS.get(metric)
    if fn is None:
        raise InvalidInput(
            f"metric: unknown focus metric {metric!r}; expected one of {', '.join(FOCUS_METRICS)}"
        )
    arr = np.asarray(stack)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[0] == 0:
        raise InvalidInput(
            f"stack: expected a 3-D z-stack (Z, Y, X) of one channel, got shape {arr.shape}"
        )
    per_plane = np.array(
        [
            fn(prepare(arr[z], significant_bits=significant_bits, name=f"stack[{z}]"))
            for z in range(arr.shape[0])
        ],
        dtype=np.float64,
    )
    finite = np.isfinite(per_plane)
    if not finite.any():
        return -1, per_plane
    best = int(np.argmax(np.where(finite, per_plane, -np.inf)))
    return best, per_plane
