"""Power-spectrum log-log slope (PLLS) of a prepared plane: the computation behind
:func:`quantscope.quality.focus_plls`.

Holds the per-shape tables of the spectrum's bin layout and plan (:func:`_spectrum_layout`,
:func:`_spectrum_plan`: annuli, noise-floor weights, Hann window, fit abscissae; functions of
the crop shape only), the fast crop size, and :func:`_plls` itself, whose two FFT stages are
the public single-threaded ``scipy.fft`` functions. The public function, its documentation
and the QC wrapper live in ``_focus``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from ._common import Plane
from ._kernels import BLAS_MAX_WORK, row_squares, scratch

#: The power spectrum is computed on a central crop of at most this many pixels per side.
PLLS_MAX_SIZE = 1024
#: On a 2 x 2-binned plane the slope is fitted up to N'/4 (N' its shorter side): the band of
#: the unbinned definition (N/8, N = 2 N').
BINNED_PLLS_BAND = 4
_NOISE_FREQ = 0.35  # cycles/px above which the power spectrum measures the white-noise floor


@lru_cache(maxsize=8)
def _spectrum_layout(
    ny: int, nx: int, band: int = 8
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float64], int]:
    """Bin of every ``rfft2`` coefficient, coefficients per bin, and the number of annuli.

    The radius is the spatial frequency in units of ``1 / min(ny, nx)`` cycles/px (isotropic
    for non-square images); annulus ``k`` holds radii in ``[k - 1, k)``, as in CellProfiler.
    Annuli ``2 .. kmax - 1`` (``kmax = min(ny, nx) // 8``: up to 1/8 cycle/px) are fitted;
    bin ``kmax + 1`` collects the frequencies above 0.35 cycle/px that measure the noise floor;
    bin ``kmax`` the rest. Counts include the mirrored half of the plane that ``rfft2`` omits.
    """
    n = min(ny, nx)
    kmax = n // band
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


@dataclass(frozen=True)
class _SpectrumPlan:
    """How the power spectrum of an ``ny x nx`` crop is binned (cached per shape).

    The transform is done in two stages (``rfft`` along x, then ``fft`` along y), the second
    only for the ``low`` columns with a frequency up to 0.35 cycle/px: every coefficient of
    the other columns is in the noise-floor bin, and their power sum is that of the first
    stage's output times ``ny`` (Parseval). The fitted annuli lie in the first ``cols``
    columns of the rows ``rows`` (the low frequencies: two narrow bands at the top and bottom
    of the ``rfft2`` layout) and are binned one by one, in the same order as a bincount over
    the whole spectrum; the noise floor is a weighted sum of squares (``noise``, per real
    and imaginary part of the low columns: 0 outside the noise floor, else 1 or 2, the
    number of coefficients of the full spectrum each one stands for); every other column
    counts twice but the last one, when ``nyquist`` (even widths). ``ones`` (float32, one
    per column) sums the rows of a crop; ``log_radii`` are the centred logarithms of the
    fitted annuli's radii and ``log_radii_sq`` their sum of squares (the abscissae of the fit
    when every annulus is above the noise floor, as computed for each fit otherwise).
    """

    kmax: int
    counts: npt.NDArray[np.float64]
    rows: npt.NDArray[np.intp]
    cols: int
    fit_labels: npt.NDArray[np.intp]
    fit_weights: npt.NDArray[np.float32]
    low: int
    noise: npt.NDArray[np.float32]
    nyquist: bool
    window: npt.NDArray[np.float32]
    ones: npt.NDArray[np.float32]
    log_radii: npt.NDArray[np.float64]
    log_radii_sq: float


@lru_cache(maxsize=4)
def _spectrum_plan(ny: int, nx: int, band: int = 8) -> _SpectrumPlan:
    labels, counts, kmax = _spectrum_layout(ny, nx, band)
    ncol = nx // 2 + 1
    label = labels.reshape(ny, ncol)
    weight = np.ones(ncol, np.float32)
    weight[1 : (nx + 1) // 2] = 2.0  # columns whose mirror image rfft2 leaves out
    fitted = (label >= 2) & (label < kmax)
    rows = np.flatnonzero(fitted.any(axis=1))
    used = np.flatnonzero(fitted.any(axis=0))
    cols = int(used[-1]) + 1 if used.size else 0
    sub = label[rows, :cols]
    fit_labels = np.where((sub >= 2) & (sub < kmax), sub, kmax).ravel()
    low = int(np.count_nonzero(np.fft.rfftfreq(nx) <= _NOISE_FREQ))
    noise = np.where(label[:, :low] == kmax + 1, weight[:low], 0.0).astype(np.float32)
    hann = np.hanning(ny) if ny > 2 else np.ones(ny)
    hann_x = np.hanning(nx) if nx > 2 else np.ones(nx)
    log_radii = np.log(np.arange(2, kmax, dtype=np.float64))
    if log_radii.size:
        log_radii -= log_radii.mean()  # as in _plls: the same operations, the same values
    plan = _SpectrumPlan(
        kmax=kmax,
        counts=counts,
        rows=rows,
        cols=cols,
        fit_labels=fit_labels,
        fit_weights=np.broadcast_to(weight[:cols], (rows.size, cols)).copy(),
        low=low,
        noise=np.repeat(noise, 2, axis=1),  # per real and imaginary part
        nyquist=nx % 2 == 0 and low < ncol,
        window=np.outer(hann.astype(np.float32), hann_x.astype(np.float32)),
        ones=np.ones(nx, np.float32),
        log_radii=log_radii,
        log_radii_sq=float(np.dot(log_radii, log_radii)),
    )
    for array in (
        plan.rows,
        plan.fit_labels,
        plan.fit_weights,
        plan.noise,
        plan.window,
        plan.ones,
        plan.log_radii,
    ):
        array.setflags(write=False)  # shared by every caller (cached)
    return plan


def _weighted_squares(parts: npt.NDArray[np.float32], weights: npt.NDArray[np.float32]) -> float:
    """``sum(weights * parts**2)`` in float32 products, row sums added in float64."""
    if parts.size == 0:
        return 0.0
    weighted = scratch("plls_weighted", parts.shape, np.float32)
    np.multiply(parts, weights, out=weighted)
    return float(np.vecdot(parts, weighted).sum(dtype=np.float64))  # rows < 8192


@lru_cache(maxsize=64)
def _fast_size(n: int) -> int:
    """The largest size ``<= n`` whose prime factors are 2, 3 and 5 (a fast FFT length)."""
    best = 1
    p2 = 1
    while p2 <= n:
        p3 = p2
        while p3 <= n:
            p5 = p3
            while p5 <= n:
                best = max(best, p5)
                p5 *= 5
            p3 *= 3
        p2 *= 2
    return best


def _plls(
    p: Plane,
    max_size: int = PLLS_MAX_SIZE,
    band: int = 8,
    fast_crop: bool = False,
    mean: float | None = None,
) -> float:
    """The power-spectrum slope of ``p`` (``mean``: the plane's mean in working units, when
    the caller knows it; used where the crop is the whole plane)."""
    if p.all_nonfinite:
        return math.nan
    ny, nx = p.raw.shape
    cy, cx = min(ny, max_size), min(nx, max_size)
    if fast_crop:
        cy, cx = _fast_size(cy), _fast_size(cx)
    y0, x0 = (ny - cy) // 2, (nx - cx) // 2
    plan = _spectrum_plan(cy, cx, band)
    kmax = plan.kmax
    if kmax - 2 < 2:  # fewer than two annuli: no slope (image shorter than 32 px)
        return math.nan
    # Integers of up to 16 bits are read directly, in raw units (the slope does not depend
    # on the scale).
    source = p.raw if p.small_ints else p.work
    units = p.exponent if p.small_ints else 0
    crop = source[y0 : y0 + cy, x0 : x0 + cx]
    if (cy, cx) == (ny, nx) and mean is not None:
        mean = math.ldexp(mean, units)  # the plane's, already known
    elif crop.dtype == np.float32 and crop.size <= BLAS_MAX_WORK:
        # row sums as one float32 matrix-vector product (BLAS, on this thread), added in
        # float64: the mean to float32 precision, which is all the centring needs
        mean = float((crop @ plan.ones).sum(dtype=np.float64)) / crop.size
    else:
        mean = float(np.mean(crop, dtype=np.float64))
    centred = scratch("plls_centred", (cy, cx), np.float32)
    if crop.dtype.itemsize <= 4:
        np.subtract(crop, np.float32(mean), out=centred, dtype=np.float32)
    else:
        np.copyto(centred, crop, casting="same_kind")
        centred -= np.float32(mean)
    centred *= plan.window
    # the second stage only on the low columns of the first
    from scipy import fft

    rows_ft = fft.rfft(centred, axis=1, workers=1)
    spectrum = fft.fft(rows_ft[:, : plan.low], axis=0, workers=1)
    # The fitted annuli: the same float32 powers, summed in the same order, as a bincount
    # over the whole spectrum.
    fit = scratch("plls_fit", (plan.rows.size, plan.cols), np.complex64)
    np.take(spectrum[:, : plan.cols], plan.rows, axis=0, out=fit)
    power = scratch("plls_power", fit.shape, np.float32)
    np.multiply(fit.real, fit.real, out=power)
    imag = scratch("plls_imag", fit.shape, np.float32)
    np.multiply(fit.imag, fit.imag, out=imag)
    power += imag
    # times the weight (1 or 2: exact) in bincount's own weight type, float64: the float32
    # product's value, converted
    weights = scratch("plls_weights", fit.shape, np.float64)
    np.multiply(power, plan.fit_weights, out=weights, dtype=np.float64)
    sums = np.bincount(plan.fit_labels, weights=weights.ravel(), minlength=kmax + 2)
    noise = _weighted_squares(spectrum.view(np.float32), plan.noise)
    high = rows_ft[:, plan.low :].view(np.float32)  # Parseval: times cy, once per column
    high_sq = 2.0 * row_squares(high)
    if plan.nyquist:
        high_sq -= float(np.vdot(high[:, -2:], high[:, -2:]))
    noise += cy * high_sq
    counts = plan.counts
    floor = noise / counts[kmax + 1] if counts[kmax + 1] > 0 else 0.0
    signal = sums[2:kmax] - floor * counts[2:kmax]
    keep = signal > 0
    if keep.all() and keep.size >= 2:  # every annulus above the floor: cached abscissae
        y = np.log(signal)
        return float(np.dot(plan.log_radii, y - y.mean()) / plan.log_radii_sq)
    if np.count_nonzero(keep) < 2:  # constant image, or no annulus above the noise floor
        return math.nan
    x = np.log(np.arange(2, kmax, dtype=np.float64)[keep])
    y = np.log(signal[keep])
    x -= x.mean()
    return float(np.dot(x, y - y.mean()) / np.dot(x, x))
