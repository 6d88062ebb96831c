"""Tile statistics of a prepared plane and the two focus metrics built on them: the
normalized variance (:func:`_normvar`) and the local focus score (:func:`_local`).

One pass over the plane, one band of tile rows at a time through a buffer that stays in the
CPU cache, gives each tile's mean and variance and the plane's (:func:`_tiles`, cached on the
plane): exact integer sums for integers of up to 16 bits (which also count the pixels at the
extremes of large planes), float64 sums about a value near the mean otherwise. The tile grid
(CellProfiler's), its counts and bands are cached per shape. The public functions
:func:`focus_normvar` and :func:`focus_local` live in ``_focus``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

from ._common import Plane, scratch

#: Tile size (px) of the local focus score, CellProfiler's default.
LOCAL_WINDOW = 20
_COUNT_IN_TILES = 1 << 22  # planes of at least this many pixels count extremes with the tiles
_TILE_BAND = 1 << 17  # elements of the float64 buffer of a band of tile rows (in the cache)


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
