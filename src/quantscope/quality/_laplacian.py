"""Variance of the Laplacian of the Gaussian-smoothed plane: the computation behind
:func:`quantscope.quality.focus_laplacian_var`.

The separable Gaussian runs as matrix products (BLAS) of windows of reflect-padded rows with
one block of its band matrix (:func:`_correlation_matrix`, cached), on bands of rows of
stripes of columns that stay in the CPU cache (:func:`_laplacian_squares`); the reflected
padding is copied by slices where it runs straight (:func:`_padded_block`). The public
function lives in ``_focus``.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

from ._common import BLAS_MAX_WORK, FloatArray, Plane, row_squares, scratch

#: Gaussian pre-smoothing (px) of the Laplacian focus measure.
LAPLACIAN_SIGMA = 1.0
_LAP_ROWS = 16  # output rows per matrix product of the Laplacian's vertical pass
_LAP_COLS = 16  # output columns per matrix product of its horizontal pass
_LAP_BAND = 1 << 20  # elements per band of rows (the band's arrays stay in the CPU cache)
_LAP_STRIPE = 1024  # columns per stripe of wide images (long bands of short rows)


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
