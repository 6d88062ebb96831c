"""Per-plate, per-channel illumination profiles (flat field, dark field) and their correction."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from ..errors import InvalidInput
from ._common import prepare
from ._illumination import uniformity_of_field

__all__ = ["IlluminationProfile", "apply_flatfield", "estimate_illumination_profile"]

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]

#: The flat field is floored at this fraction of its mean, so that applying it never divides
#: by (nearly) zero.
FLAT_FLOOR = 0.05


@dataclass(frozen=True)
class IlluminationProfile:
    """An estimated illumination profile of one channel of one plate.

    Attributes
    ----------
    flat : numpy.ndarray
        Flat field ``(Y, X)``, float32, mean 1: the relative illumination at each pixel.
    dark : numpy.ndarray or None
        Dark field ``(Y, X)``, float32, in raw units (ADU), or None when not estimated.
    n_images : int
        Images that went into the estimate.
    percentile : float
        Per-pixel percentile used across the normalized images.
    smoothing : str
        ``"polynomial"`` (with its degree) or ``"gaussian"`` (with its sigma), as text.
    corner_center_ratio : float
        Mean of the four corners over the centre of the flat field (1: even).
    flatness : float
        Minimum over maximum of the flat field (1: even).
    """

    flat: F32
    dark: F32 | None
    n_images: int
    percentile: float
    smoothing: str
    corner_center_ratio: float
    flatness: float


def _block_mean(work: npt.NDArray[Any], factors: tuple[int, int]) -> F64:
    fy, fx = factors
    ny, nx = (work.shape[0] // fy) * fy, (work.shape[1] // fx) * fx
    blocks = work[:ny, :nx].reshape(ny // fy, fy, nx // fx, fx)
    return np.asarray(blocks.mean(axis=(1, 3), dtype=np.float64))


def _legendre_design(n: int, degree: int) -> F64:
    """Legendre polynomials 0..degree at ``n`` even points of [-1, 1]: ``(n, degree + 1)``."""
    from numpy.polynomial import legendre

    t = np.linspace(-1.0, 1.0, n) if n > 1 else np.zeros(1)
    return np.asarray(legendre.legvander(t, degree))


def _polyfit_2d(field: F64, degree: int) -> F64:
    """Least-squares coefficients ``c[i, j]`` of ``sum c[i, j] P_i(y) P_j(x)``, total degree."""
    ny, nx = field.shape
    dy, dx = min(degree, ny - 1), min(degree, nx - 1)
    vy, vx = _legendre_design(ny, dy), _legendre_design(nx, dx)
    terms = [(i, j) for i in range(dy + 1) for j in range(dx + 1) if i + j <= degree]
    design = np.stack([np.outer(vy[:, i], vx[:, j]).ravel() for i, j in terms], axis=1)
    coef, *_ = np.linalg.lstsq(design, field.ravel(), rcond=None)
    out = np.zeros((degree + 1, degree + 1))
    for (i, j), c in zip(terms, coef, strict=True):
        out[i, j] = c
    return out


def _polyval_2d(coef: F64, shape: tuple[int, int], factors: tuple[int, int]) -> F32:
    """Evaluate the fit at full resolution (block centres map onto [-1, 1])."""
    from numpy.polynomial import legendre

    def coords(n_full: int, factor: int) -> F64:
        n_blocks = n_full // factor
        centre = (np.arange(n_full, dtype=np.float64) - (factor - 1) / 2.0) / factor
        return np.asarray(2.0 * centre / (n_blocks - 1) - 1.0) if n_blocks > 1 else centre * 0

    vy = legendre.legvander(coords(shape[0], factors[0]), coef.shape[0] - 1)
    vx = legendre.legvander(coords(shape[1], factors[1]), coef.shape[1] - 1)
    return np.asarray((vy @ coef @ vx.T).astype(np.float32))


def _smooth(
    field: F64,
    shape: tuple[int, int],
    factors: tuple[int, int],
    smoothing: str,
    degree: int,
    sigma: float,
) -> F32:
    if smoothing == "polynomial":
        return _polyval_2d(_polyfit_2d(field, degree), shape, factors)
    from scipy import ndimage

    smooth = ndimage.gaussian_filter(field, sigma * max(field.shape), mode="nearest")
    zoom = (shape[0] / field.shape[0], shape[1] / field.shape[1])
    full = ndimage.zoom(smooth, zoom, order=1, mode="nearest", grid_mode=True)
    out = np.empty(shape, np.float32)
    out[: full.shape[0], : full.shape[1]] = full[: shape[0], : shape[1]]
    if full.shape[0] < shape[0]:
        out[full.shape[0] :] = out[full.shape[0] - 1]
    if full.shape[1] < shape[1]:
        out[:, full.shape[1] :] = out[:, full.shape[1] - 1 : full.shape[1]]
    return out


def _check_options(
    percentile: float, smoothing: str, degree: int, sigma: float, working_size: int
) -> None:
    if isinstance(percentile, bool) or not isinstance(percentile, int | float):
        raise InvalidInput(f"percentile: expected a number 0-100, got {percentile!r}")
    if not 0.0 <= float(percentile) <= 100.0:
        raise InvalidInput(f"percentile: {percentile!r} is out of range; it must be 0-100")
    if smoothing not in ("polynomial", "gaussian"):
        raise InvalidInput(
            f"smoothing: unknown method {smoothing!r}; expected 'polynomial' or 'gaussian'"
        )
    if isinstance(degree, bool) or not isinstance(degree, int) or not 0 <= degree <= 8:
        raise InvalidInput(f"degree: expected an integer 0-8, got {degree!r}")
    if isinstance(sigma, bool) or not isinstance(sigma, int | float) or not 0 < sigma <= 1:
        raise InvalidInput(f"sigma: expected a fraction of the image size in (0, 1], got {sigma!r}")
    if isinstance(working_size, bool) or not isinstance(working_size, int) or working_size < 8:
        raise InvalidInput(f"working_size: expected an integer >= 8 (px), got {working_size!r}")


def estimate_illumination_profile(
    images: Iterable[Any],
    *,
    dark: float | npt.ArrayLike | Literal["estimate"] | None = None,
    percentile: float = 50.0,
    dark_percentile: float = 1.0,
    smoothing: Literal["polynomial", "gaussian"] = "polynomial",
    degree: int = 4,
    sigma: float = 0.125,
    working_size: int = 128,
) -> IlluminationProfile:
    """Estimate the flat field (and optionally the dark field) of one channel of one plate.

    A robust, documented alternative to BaSiC (Peng et al. 2017) for when ``basicpy`` is not
    installed:

    1. each image is reduced by block means to at most ``working_size`` px per side (the
       profile is smooth, so nothing is lost), after subtracting ``dark``;
    2. each reduced image is divided by its own mean (so that bright and dim fields weigh
       alike);
    3. the per-pixel ``percentile`` (default the median) across the images removes the cells,
       which sit at different places in different fields, and keeps what all fields share:
       the illumination (of the background and of the stained content alike);
    4. the result is smoothed by a 2-D Legendre polynomial of total degree ``degree``
       (least squares; default 4) or a Gaussian of ``sigma`` times the image size, evaluated
       at full resolution, floored at 5 % and normalized to mean 1.

    Parameters
    ----------
    images : iterable of array_like
        2-D images ``(Y, X)`` of one channel, all the same shape (an iterator is consumed
        once; a 3-D array is read as a stack of images). At least one; at least about 10
        fields with cells at different places give a clean profile.
    dark : float, array_like, "estimate" or None
        Intensity not modulated by the illumination (camera offset and dark current, ADU),
        subtracted first: a number, a ``(Y, X)`` array, ``"estimate"`` (the per-pixel
        ``dark_percentile`` of the raw images, smoothed like the flat field, which assumes
        that at every pixel some image shows background whose illuminated part is
        negligible), or None (nothing subtracted).
    percentile : float
        Per-pixel percentile across the normalized images (0-100; default 50). A low value
        (e.g. 10) follows the background of sparse samples more closely.
    dark_percentile : float
        Per-pixel percentile of the raw images used as the dark field with
        ``dark="estimate"`` (default 1).
    smoothing : {"polynomial", "gaussian"}
        Smoothing method.
    degree : int
        Total degree of the polynomial (0-8).
    sigma : float
        Gaussian sigma as a fraction of the (reduced) image size, in (0, 1].
    working_size : int
        Longest side (px) of the reduced images.

    Returns
    -------
    IlluminationProfile
        ``flat`` (mean 1), ``dark`` (or None), and the uniformity figures of the flat field.

    Raises
    ------
    quantscope.errors.InvalidInput
        No images, images of different shapes or not 2-D, no image with a positive mean, or
        a bad option.

    See Also
    --------
    apply_flatfield : correct an image with the profile.

    References
    ----------
    .. [1] Peng, T. et al. (2017). A BaSiC tool for background and shading correction of
       optical microscopy images. Nat Commun 8, 14836. :doi:`10.1038/ncomms14836`
    .. [2] Singh, S., Bray, M.-A., Jones, T. R., Carpenter, A. E. (2014). Pipeline for
       illumination correction of images for high-throughput microscopy. J Microsc 256(3),
       231-236. :doi:`10.1111/jmi.12178`
    """
    _check_options(percentile, smoothing, degree, sigma, working_size)
    if isinstance(dark, str) and dark != "estimate":
        raise InvalidInput(f"dark: expected a number, an array, 'estimate' or None, got {dark!r}")
    stack, shape, factors, dark_given = _reduced_stack(images, dark, working_size)

    dark_full: F32 | None = None
    if isinstance(dark, str):  # "estimate"
        dark_small = np.percentile(stack, dark_percentile, axis=0)
        dark_full = _smooth(dark_small, shape, factors, smoothing, degree, sigma)
        stack -= _block_mean(dark_full, factors)[None]
    elif dark_given is not None:
        dark_full = dark_given.astype(np.float32)

    flat, n_images = _flat_field(stack, percentile, shape, factors, smoothing, degree, sigma)
    method = f"polynomial degree {degree}" if smoothing == "polynomial" else f"gaussian {sigma:g}"
    ratio, flatness = uniformity_of_field(flat)
    return IlluminationProfile(
        flat=flat,
        dark=dark_full,
        n_images=n_images,
        percentile=float(percentile),
        smoothing=method,
        corner_center_ratio=ratio,
        flatness=flatness,
    )


def _reduced_stack(
    images: Iterable[Any], dark: Any, working_size: int
) -> tuple[F64, tuple[int, int], tuple[int, int], F64 | None]:
    """Steps 1 of :func:`estimate_illumination_profile`: the block means of every image with
    a finite pixel (raw units), a given dark field subtracted, as one ``(N, y, x)`` stack;
    with the images' shape, the block factors and the given dark field (or None)."""
    if isinstance(images, np.ndarray) and images.ndim == 3:
        images = list(images)
    shape: tuple[int, int] | None = None
    factors = (1, 1)
    dark_given: F64 | None = None
    reduced: list[F64] = []
    for index, image in enumerate(images):
        p = prepare(image, name=f"images[{index}]")
        if shape is None:
            shape = (p.work.shape[0], p.work.shape[1])
            # Blocks of about max(shape) / working_size px (fewer along a short side).
            step = max(1, math.ceil(max(shape) / working_size))
            factors = (min(step, shape[0]), min(step, shape[1]))
            dark_given = _dark_array(dark, shape)
        elif p.work.shape != shape:
            raise InvalidInput(
                f"images[{index}]: shape {p.work.shape} differs from the first image's {shape}; "
                f"a profile is estimated from images of one size"
            )
        if p.all_nonfinite:
            continue
        block = _block_mean(p.work, factors) * math.ldexp(1.0, p.exponent)
        reduced.append(block)
    if shape is None:
        raise InvalidInput("images: no image given; an illumination profile needs at least one")
    if not reduced:
        raise InvalidInput("images: no image has a finite pixel")
    stack = np.stack(reduced)
    if dark_given is not None:
        stack -= _block_mean(dark_given, factors)[None]
    return stack, shape, factors, dark_given


def _flat_field(
    stack: F64,
    percentile: float,
    shape: tuple[int, int],
    factors: tuple[int, int],
    smoothing: str,
    degree: int,
    sigma: float,
) -> tuple[F32, int]:
    """Steps 2-4 of :func:`estimate_illumination_profile` on the reduced, dark-subtracted
    stack: the flat field (mean 1, floored) and the number of images that went into it."""
    means = stack.reshape(stack.shape[0], -1).mean(axis=1)
    usable = means > 0
    if not np.any(usable):
        raise InvalidInput(
            "images: no image has a positive mean after the dark field is subtracted; check "
            "the dark level"
        )
    normalized = stack[usable] / means[usable, None, None]
    profile = np.percentile(normalized, percentile, axis=0)
    flat = _smooth(profile, shape, factors, smoothing, degree, sigma)
    mean = float(np.mean(flat, dtype=np.float64))
    if not mean > 0:
        raise InvalidInput("images: the estimated flat field has no positive mean")
    flat /= np.float32(mean)
    np.maximum(flat, np.float32(FLAT_FLOOR), out=flat)
    flat /= np.float32(np.mean(flat, dtype=np.float64))
    return flat, int(np.count_nonzero(usable))


def _dark_array(dark: Any, shape: tuple[int, int]) -> F64 | None:
    if dark is None or isinstance(dark, str):
        return None
    arr = np.asarray(dark, dtype=np.float64)
    if arr.ndim == 0:
        if not math.isfinite(float(arr)):
            raise InvalidInput(f"dark: expected a finite number, got {dark!r}")
        return np.full(shape, float(arr))
    if arr.shape != shape:
        raise InvalidInput(f"dark: shape {arr.shape} differs from the images' {shape}")
    if not np.all(np.isfinite(arr)):
        raise InvalidInput("dark: the dark field has NaN or infinite values")
    return arr


def apply_flatfield(
    image: Any, flat: npt.ArrayLike, dark: float | npt.ArrayLike | None = None
) -> F32:
    """Correct an image for uneven illumination: ``(image - dark) / flat``.

    Parameters
    ----------
    image : array_like
        Image ``(..., Y, X)``: one plane or a stack of planes of one channel.
    flat : array_like
        Flat field ``(Y, X)``, positive and finite, normally of mean 1 (as
        :func:`estimate_illumination_profile` returns), so that the mean intensity is kept.
    dark : float or array_like, optional
        Dark field ``(Y, X)`` or a constant offset, in the image's units.

    Returns
    -------
    numpy.ndarray
        Corrected image, float32, the shape of ``image``. NaN pixels stay NaN.

    Raises
    ------
    quantscope.errors.InvalidInput
        If the shapes do not match, or the flat field has non-positive or non-finite values.

    References
    ----------
    .. [1] Peng, T. et al. (2017). Nat Commun 8, 14836. :doi:`10.1038/ncomms14836`
    """
    img = np.asarray(image)
    if img.ndim < 2 or img.size == 0 or img.dtype.kind not in "uifb":
        raise InvalidInput(
            f"image: expected a non-empty real image (..., Y, X), got shape {img.shape} "
            f"of {img.dtype}"
        )
    ff = np.asarray(flat, dtype=np.float32)
    if ff.shape != img.shape[-2:]:
        raise InvalidInput(
            f"flat: shape {ff.shape} differs from the image's plane shape {img.shape[-2:]}"
        )
    if not np.all(np.isfinite(ff)) or not np.all(ff > 0):
        raise InvalidInput("flat: the flat field must be positive and finite everywhere")
    out = img.astype(np.float32)
    if dark is not None:
        dk = np.asarray(dark, dtype=np.float32)
        if dk.ndim and dk.shape != img.shape[-2:]:
            raise InvalidInput(
                f"dark: shape {dk.shape} differs from the image's plane shape {img.shape[-2:]}"
            )
        if not np.all(np.isfinite(dk)):
            raise InvalidInput("dark: the dark field has NaN or infinite values")
        out -= dk
    with np.errstate(over="ignore", invalid="ignore"):
        out /= ff
    return out
