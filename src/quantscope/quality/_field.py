"""The smooth background field of one plane, shared by the illumination and content metrics."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

from ._common import Plane
from ._kernels import BLAS_MAX_WORK, block_percentiles, scratch, smoothing_matrix

__all__ = ["BLOCK_PERCENTILE", "ILLUM_GRID", "BackgroundField", "background_field", "plane_field"]

#: The field is summarized on a grid of this many blocks per side.
ILLUM_GRID = 8
#: Percentile of each block taken as its level: low, so that it follows the background
#: (lit by the same excitation as the sample) rather than the cells.
BLOCK_PERCENTILE = 5.0
_MAX_SIDE = 512  # the plane is subsampled to at most this many px per side first
_MIN_BLOCK = 2  # px per block (after subsampling) below which the field is not estimated
_OUTLIER_SIGMAS = 3.0  # blocks this far above the smooth field are taken as covered by cells
_MIN_SPREAD = 0.01  # ... with sigma at least 1 % of the background level
_ITERATIONS = 6  # fits at most
_MAD_TO_SIGMA = 1.482602218505602

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class BackgroundField:
    """Block-wise background level of a plane (working units of :class:`Plane`).

    Attributes
    ----------
    sub : numpy.ndarray
        The regular subsample of the plane (at most 512 px per side) cropped to whole blocks,
        in working units times ``2**exponent`` (the raw integers of planes of up to 16 bits).
    grid : numpy.ndarray
        ``(8, 8)`` smooth background level at the block centres (see
        :func:`background_field`), in working units.
    exponent : int
        ``sub * 2**-exponent`` is in working units.
    """

    sub: npt.NDArray[Any]
    grid: F64
    exponent: int = 0

    def upsampled(self, exponent: int = 0, *, slot: str | None = None) -> F64:
        """The grid interpolated bilinearly onto ``sub`` (extrapolated linearly at the edges),
        times ``2**exponent`` (exactly); in this thread's :func:`scratch` buffer ``slot``
        when given (valid until that slot is requested again)."""
        ny, nx = self.sub.shape
        gy, gx = self.grid.shape
        rows = _linear_weights(ny, gy)
        cols = _linear_weights(nx, gx)
        grid = self.grid * math.ldexp(1.0, exponent) if exponent else self.grid
        left = rows @ grid
        out = np.empty((ny, nx)) if slot is None else scratch(slot, (ny, nx), np.float64)
        step = max(1, BLAS_MAX_WORK // (gx * nx))  # rows per product (see BLAS_MAX_WORK)
        for r0 in range(0, ny, step):
            np.matmul(left[r0 : r0 + step], cols.T, out=out[r0 : r0 + step])
        return out


@lru_cache(maxsize=16)
def _linear_weights(n: int, g: int) -> F64:
    """``(n, g)`` weights of linear interpolation from ``g`` block centres to ``n`` pixels."""
    t = (np.arange(n) + 0.5) * (g / n) - 0.5  # pixel centres in block units
    i0 = np.clip(np.floor(t).astype(np.intp), 0, g - 2)
    frac = t - i0  # below 0 or above 1 at the edges: linear extrapolation
    weights = np.zeros((n, g))
    rows = np.arange(n)
    weights[rows, i0] = 1.0 - frac
    weights[rows, i0 + 1] = frac
    weights.setflags(write=False)  # shared by every caller (cached)
    return weights


def _fit(design: F64, values: F64, keep: npt.NDArray[np.bool_]) -> F64:
    """Least-squares coefficients of ``design[keep] @ coef ~ values[keep]`` (6 unknowns):
    the normal equations (well conditioned: the quadric's columns on [-1, 1]), or a
    least-squares solver where they are singular (the blocks kept lie on a degenerate set)."""
    d = design[keep]
    y = values[keep]
    try:
        return np.asarray(np.linalg.solve(d.T @ d, d.T @ y), dtype=np.float64)
    except np.linalg.LinAlgError:
        coef, *_ = np.linalg.lstsq(d, y, rcond=None)
        return np.asarray(coef, dtype=np.float64)


def _median(values: F64) -> float:
    """``np.median`` of a few values (a sort, without np.median's overhead)."""
    s = np.sort(values, axis=None)
    n = s.size
    return float((s[(n - 1) // 2] + s[n // 2]) / 2.0)


def _sorted_median(values: F64) -> float:
    """:func:`_median` of a 1-D temporary, sorted in place (the same sort, the same value)."""
    values.sort()
    n = values.size
    return (float(values[(n - 1) // 2]) + float(values[n // 2])) / 2.0


@lru_cache(maxsize=4)
def _design(grid: int) -> F64:
    """Plane-and-quadric design matrix on the ``grid x grid`` block centres in [-1, 1]."""
    t = np.linspace(-1.0, 1.0, grid)
    y, x = np.meshgrid(t, t, indexing="ij")
    design = np.stack([np.ones_like(y), y, x, y * y, x * y, x * x], axis=-1).reshape(-1, 6)
    design.setflags(write=False)  # shared by every caller (cached)
    return design


def plane_field(p: Plane) -> BackgroundField | None:
    """:func:`background_field` of a prepared plane (from the raw integers where exact)."""
    if p.small_ints:
        return background_field(p.raw, exponent=p.exponent)
    return background_field(p.work)


def background_field(
    work: npt.NDArray[Any], grid: int = ILLUM_GRID, *, exponent: int = 0
) -> BackgroundField | None:
    """The :class:`BackgroundField` of a working plane; None below 2 px per block (16 px).

    The 5th percentile of each of ``grid x grid`` blocks (from every other row and column of
    blocks of 16 px and more a side) is modelled as a quadratic trend
    (least squares; exact for linear gradients and radial vignetting) plus its residuals
    smoothed by a Gaussian of one block (for illumination that no quadric describes). Cells
    only ever make a block brighter than its background, so the first fit uses the darker
    half of the blocks; then every block up to 3 robust sigmas (at least 1 % of the level)
    above the fit is taken back and the model refitted, until the set of blocks no longer
    changes (at most 6 fits). Cells covering up to about half of the blocks (a cytoplasmic
    stain, clumps in the centre) are thus left out; with the former start from all blocks
    such fields looked unevenly lit (corner/centre ratios down to 0.45 on clean synthetic
    plates, now above 0.94).

    ``work`` may also be the raw integers of a plane, with ``work * 2**-exponent`` in working
    units (the block percentiles are then selected among integers: a faster partition).
    """
    step = max(1, math.ceil(max(work.shape) / _MAX_SIDE))
    sub = work[::step, ::step]
    by, bx = sub.shape[0] // grid, sub.shape[1] // grid
    if by < _MIN_BLOCK or bx < _MIN_BLOCK:
        return None
    y0 = (sub.shape[0] - by * grid) // 2
    x0 = (sub.shape[1] - bx * grid) // 2
    crop = sub[y0 : y0 + by * grid, x0 : x0 + bx * grid]
    # the percentile of each block from every other row and column of it (blocks of 16 px
    # and more a side): a quarter of the work, a few percent of the noise sigma of error
    thin = 2 if by >= 16 and bx >= 16 else 1
    n = -(-by // thin) * -(-bx // thin)  # pixels per block taken
    k = int(BLOCK_PERCENTILE / 100.0 * (n - 1))
    low = np.ldexp(block_percentiles(crop, grid, thin, k).astype(np.float64), -exponent)
    design = _design(grid)
    # Cells only ever make a block brighter than its background: start from the darker half
    # of the blocks (background wherever cells cover less than half of the field), then fit
    # and take back every block up to 3 robust sigmas above the fit, until nothing changes.
    # fitted about a level of the data: a constant field is reproduced exactly
    level = _median(low)
    keep = low <= level
    field = low
    flat = low.ravel() - level
    # The residuals smoothed where the blocks are kept: Gaussian (sigma 1 block, nearest
    # edges) of the weighted residuals over that of the weights, both in one pair of
    # (batched) products
    smooth_rows, smooth_cols = smoothing_matrix(grid), smoothing_matrix(grid).T
    both = np.empty((2, grid, grid))
    for _ in range(_ITERATIONS):
        trend = (design @ _fit(design, flat, keep.ravel())).reshape(low.shape) + level
        both[1] = keep  # 0.0 or 1.0
        np.subtract(low, trend, out=both[0])
        both[0] *= both[1]
        num, den = smooth_rows @ both @ smooth_cols
        field = trend + num / np.maximum(den, 1e-6)
        resid = low - field
        spread = _MAD_TO_SIGMA * _sorted_median(np.abs(resid[keep]))
        spread = max(spread, _MIN_SPREAD * abs(_sorted_median(low[keep])))
        new_keep = resid <= _OUTLIER_SIGMAS * spread
        if np.count_nonzero(new_keep) < 2 * design.shape[1] or (
            new_keep.tobytes() == keep.tobytes()  # the same blocks: converged
        ):
            break
        keep = new_keep
    return BackgroundField(sub=crop, grid=field, exponent=exponent)
