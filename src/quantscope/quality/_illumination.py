"""Illumination uniformity of one plane: corner-to-centre ratio and flatness of its field."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import InvalidInput
from ._common import Plane, prepare, safe_ratio

__all__ = ["ILLUM_GRID", "illumination_uniformity", "smoothed_field", "uniformity_of_field"]

#: The field is summarized on a grid of this many blocks per side.
ILLUM_GRID = 8
#: Percentile of each block taken as its level: low, so that it follows the background
#: (lit by the same excitation as the sample) rather than the cells.
BLOCK_PERCENTILE = 5.0
_MAX_SIDE = 512  # the plane is subsampled to at most this many px per side first
_MIN_BLOCK = 2  # px per block (after subsampling) below which the field is not estimated


def smoothed_field(
    work: npt.NDArray[Any], grid: int = ILLUM_GRID
) -> npt.NDArray[np.float64] | None:
    """5th percentile of each of ``grid x grid`` blocks, smoothed by a Gaussian of 1 block.

    Returns None when the plane is too small (fewer than 2 px per block).
    """
    from scipy import ndimage

    step = max(1, math.ceil(max(work.shape) / _MAX_SIDE))
    sub = work[::step, ::step]
    by, bx = sub.shape[0] // grid, sub.shape[1] // grid
    if by < _MIN_BLOCK or bx < _MIN_BLOCK:
        return None
    y0 = (sub.shape[0] - by * grid) // 2
    x0 = (sub.shape[1] - bx * grid) // 2
    blocks = sub[y0 : y0 + by * grid, x0 : x0 + bx * grid].reshape(grid, by, grid, bx)
    values = blocks.transpose(0, 2, 1, 3).reshape(grid, grid, by * bx)
    k = int(BLOCK_PERCENTILE / 100.0 * (by * bx - 1))
    low = np.partition(values, k, axis=-1)[..., k]
    return np.asarray(ndimage.gaussian_filter(low.astype(np.float64), 1.0, mode="nearest"))


def uniformity_of_field(field: npt.NDArray[Any]) -> tuple[float, float]:
    """Corner-to-centre ratio and flatness (min / max) of a smooth 2-D field.

    The centre value is the mean of the central 2 x 2 (even size) or 1 x 1 (odd) elements;
    the corner value is the mean of the four corner elements. Both figures are NaN where
    the centre, respectively the maximum, is not positive.
    """
    ny, nx = field.shape
    cy0, cy1 = (ny - 1) // 2, ny // 2 + 1
    cx0, cx1 = (nx - 1) // 2, nx // 2 + 1
    centre = float(np.mean(field[cy0:cy1, cx0:cx1]))
    corners = float(np.mean([field[0, 0], field[0, -1], field[-1, 0], field[-1, -1]]))
    ratio = safe_ratio(corners, centre) if centre > 0 else math.nan
    top = float(field.max())
    flatness = safe_ratio(float(field.min()), top) if top > 0 else math.nan
    return ratio, flatness


def _illumination(p: Plane, offset: float = 0.0) -> tuple[float, float]:
    if p.all_nonfinite:
        return math.nan, math.nan
    field = smoothed_field(p.work)
    if field is None:
        return math.nan, math.nan
    if offset:
        field = field - math.ldexp(offset, -p.exponent)
    return uniformity_of_field(field)


def illumination_uniformity(image: Any, *, offset: float = 0.0) -> tuple[float, float]:
    """Uniformity of the illumination from the smoothed intensity field of one image.

    The image is subsampled to at most 512 px per side and divided into 8 x 8 blocks; the
    5th percentile of each block (its background level, hardly affected by the cells in it)
    is smoothed by a Gaussian of one block. From this field, in the spirit of MetroloJ_QC's
    field-illumination report:

    - the **corner-to-centre ratio** is the mean of the four corner blocks divided by the
      mean of the central blocks (1 for even illumination, below 1 for vignetting);
    - the **flatness** is the minimum divided by the maximum of the field (MetroloJ's
      "uniformity", as a fraction: 1 is perfectly flat).

    Parameters
    ----------
    image : array_like
        2-D image ``(Y, X)``; any real dtype.
    offset : float
        Intensity not modulated by the illumination (camera offset, dark level) in raw
        units, subtracted from the field first. With the default 0, an offset makes both
        figures closer to 1 than the illumination itself is.

    Returns
    -------
    corner_centre_ratio : float
        Dimensionless; NaN when the centre level is not positive or the image is smaller
        than 16 px on a side.
    flatness : float
        Dimensionless, at most 1; NaN in the same cases.

    Notes
    -----
    The field is that of the background fluorescence, which the excitation lights like the
    sample; a block entirely covered by cells (confluent or clumped cells) raises its value.
    For a per-plate estimate of the illumination use :func:`estimate_illumination_profile`.

    References
    ----------
    .. [1] Faklaris, O. et al. (2022). Quality assessment in light microscopy for routine
       use through simple tools and robust metrics. J Cell Biol 221(11), e202107093.
       :doi:`10.1083/jcb.202107093`
    """
    try:
        off = float(offset)
    except (TypeError, ValueError):
        raise InvalidInput(f"offset: expected a number (raw units), got {offset!r}") from None
    if not math.isfinite(off):
        raise InvalidInput(f"offset: expected a finite number, got {offset!r}")
    return _illumination(prepare(image, name="image"), off)
