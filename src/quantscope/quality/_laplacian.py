"""Variance of the Laplacian of the Gaussian-smoothed plane: the computation behind
:func:`quantscope.quality.focus_laplacian_var`.

The smoothing and the Laplacian are the kernel :func:`~._kernels.laplacian_squares`; this
module turns its sum of squares into the variance in units of the full scale. The public
function lives in ``_focus``.
"""

from __future__ import annotations

import math

import numpy as np

from ._common import Plane
from ._kernels import laplacian_squares

#: Gaussian pre-smoothing (px) of the Laplacian focus measure.
LAPLACIAN_SIGMA = 1.0


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
    total_sq = laplacian_squares(w, sigma, dtype)
    # The mean of the Laplacian is 0: with reflected borders its sum telescopes to nothing.
    return p.to_full_scale(math.ldexp(total_sq / float(w.size), -2 * units), power=2)
