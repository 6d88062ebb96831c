"""Illumination uniformity of one plane: corner-to-centre ratio and flatness of its field."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import InvalidInput
from ._common import Plane, prepare, safe_ratio
from ._field import BackgroundField, plane_field

__all__ = ["illumination_uniformity", "uniformity_of_field"]

_CORNERS = ([0, 0, -1, -1], [0, -1, 0, -1])


def uniformity_of_field(field: npt.NDArray[Any]) -> tuple[float, float]:
    """Corner-to-centre ratio and flatness (min / max) of a smooth 2-D field.

    The centre value is the mean of the central 2 x 2 (even size) or 1 x 1 (odd) elements;
    the corner value is the mean of the four corner elements. Negative levels count as 0.
    Both figures are NaN where the centre, respectively the maximum, is not positive.
    """
    field = np.maximum(np.asarray(field, dtype=np.float64), 0.0)
    ny, nx = field.shape
    cy0, cy1 = (ny - 1) // 2, ny // 2 + 1
    cx0, cx1 = (nx - 1) // 2, nx // 2 + 1
    # np.mean's own sum and division (the same values), without its set-up
    middle = field[cy0:cy1, cx0:cx1]
    centre = float(middle.sum() / middle.size)
    corners = float(field[_CORNERS].sum() / 4)
    ratio = safe_ratio(corners, centre) if centre > 0 else math.nan
    top = float(field.max())
    flatness = safe_ratio(float(field.min()), top) if top > 0 else math.nan
    return ratio, flatness


def _illumination(
    p: Plane, offset: float = 0.0, bgf: BackgroundField | None = None
) -> tuple[float, float]:
    if p.all_nonfinite:
        return math.nan, math.nan
    if bgf is None:
        bgf = plane_field(p)
    if bgf is None:
        return math.nan, math.nan
    field = bgf.grid
    if offset:
        field = field - math.ldexp(offset, -p.exponent)
    return uniformity_of_field(field)


def illumination_uniformity(image: Any, *, offset: float = 0.0) -> tuple[float, float]:
    """Uniformity of the illumination from the smoothed intensity field of one image.

    The image is subsampled to at most 512 px per side and divided into 8 x 8 blocks. The
    5th percentile of each block (its background level, hardly affected by the cells in it)
    is modelled as a quadratic trend (least squares: exact for linear gradients and radial
    vignetting) plus the residuals smoothed by a Gaussian of one block; blocks more than
    3 sigma above the model, covered by cells, are left out and the model refitted. From
    this field at the block centres, in the spirit of MetroloJ_QC's field-illumination
    report:

    - the **corner-to-centre ratio** is the mean of the four corner blocks divided by the
      mean of the four central blocks (1 for even illumination, below 1 for vignetting);
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
    sample. Where cells cover most blocks (confluent or strongly clumped cells, or heavy
    defocus spreading their light) the field follows the cells and the figures drop for
    reasons other than the illumination; the estimate also needs fields several times larger
    than the cells (at 20x, 256 px and up). For a per-plate estimate of the illumination use
    :func:`estimate_illumination_profile`.

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
