"""Tile statistics of a prepared plane and the two focus metrics built on them: the
normalized variance (:func:`_normvar`) and the local focus score (:func:`_local`).

The per-tile sums come from the kernels :func:`~._kernels.integer_tile_sums` (exact integer
sums for integers of up to 16 bits) and :func:`~._kernels.float_tile_sums` (float64 sums
about a value near the mean otherwise); :func:`_tiles` turns them into each tile's mean and
variance and the plane's. Both metrics take the :class:`_Tiles` of the plane when the caller
has them (:func:`channel_metrics <quantscope.quality.channel_metrics>` computes them once),
else compute them. The public functions :func:`focus_normvar` and :func:`focus_local` live
in ``_focus``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ._common import Plane
from ._kernels import float_tile_sums, integer_tile_sums, tile_grid

#: Tile size (px) of the local focus score, CellProfiler's default.
LOCAL_WINDOW = 20


@dataclass(frozen=True)
class _Tiles:
    """Mean and variance of each tile of the local focus score and of the whole plane, in
    working units (shared by the local focus score and the normalized variance)."""

    count: npt.NDArray[np.float64]
    mean: npt.NDArray[np.float64]
    var: npt.NDArray[np.float64]
    plane_mean: float
    plane_var: float


def _integer_tiles(p: Plane, window: int) -> _Tiles:
    """Exact tile statistics of integers of up to 16 bits: the variances
    ``(n * sum(x**2) - sum(x)**2) / n**2`` are computed in integers before one rounding."""
    ny, nx = p.raw.shape
    count = tile_grid((ny, nx), window)[2]
    peak = max(abs(int(p.raw_min)), abs(int(p.raw_max)))
    sums, squares = integer_tile_sums(p.raw, window, peak)
    n_max = float(count.max())
    if n_max * n_max * 2.0**32 < 2.0**62:  # n * sum(x**2) fits in int64: exact
        num = count.astype(np.int64) * squares - sums * sums
        var = num.astype(np.float64) / (count * count)
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
    count = tile_grid(p.work.shape, window)[2]
    shift = _shift(p)
    sums, squares = float_tile_sums(p.work, window, shift)
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
    """Statistics of the tiles of the local focus score and of the plane: exact integer sums
    for integers of up to 16 bits, float64 sums about a value near the mean otherwise."""
    return _integer_tiles(p, window) if p.small_ints else _float_tiles(p, window)


def _normvar(p: Plane, tiles: _Tiles | None = None) -> float:
    """The normalized variance of ``p`` (``tiles``: its :func:`_tiles`, when known)."""
    if p.all_nonfinite:
        return math.nan
    t = _tiles(p) if tiles is None else tiles
    if not t.plane_mean > 0:
        return math.nan
    return p.to_full_scale(t.plane_var / t.plane_mean)


def _local(p: Plane, window: int = LOCAL_WINDOW, tiles: _Tiles | None = None) -> float:
    """The local focus score of ``p`` (``tiles``: its :func:`_tiles` of ``window``, when
    known)."""
    if p.all_nonfinite:
        return math.nan
    t = _tiles(p, window) if tiles is None else tiles
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
