"""Focus (blur) metrics of one 2-D plane, and the best-focus plane of a z-stack.

All four metrics are larger for sharper images. The power-spectrum slope is dimensionless and
nearly independent of brightness and content; the other three are in units of the intensity
"full scale" (the detector's maximum: ``2**significant_bits - 1``, the integer dtype maximum,
or 1 for float images), so they are comparable across images of one channel and acquisition
setting, not across channels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import InvalidInput
from ._common import (
    BINNED_MIN_SIDE,
    BLAS_MAX_WORK,
    FloatArray,
    Plane,
    binned,
    prepare,
    row_squares,
    scratch,
)

__all__ = [
    "BINNED_FOCUS_METRICS",
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
#: On a 2 x 2-binned plane the slope is fitted up to N'/4 (N' its shorter side): the band of
#: the unbinned definition (N/8, N = 2 N').
BINNED_PLLS_BAND = 4
_NOISE_FREQ = 0.35  # cycles/px above which the power spectrum measures the white-noise floor
#: Tile size (px) of the local focus score, CellProfiler's default.
LOCAL_WINDOW = 20
#: Gaussian pre-smoothing (px) of the Laplacian focus measure.
LAPLACIAN_SIGMA = 1.0
_LAP_ROWS = 16  # output rows per matrix product of the Laplacian's vertical pass
_LAP_COLS = 16  # output columns per matrix product of its horizontal pass
_LAP_BAND = 1 << 20  # elements per band of rows (the band's arrays stay in the CPU cache)
_LAP_STRIPE = 1024  # columns per stripe of wide images (long bands of short rows)
_COUNT_IN_TILES = 1 << 22  # planes of at least this many pixels count extremes with the tiles
_TILE_BAND = 1 << 17  # elements of the float64 buffer of a band of tile rows (in the cache)


# ---------------------------------------------------------------- power-spectrum slope (PLLS)


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


def _fft_kernels() -> tuple[Any, Any] | None:
    """pocketfft's real-to-complex and complex-to-complex transforms as ``scipy.fft`` calls
    them (``scipy.fft._pocketfft.pypocketfft``), which also take an output array; None where
    this scipy has no such module (the public functions are used then)."""
    try:
        from scipy.fft._pocketfft import pypocketfft
    except ImportError:  # pragma: no cover - other scipy layouts
        return None
    r2c, c2c = getattr(pypocketfft, "r2c", None), getattr(pypocketfft, "c2c", None)
    return None if r2c is None or c2c is None else (r2c, c2c)


_KERNELS: list[tuple[Any, Any] | None] = []


def _kernel(which: int) -> Any:
    """pocketfft's ``r2c`` (0) or ``c2c`` (1), or None: the public functions are used."""
    if not _KERNELS:
        _KERNELS.append(_fft_kernels())
    kernels = _KERNELS[0]
    return None if kernels is None else kernels[which]


def _rfft_rows(x: npt.NDArray[np.float32], out: npt.NDArray[np.complex64]) -> Any:
    """``scipy.fft.rfft(x, axis=1, workers=1)``, written into ``out`` (a scratch buffer: no
    fresh output, whose pages fault in on every call) where scipy's pocketfft allows it."""
    kernel = _kernel(0)
    if kernel is not None:
        try:
            # the call scipy.fft.rfft makes (no normalization, one thread), plus the output
            return kernel(x, (1,), True, 0, out, 1)
        except TypeError:  # another signature: the public function from now on
            _KERNELS[0] = None
    from scipy import fft

    return fft.rfft(x, axis=1, workers=1)


def _fft_columns(x: npt.NDArray[np.complex64], out: npt.NDArray[np.complex64]) -> Any:
    """``scipy.fft.fft(x, axis=0, workers=1)`` of a (strided) complex array, into ``out``."""
    kernel = _kernel(1)
    if kernel is not None:
        try:
            return kernel(x, (0,), True, 0, out, 1)
        except TypeError:  # another signature: the public function from now on
            _KERNELS[0] = None
    from scipy import fft

    np.copyto(out, x)
    return fft.fft(out, axis=0, workers=1, overwrite_x=True)


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


def _plls(p: Plane, max_size: int = PLLS_MAX_SIZE, band: int = 8, fast_crop: bool = False) -> float:
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
    if (cy, cx) == (ny, nx) and "mean" in p.cache:
        mean = math.ldexp(float(p.cache["mean"]), units)  # the plane's, already known
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
    # both stages into scratch buffers (a fresh output costs page faults), the second one
    # read straight from the low columns of the first
    rows_ft = _rfft_rows(centred, scratch("plls_rows", (cy, cx // 2 + 1), np.complex64))
    low_cols = scratch("plls_low", (cy, plan.low), np.complex64)
    spectrum = _fft_columns(rows_ft[:, : plan.low], low_cols)
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


def focus_plls(image: Any, *, max_size: int = PLLS_MAX_SIZE, binned: bool = False) -> float:
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
    binned : bool
        Measure the 2 x 2-binned image (the mean of each 2 x 2 block) instead: the value
        :func:`channel_metrics` stores for planes of at least 128 px on each side (see
        Notes).

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

    The transform is single-threaded float32 ``scipy.fft``, along y only for the columns
    below 0.35 cycle/px (the power of the others, all in the noise floor, follows from
    Parseval's theorem), both stages written into per-thread scratch buffers (scipy's own
    pocketfft calls, which take an output array); the 2-D window (a float32 outer product),
    the bin layout, the weights and the fit's abscissae of each crop shape are cached; only
    the coefficients of the fitted annuli (the lowest 1/8 of the frequencies) are binned one
    by one, and the noise floor is a weighted sum of squares (float32 products, float64 row
    sums). Integer images of up to 16 bits are read directly. The slope equals a float64
    computation of the definition to about 1e-5 (the float32 transform's precision, as
    before).

    **Binned**: :func:`channel_metrics` (and ingest's QC) measures planes of at least 128 px
    on each side on their 2 x 2-binned version (the mean of each 2 x 2 block), a quarter of
    the pixels. The fitted annuli are the same spatial frequencies: ``k / N`` cycles per
    original px, ``k = 2 .. N/8`` (annuli ``2 .. N'/4`` of the binned plane, ``N' = N/2``);
    the noise floor is measured above 0.35 cycle per *binned* px (0.175 cycle/px of the
    original; 2 x 2 binning keeps white noise white). The 2 x 2 mean attenuates the highest
    fitted frequency by at most 15 %. The binned plane is measured on its central crop to the
    largest size per side whose prime factors are 2, 3 and 5 (a fast transform: 348 -> 324
    px for BBBC039's 520 x 696 fields). On the 60 real fields of the validation data the binned
    slope is within 0.25 of the unbinned one (rank correlation 0.993), and it ranks focus the
    same on every validation set (synthetic focus series and blurred-peer z-scores, BBBC006
    out-of-focus vs in-focus fields, BBBC039: tests/quality/test_qc_binned_focus.py).

    References
    ----------
    .. [1] Bray, M.-A., Fraser, A. N., Hasaka, T. P., Carpenter, A. E. (2012). Workflow and
       metrics for image quality control in large-scale high-content screens. J Biomol
       Screen 17(2), 266-274. :doi:`10.1177/1087057111420292`
    """
    if isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 32:
        raise InvalidInput(f"max_size: expected an integer >= 32 (px), got {max_size!r}")
    p = prepare(image, name="image")
    if binned:
        return _plls(_binned_or_nan(p), max_size, BINNED_PLLS_BAND, fast_crop=True)
    return _plls(p, max_size)


# ---------------------------------------------------------------- normalized variance


@dataclass(frozen=True)
class _Tiles:
    """Mean and variance of each tile of the local focus score and of the whole plane, in
    working units (shared by the local focus score and the normalized variance)."""

    count: npt.NDArray[np.float64]
    mean: npt.NDArray[np.float64]
    var: npt.NDArray[np.float64]
    plane_mean: float
    plane_var: float


@lru_cache(maxsize=16)
def _tile_grid(shape: tuple[int, int], window: int) -> tuple[list[tuple[int, int]], Any, Any]:
    """Row ranges of the tile rows, column starts and tile pixel counts (cached per shape:
    do not modify)."""
    ny, nx = shape
    rows = _tile_starts(ny, window)
    cols = _tile_starts(nx, window)
    ends = np.append(rows[1:], ny)
    count = np.outer(ends - rows, np.diff(np.append(cols, nx))).astype(np.float64)
    cols.setflags(write=False)
    count.setflags(write=False)
    return list(zip(rows.tolist(), ends.tolist(), strict=True)), cols, count


@lru_cache(maxsize=16)
def _tile_counts(shape: tuple[int, int], window: int) -> tuple[float, Any, Any]:
    """The largest tile pixel count, the counts as int64 and their squares (float64) of
    :func:`_tile_grid` (cached per shape: do not modify)."""
    count = _tile_grid(shape, window)[2]
    count_int = count.astype(np.int64)
    count_sq = count * count
    count_int.setflags(write=False)
    count_sq.setflags(write=False)
    return float(count.max()), count_int, count_sq


@lru_cache(maxsize=16)
def _tile_bands(ny: int, nx: int, window: int) -> tuple[_TileBand, ...]:
    """The tile rows of a plane in bands of whole tile rows (see :func:`_integer_tiles`)."""
    starts = _tile_starts(ny, window)
    ends = np.append(starts[1:], ny)
    tall = int((ends - starts).max())
    per_band = max(1, _TILE_BAND // (tall * nx))
    bands = []
    for t0 in range(0, starts.size, per_band):
        t1 = min(t0 + per_band, starts.size)
        heights = (ends[t0:t1] - starts[t0:t1]).tolist()
        dest = pad = None
        if min(heights) < tall:  # shorter tile rows: their rows spread, zero rows below
            dest = np.concatenate([i * tall + np.arange(h) for i, h in enumerate(heights)])
            pad = np.setdiff1d(np.arange((t1 - t0) * tall), dest)
            dest.setflags(write=False)
            pad.setflags(write=False)
        bands.append(_TileBand(t0, t1, int(starts[t0]), int(ends[t1 - 1]), tall, dest, pad))
    return tuple(bands)


@dataclass(frozen=True)
class _TileBand:
    """Tile rows ``t0 .. t1 - 1`` (plane rows ``r0 .. r1 - 1``) as a ``(t1 - t0, tall, X)``
    float64 buffer: plane row ``r0 + i`` goes to buffer row ``dest[i]`` (all in order when
    ``dest`` is None) and the rows ``pad`` stay zero."""

    t0: int
    t1: int
    r0: int
    r1: int
    tall: int
    dest: npt.NDArray[np.intp] | None
    pad: npt.NDArray[np.intp] | None


def _integer_tiles(p: Plane, window: int) -> _Tiles:
    """Exact tile statistics of integers of up to 16 bits: sums of the pixels and of their
    squares, whose variances ``(n * sum(x**2) - sum(x)**2) / n**2`` are computed in integers
    before one rounding.

    The column sums of each tile row are sums of integers in 32-bit integers where the
    largest possible sum of squares fits (float64 otherwise, exact too: every partial sum is
    an integer below 2**53), over a buffer that holds a band of whole tile rows as a
    ``(tile rows, height, X)`` array (tile rows shorter than the tallest padded with zero
    rows) so that one reduction serves all its tile rows; the column sums are then added in
    int64 per tile.
    """
    raw = p.raw
    ny, nx = raw.shape
    _, cols, count = _tile_grid((ny, nx), window)
    bands = _tile_bands(ny, nx, window)
    n_rows = bands[-1].t1
    tall = bands[0].tall
    # 32-bit integers where a column's sum of squares over the tallest tile row fits in
    # them (12-bit cameras, tiles up to 256 rows), float64 otherwise: exact either way.
    peak = max(abs(int(p.raw_min)), abs(int(p.raw_max)))
    acc: Any = np.float64
    if raw.dtype.kind == "u" and tall * peak * peak < 1 << 32:
        acc = np.uint32
    elif tall * peak * peak < 1 << 31:
        acc = np.int32
    col_sums = scratch("tile_sums", (n_rows, nx), acc)
    col_squares = scratch("tile_squares", (n_rows, nx), acc)
    per_band = bands[0].t1 - bands[0].t0
    buf = scratch("tiles", (per_band * tall, nx), acc)
    # Large planes also count the pixels at their extremes here, while the rows are in the
    # cache (for the saturation metrics; a pass of its own each for small planes).
    extremes = (raw.dtype.type(p.raw_min), raw.dtype.type(p.raw_max))
    at_extremes = [0, 0] if p.size >= _COUNT_IN_TILES else None
    for band in bands:
        rows = raw[band.r0 : band.r1]
        block = buf[: (band.t1 - band.t0) * tall]
        if band.dest is None:
            np.copyto(block, rows, casting="unsafe")  # exact: integers of up to 16 bits
        else:
            block[band.dest] = rows
            block[band.pad] = 0
        if at_extremes is not None:
            at_extremes[0] += int(np.count_nonzero(rows == extremes[0]))
            at_extremes[1] += int(np.count_nonzero(rows == extremes[1]))
        stacked = block.reshape(band.t1 - band.t0, tall, nx)
        np.add.reduce(stacked, axis=1, out=col_sums[band.t0 : band.t1])
        np.multiply(block, block, out=block)
        np.add.reduce(stacked, axis=1, out=col_squares[band.t0 : band.t1])
    if at_extremes is not None:
        for value, hits in zip(extremes, at_extremes, strict=True):
            p.cache[f"count_equal:{int(value)}"] = hits
    # int64 from here: a tile's sums of squares can pass 2**53
    sums = np.add.reduceat(col_sums.astype(np.int64), cols, axis=1)
    squares = np.add.reduceat(col_squares.astype(np.int64), cols, axis=1)
    n_max, count_int, count_sq = _tile_counts((ny, nx), window)
    if n_max * n_max * 2.0**32 < 2.0**62:  # n * sum(x**2) fits in int64: exact
        num = count_int * squares - sums * sums
        var = num.astype(np.float64) / count_sq
    else:
        var = np.maximum(squares / count - (sums / count) ** 2, 0.0)
    total, total_sq, n = int(sums.sum()), int(squares.sum()), p.size
    unit = math.ldexp(1.0, -p.exponent)
    return _Tiles(
        count=count,
        mean=sums / count * unit,
        var=var * (unit * unit),
        plane_mean=math.ldexp(total / n, -p.exponent),
        plane_var=math.ldexp((n * total_sq - total * total) / (n * n), -2 * p.exponent),
    )


def _shift(p: Plane) -> float:
    """A value near the mean of the plane: the mean of a regular ~4,000 px subsample."""
    step = max(1, math.ceil(math.sqrt(p.size / 4096)))
    return float(np.mean(p.work[::step, ::step], dtype=np.float64))


def _float_tiles(p: Plane, window: int) -> _Tiles:
    """Tile statistics from float64 sums of ``work - shift`` and of its squares, with
    ``shift`` near the plane's mean (no cancellation in the variances)."""
    w = p.work
    ny, nx = w.shape
    pairs, cols, count = _tile_grid((ny, nx), window)
    shift = _shift(p)
    col_sums = np.empty((len(pairs), nx))
    col_squares = np.empty((len(pairs), nx))
    buf = scratch("tiles", (max(b - a for a, b in pairs), nx), np.float64)
    for i, (top, bottom) in enumerate(pairs):
        band = buf[: bottom - top]
        np.copyto(band, w[top:bottom])
        band -= shift
        np.add.reduce(band, axis=0, out=col_sums[i])
        band *= band
        np.add.reduce(band, axis=0, out=col_squares[i])
    sums = np.add.reduceat(col_sums, cols, axis=1)
    squares = np.add.reduceat(col_squares, cols, axis=1)
    offsets = sums / count
    n = float(p.size)
    offset = float(np.sum(sums)) / n
    return _Tiles(
        count=count,
        mean=offsets + shift,
        var=np.maximum(squares / count - offsets**2, 0.0),
        plane_mean=shift + offset,
        plane_var=max(float(np.sum(squares)) / n - offset * offset, 0.0),
    )


def _tiles(p: Plane, window: int = LOCAL_WINDOW) -> _Tiles:
    """Statistics of the tiles of the local focus score and of the plane (cached per window).

    One pass over the plane, one row of tiles at a time through a buffer that stays in the
    CPU cache: column sums of the rows of each tile row, then ``np.add.reduceat`` over the
    (few) columns of tile sums. Integers of up to 16 bits are summed exactly in integers;
    other planes in float64 about a value near their mean.
    """
    key = ("tiles", window)
    cached = p.cache.get(key)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    tiles = _integer_tiles(p, window) if p.small_ints else _float_tiles(p, window)
    p.cache[key] = tiles
    if p.small_ints:  # exact: shared with intensity_mean and the power spectrum
        p.cache.setdefault("mean", tiles.plane_mean)
    return tiles


def _normvar(p: Plane) -> float:
    if p.all_nonfinite:
        return math.nan
    t = _tiles(p)
    if not t.plane_mean > 0:
        return math.nan
    return p.to_full_scale(t.plane_var / t.plane_mean)


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

    The sums come from the tile sums of :func:`focus_local` (one pass for both metrics):
    exact integer sums for integer images of up to 16 bits, otherwise float64 sums about a
    value near the mean, so the variance has no cancellation.

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
    t = _tiles(p, window)
    positive = t.mean > 0
    if positive.all():  # (the usual case: no selection to make)
        local = t.var / t.mean
    elif not positive.any():
        return math.nan
    else:
        local = t.var[positive] / t.mean[positive]
    local = local.ravel()
    n = local.size
    # np.median and np.var, without their overhead: the middle pair by a partition, the
    # variance about the mean as one dot product
    middle = np.partition(local, ((n - 1) // 2, n // 2))
    median = float(middle[(n - 1) // 2] + middle[n // 2]) / 2.0
    if not median > 0:  # most tiles flat: the score is undefined
        return math.nan
    dev = local - float(local.sum()) / n
    return p.to_full_scale(float(np.dot(dev, dev)) / n / median)


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

    Notes
    -----
    The tile sums are computed one row of tiles at a time: exactly, in integers, for integer
    images of up to 16 bits (each tile's variance is then rounded once), otherwise as
    float64 sums about a value near the plane's mean; :func:`focus_normvar` reuses them.

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


def _reflect(index: npt.NDArray[np.intp], n: int) -> npt.NDArray[np.intp]:
    """Indices beyond ``[0, n)`` reflected (half-sample, ``ndimage`` mode "reflect")."""
    index = np.mod(index, 2 * n)
    return np.where(index >= n, 2 * n - 1 - index, index)


@lru_cache(maxsize=16)
def _correlation_matrix(
    sigma: float, outputs: int, dtype: str, transposed: bool = False
) -> FloatArray:
    """``(outputs + 2r, outputs)`` matrix ``m`` with ``(x @ m)[j] = sum_t k[t] x[j + t]``: the
    Gaussian of ``sigma`` px (radius ``r``, ``ndimage``'s kernel) on a window of a row
    (its transpose, C-contiguous, when ``transposed``)."""
    kernel = _gaussian_kernel(sigma).astype(np.float64) if sigma > 0 else np.ones(1)
    m = np.zeros((outputs + kernel.size - 1, outputs))
    for j in range(outputs):
        m[j : j + kernel.size, j] = kernel
    out = np.ascontiguousarray(m.T if transposed else m, dtype=dtype)
    out.setflags(write=False)  # shared by every caller (cached)
    return out


def _padded_block(w: npt.NDArray[Any], row0: int, col0: int, out: FloatArray) -> None:
    """``out[i, j] = w[row0 + i, col0 + j]``, indices beyond the borders of ``w`` reflected
    (``ndimage`` mode "reflect"): plain copies inside, (reversed) slices for the border
    pixels (gathers where the reflection turns back, in images narrower than the padding)."""
    ny, nx = w.shape
    nrows, ncols = out.shape
    r_lo, r_hi = min(max(row0, 0), ny), min(max(row0 + nrows, 0), ny)
    c_lo, c_hi = min(max(col0, 0), nx), min(max(col0 + ncols, 0), nx)
    rows = slice(r_lo - row0, r_hi - row0)
    cols = slice(c_lo - col0, c_hi - col0)
    if r_lo < r_hi and c_lo < c_hi:
        out[rows, cols] = w[r_lo:r_hi, c_lo:c_hi]
    # Rows above and below (the columns inside), then the columns left and right of every
    # row, copied from the columns of ``out`` they reflect (which hold every row by then).
    fast = r_lo < r_hi and c_lo < c_hi
    for r in (slice(0, rows.start), slice(rows.stop, nrows)):
        if fast and r.start < r.stop:
            rs = _reflected_run(row0 + r.start, row0 + r.stop, ny)
            if rs is None:
                fast = False
            else:
                out[r, cols] = w[rs, c_lo:c_hi]
    for c in (slice(0, cols.start), slice(cols.stop, ncols)):
        if fast and c.start < c.stop:
            cs = _reflected_run(col0 + c.start, col0 + c.stop, nx)
            # the reflected columns, in the coordinates of out: inside what was copied?
            first = last = -1
            if cs is not None:
                first = cs.start - col0
                last = first + (c.stop - c.start - 1) * (cs.step or 1)
            if cs is None or min(first, last) < cols.start or max(first, last) >= cols.stop:
                fast = False
            elif first <= last:
                out[:, c] = out[:, first : last + 1]
            else:
                out[:, c] = out[:, first : (last - 1 if last > 0 else None) : -1]
    if not fast:  # reflections that turn back (images narrower than the padding): gathers
        every = slice(0, ncols)
        pieces = [
            (slice(0, rows.start), every),  # reflected rows above and below
            (slice(rows.stop, nrows), every),
            (rows, slice(0, cols.start)),  # reflected columns left and right
            (rows, slice(cols.stop, ncols)),
        ]
        row_index = _reflect(np.arange(row0, row0 + nrows), ny)
        col_index = _reflect(np.arange(col0, col0 + ncols), nx)
        for r, c in pieces:
            if r.start < r.stop and c.start < c.stop:
                out[r, c] = w[np.ix_(row_index[r], col_index[c])]


def _reflected_run(start: int, stop: int, n: int) -> slice | None:
    """The indices ``start .. stop - 1`` reflected into ``[0, n)`` (half-sample, as
    :func:`_reflect`) as a slice when they form a run of consecutive indices (rising or
    falling), else None. A reflection that turns back repeats an index, so the ends tell."""

    def one(i: int) -> int:
        i %= 2 * n
        return i if i < n else 2 * n - 1 - i

    first, last = one(start), one(stop - 1)
    if last - first == stop - start - 1:
        return slice(first, last + 1)
    if first - last == stop - start - 1:
        return slice(first, last - 1 if last > 0 else None, -1)
    return None


def _laplacian_var(p: Plane, sigma: float = LAPLACIAN_SIGMA) -> float:
    if p.all_nonfinite:
        return math.nan
    if p.raw_min == p.raw_max:
        return 0.0  # constant: exactly 0 (the float products would leave rounding residues)
    # Integers of up to 16 bits are read directly (float32, in raw units: the same products
    # as on the working copy, scaled exactly by a power of two).
    w = p.raw if p.small_ints else p.work
    units = p.exponent if p.small_ints else 0
    dtype = np.dtype(np.float32) if p.small_ints else p.work.dtype
    nx = w.shape[1]
    total_sq = 0.0
    for c0 in range(0, nx, _LAP_STRIPE):
        total_sq += _laplacian_squares(w, sigma, dtype, c0, min(nx, c0 + _LAP_STRIPE))
    # The mean of the Laplacian is 0: with reflected borders its sum telescopes to nothing.
    return p.to_full_scale(math.ldexp(total_sq / float(w.size), -2 * units), power=2)


def _strided(
    base: npt.NDArray[Any], shape: tuple[int, ...], steps: tuple[int, ...]
) -> npt.NDArray[Any]:
    """A read-only view of the contiguous ``base`` with the given shape and strides (in
    elements): ``np.lib.stride_tricks.as_strided`` without its set-up cost (a few µs)."""
    item = base.itemsize
    view: npt.NDArray[Any] = np.ndarray(
        shape, base.dtype, base, 0, tuple(step * item for step in steps)
    )
    view.flags.writeable = False
    return view


def _laplacian_squares(
    w: npt.NDArray[Any], sigma: float, dtype: np.dtype[Any], c0: int, c1: int
) -> float:
    """Sum of squares of the Laplacian of the smoothed ``w`` over its columns ``c0 .. c1 - 1``
    (a stripe of the image: short rows, whose bands stay in the CPU cache)."""
    ny = w.shape[0]
    radius = _gaussian_kernel(sigma).size // 2 if sigma > 0 else 0
    bh, bv = _LAP_COLS, _LAP_ROWS
    # Smoothed columns c0 - 1 .. c1 (one more on each side for the Laplacian), in blocks of
    # bh; every block is the same matrix product on a window of the padded rows.
    stripe = c1 - c0
    blocks_h = -(-(stripe + 2) // bh)
    width = blocks_h * bh
    padded_width = width + 2 * radius
    matrix_h = _correlation_matrix(sigma, bh, dtype.str)
    matrix_v = _correlation_matrix(sigma, bv + 2, dtype.str, transposed=True)
    # Bands of whole vertical blocks of about _LAP_BAND elements (in the cache), and few
    # enough rows and columns per matrix product to keep them on this thread (BLAS_MAX_WORK).
    blocks_per_band = max(1, _LAP_BAND // (bv * padded_width))
    max_rows = BLAS_MAX_WORK // ((bh + 2 * radius) * bh)
    blocks_per_band = max(1, min(blocks_per_band, (max_rows - 2 - 2 * radius) // bv))
    span = bv + 2 + 2 * radius  # input rows of one vertical block
    chunk = max(bh, BLAS_MAX_WORK // ((bv + 2) * span) // bh * bh)  # columns per product
    total_sq = 0.0
    for band_top in range(0, ny, bv * blocks_per_band):
        blocks_v = min(blocks_per_band, -(-(ny - band_top) // bv))
        rows = blocks_v * bv + 2 + 2 * radius
        # Rows band_top - 1 - radius ..: each vertical block of bv Laplacian rows needs the
        # smoothed rows above and below, which need radius more input rows on each side.
        padded = scratch("lap_in", (rows, padded_width), dtype)
        _padded_block(w, band_top - 1 - radius, c0 - 1 - radius, padded)
        windows = _strided(padded, (blocks_h, rows, bh + 2 * radius), (bh, padded_width, 1))
        smooth_x = scratch("lap_x", (rows, width), dtype)
        np.matmul(windows, matrix_h, out=smooth_x.reshape(rows, blocks_h, bh).transpose(1, 0, 2))
        windows = _strided(smooth_x, (blocks_v, span, width), (bv * width, width, 1))
        smooth = scratch("lap_s", (blocks_v, bv + 2, width), dtype)
        for x0 in range(0, width, chunk):
            np.matmul(matrix_v, windows[:, :, x0 : x0 + chunk], out=smooth[:, :, x0 : x0 + chunk])
        # The 5-point Laplacian of each block, on its flattened rows (contiguous, fast); the
        # columns beyond the stripe, the padding and the rows past the image get junk and are
        # zeroed.
        flat = smooth.reshape(blocks_v, -1)
        n = bv * width
        lap = scratch("lap_l", (blocks_v, n), dtype)
        centre = scratch("lap_c", (blocks_v, n), dtype)
        np.add(flat[:, :n], flat[:, 2 * width :], out=lap)
        lap += flat[:, width - 1 : width - 1 + n]
        lap += flat[:, width + 1 : width + 1 + n]
        np.multiply(flat[:, width : width + n], dtype.type(4.0), out=centre)
        lap -= centre
        grid = lap.reshape(blocks_v * bv, width)
        grid[:, 0] = 0.0
        grid[:, stripe + 1 :] = 0.0
        grid[ny - band_top :] = 0.0
        total_sq += row_squares(grid)
    return total_sq


def focus_laplacian_var(
    image: Any,
    *,
    sigma: float = LAPLACIAN_SIGMA,
    significant_bits: int | None = None,
    binned: bool = False,
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
    binned : bool
        Measure the 2 x 2-binned image (the mean of each 2 x 2 block; ``sigma`` and the
        result then in binned px): the value :func:`channel_metrics` stores for planes of at
        least 128 px on each side.

    Returns
    -------
    float
        Variance in (full scale / px²)². 0 for a constant image; NaN when no pixel is finite
        (or, binned, when the image is a single row or column).

    Notes
    -----
    The plain 3 x 3 Laplacian (``sigma=0``) responds mostly to pixel noise in widefield
    fluorescence images: on the real BBBC006 / BBBC039 images in the test data it does *not*
    rank the out-of-focus fields below the in-focus ones (its values overlap), so it is not
    used as a focus metric. Smoothing by 1 px first removes the noise and keeps the cell-scale
    detail that defocus destroys; with it, every out-of-focus field scores at least 4x below
    every in-focus one.

    The separable Gaussian runs as float32 (float64 for wider data) matrix products (BLAS)
    of windows of reflect-padded rows with one block of its band matrix, on bands of rows
    of stripes of at most 1024 columns so that the intermediate arrays stay in the CPU
    cache; the 5-point Laplacian follows on the flattened rows, and its mean is zero (its
    sum over reflected borders telescopes), so the variance is the mean square. The value
    equals ``ndimage.laplace(ndimage.gaussian_filter(...))`` to float32 precision (about
    1e-7 relative, as before); a constant image gives exactly 0.

    **Binned**: :func:`channel_metrics` measures planes of at least 128 px on each side on
    their 2 x 2-binned version, smoothed by 1 binned px (2 px): a quarter of the cost, and
    less pixel noise. On the validation data binned values rank focus the same, with a wider
    gap between the out-of-focus and the in-focus real fields (about 13x instead of 4x;
    tests/quality/test_qc_binned_focus.py). Values are in binned px and not interchangeable
    with unbinned ones.

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
    p = prepare(image, significant_bits=significant_bits, name="image")
    return _laplacian_var(_binned_or_nan(p) if binned else p, s)


# ---------------------------------------------------------------- z-stacks


def _binned_or_nan(p: Plane) -> Plane:
    """The binned plane, or an all-NaN plane where there is nothing to bin (one row)."""
    if min(p.raw.shape) < 2:
        return prepare(np.full((1, 1), np.nan), name="binned plane")
    return binned(p)


def focus_plane(p: Plane) -> Plane:
    """The plane the binned focus metrics measure: :func:`binned` for planes of at least
    :data:`BINNED_MIN_SIDE` px per side, else ``p`` itself."""
    if p.all_nonfinite or min(p.raw.shape) < BINNED_MIN_SIDE:
        return p
    return binned(p)


def _plls_qc(p: Plane) -> float:
    fp = focus_plane(p)
    if fp is p:
        return _plls(p)
    return _plls(fp, band=BINNED_PLLS_BAND, fast_crop=True)


def _laplacian_qc(p: Plane) -> float:
    return _laplacian_var(focus_plane(p))


#: The focus metrics of :func:`channel_metrics` and :func:`stack_metrics` (functions of a
#: prepared plane), in the registry's order.
FOCUS_METRICS: dict[str, Any] = {
    "focus_plls": _plls_qc,
    "focus_normvar": _normvar,
    "focus_local": _local,
    "focus_laplacian_var": _laplacian_qc,
}
#: Focus metrics measured on the 2 x 2-binned plane of planes of at least
#: :data:`BINNED_MIN_SIDE` px per side (see :func:`focus_plls` and :func:`focus_laplacian_var`).
BINNED_FOCUS_METRICS = ("focus_plls", "focus_laplacian_var")


def plane_focus(p: Plane) -> dict[str, float]:
    """All focus metrics of a prepared plane."""
    if not p.all_nonfinite:
        _tiles(p)  # first: the pass that also gives the plane's mean to the power spectrum
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
