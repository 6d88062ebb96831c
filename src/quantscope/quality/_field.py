"""The smooth background field of one plane, shared by the illumination and content metrics."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["BLOCK_PERCENTILE", "ILLUM_GRID", "BackgroundField", "background_field"]

#: The field is summarized on a grid of this many blocks per side.
ILLUM_GRID = 8
#: Percentile of each block taken as its level: low, so that it follows the background
#: (lit by the same excitation as the sample) rather than the cells.
BLOCK_PERCENTILE = 5.0
_MAX_SIDE = 512  # the plane is subsampled to at most this many px per side first
_MIN_BLOCK = 2  # px per block (after subsampling) below which the field is not estimated
_OUTLIER_SIGMAS = 3.0  # blocks this far above the smooth field are taken as covered by cells
_MAD_TO_SIGMA = 1.482602218505602

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class BackgroundField:
    """Block-wise background level of a plane (working units of :class:`Plane`).

    Attributes
    ----------
    sub : numpy.ndarray
        The regular subsample of the plane (at most 512 px per side) cropped to whole blocks.
    grid : numpy.ndarray
        ``(8, 8)`` smooth background level at the block centres (see
        :func:`background_field`).
    """

    sub: npt.NDArray[Any]
    grid: F64

    def upsampled(self) -> F64:
        """The grid interpolated bilinearly onto ``sub`` (extrapolated linearly at the edges)."""
        ny, nx = self.sub.shape
        gy, gx = self.grid.shape
        rows = _linear_weights(ny, gy)
        cols = _linear_weights(nx, gx)
        return np.asarray(rows @ self.grid @ cols.T)


def _linear_weights(n: int, g: int) -> F64:
    """``(n, g)`` weights of linear interpolation from ``g`` block centres to ``n`` pixels."""
    t = (np.arange(n) + 0.5) * (g / n) - 0.5  # pixel centres in block units
    i0 = np.clip(np.floor(t).astype(np.intp), 0, g - 2)
    frac = t - i0  # below 0 or above 1 at the edges: linear extrapolation
    weights = np.zeros((n, g))
    rows = np.arange(n)
    weights[rows, i0] = 1.0 - frac
    weights[rows, i0 + 1] = frac
    return weights


def _weighted_smooth(values: F64, weights: F64) -> F64:
    """Gaussian smoothing (sigma 1 block, nearest edges) of ``values`` where ``weights`` is 1."""
    from scipy import ndimage

    num = ndimage.gaussian_filter(values * weights, 1.0, mode="nearest")
    den = ndimage.gaussian_filter(weights, 1.0, mode="nearest")
    return np.asarray(num / np.maximum(den, 1e-6), dtype=np.float64)


@lru_cache(maxsize=4)
def _design(grid: int) -> F64:
    """Plane-and-quadric design matrix on the ``grid x grid`` block centres in [-1, 1]."""
    t = np.linspace(-1.0, 1.0, grid)
    y, x = np.meshgrid(t, t, indexing="ij")
    return np.stack([np.ones_like(y), y, x, y * y, x * y, x * x], axis=-1).reshape(-1, 6)


def background_field(work: npt.NDArray[Any], grid: int = ILLUM_GRID) -> BackgroundField | None:
    """The :class:`BackgroundField` of a working plane; None below 2 px per block (16 px).

    The 5th percentile of each of ``grid x grid`` blocks is modelled as a quadratic trend
    (least squares; exact for linear gradients and radial vignetting) plus its residuals
    smoothed by a Gaussian of one block (for illumination that no quadric describes). Blocks
    more than 3 sigma (robust) above the model are covered by cells: they are left out and
    the model refitted, twice.
    """
    step = max(1, math.ceil(max(work.shape) / _MAX_SIDE))
    sub = work[::step, ::step]
    by, bx = sub.shape[0] // grid, sub.shape[1] // grid
    if by < _MIN_BLOCK or bx < _MIN_BLOCK:
        return None
    y0 = (sub.shape[0] - by * grid) // 2
    x0 = (sub.shape[1] - bx * grid) // 2
    crop = sub[y0 : y0 + by * grid, x0 : x0 + bx * grid]
    values = crop.reshape(grid, by, grid, bx).transpose(0, 2, 1, 3).reshape(grid, grid, by * bx)
    k = int(BLOCK_PERCENTILE / 100.0 * (by * bx - 1))
    low = np.partition(values, k, axis=-1)[..., k].astype(np.float64)
    design = _design(grid)
    keep = np.ones(low.shape, dtype=bool)
    field = low
    for iteration in range(3):
        coef, *_ = np.linalg.lstsq(design[keep.ravel()], low[keep], rcond=None)
        trend = (design @ coef).reshape(low.shape)
        field = trend + _weighted_smooth(low - trend, keep.astype(np.float64))
        if iteration == 2:
            break
        resid = low - field
        spread = _MAD_TO_SIGMA * float(np.median(np.abs(resid[keep])))
        new_keep = resid <= _OUTLIER_SIGMAS * spread
        if np.count_nonzero(new_keep) < 2 * design.shape[1] or np.array_equal(new_keep, keep):
            break
        keep = new_keep
    return BackgroundField(sub=crop, grid=field)
