"""Focus (blur) metrics of one 2-D plane, and the best-focus plane of a z-stack.

All four metrics are larger for sharper images. The power-spectrum slope is dimensionless and
nearly independent of brightness and content; the other three are in units of the intensity
"full scale" (the detector's maximum: ``2**significant_bits - 1``, the integer dtype maximum,
or 1 for float images), so they are comparable across images of one channel and acquisition
setting, not across channels.

The computations live in rooms of their own: ``_spectrum`` (the power-spectrum slope and its
per-shape tables), ``_tiles`` (tile statistics: normalized variance and local focus) and
``_laplacian`` (the smoothed Laplacian), on the kernels of ``_kernels``. This module holds
the public metric functions, the focus metrics of one plane as QC measures them
(:func:`plane_focus`, which computes the shared tile sums and binned plane once and passes
them on) and the best-focus plane of a z-stack.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import InvalidInput
from ._common import BINNED_MIN_SIDE, Plane, binned, prepare
from ._laplacian import LAPLACIAN_SIGMA, _laplacian_var
from ._spectrum import BINNED_PLLS_BAND, PLLS_MAX_SIZE, _plls
from ._tiles import LOCAL_WINDOW, _local, _normvar, _Tiles, _tiles

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


# ---------------------------------------------------------------- power-spectrum slope (PLLS)


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
    Parseval's theorem); the 2-D window (a float32 outer product), the bin layout, the
    weights and the fit's abscissae of each crop shape are tables computed once per shape; only
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
    out-of-focus vs in-focus fields, BBBC039: tests/quality/test_quality_binned_focus.py).

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
    tests/quality/test_quality_binned_focus.py). Values are in binned px and not interchangeable
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


def _measures_binned(p: Plane) -> bool:
    """Whether QC measures the binned focus metrics of ``p`` on its 2 x 2-binned plane:
    planes with a finite pixel and at least :data:`BINNED_MIN_SIDE` px per side."""
    return not p.all_nonfinite and min(p.raw.shape) >= BINNED_MIN_SIDE


def focus_plane(p: Plane) -> Plane:
    """The plane the binned focus metrics measure: :func:`binned` for planes of at least
    :data:`BINNED_MIN_SIDE` px per side, else ``p`` itself."""
    return binned(p) if _measures_binned(p) else p


def _plls_qc(p: Plane, fp: Plane | None = None, mean: float | None = None) -> float:
    """The power-spectrum slope as QC measures it: of :func:`focus_plane` (``fp``, when the
    caller has it), binned or not; ``mean``: ``p``'s mean, when known."""
    if not _measures_binned(p):
        return _plls(p, mean=mean)
    return _plls(focus_plane(p) if fp is None else fp, band=BINNED_PLLS_BAND, fast_crop=True)


def _laplacian_qc(p: Plane, fp: Plane | None = None) -> float:
    """The Laplacian variance as QC measures it: of :func:`focus_plane` (``fp``, when the
    caller has it)."""
    return _laplacian_var(focus_plane(p) if fp is None else fp)


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


def plane_focus(p: Plane, tiles: _Tiles | None = None) -> dict[str, float]:
    """All focus metrics of a prepared plane, as :data:`FOCUS_METRICS` computes them one by
    one; the tile sums (``tiles``: :func:`_tiles` of ``p``, when the caller has them) and the
    binned plane are computed once and passed to each metric that needs them."""
    if p.all_nonfinite:
        return {name: math.nan for name in FOCUS_METRICS}
    if tiles is None:
        tiles = _tiles(p)
    fp = focus_plane(p)
    # integers of up to 16 bits: the exact mean of the tile sums (what intensity_mean gives)
    mean = tiles.plane_mean if p.small_ints else None
    return {
        "focus_plls": float(_plls_qc(p, fp, mean)),
        "focus_normvar": float(_normvar(p, tiles)),
        "focus_local": float(_local(p, LOCAL_WINDOW, tiles)),
        "focus_laplacian_var": float(_laplacian_qc(p, fp)),
    }


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
