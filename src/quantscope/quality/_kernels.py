"""The fast kernels of the quality metrics: plain array-in, numbers-out functions.

Every kernel here is a pure function of its arguments (arrays and numbers; no prepared plane,
no per-plane state) and has a plain numpy / scipy reference in the tests
(``tests/quality/test_quality_kernels.py``) that it must equal, on random inputs of odd
shapes, constant images, integers and floats:

* :func:`counting_sort`: distinct values and counts of an integer array (``np.unique``);
* :func:`bin2x2`: the mean of each 2 x 2 block (a reshape and a mean);
* :func:`integer_tile_sums`, :func:`float_tile_sums`: per-tile sums of pixels and squares on
  CellProfiler's tile grid (:func:`tile_grid`; loops over the tiles);
* :func:`laplacian_squares`: the sum of squares of the Laplacian of the Gaussian-smoothed
  plane (``ndimage.laplace(ndimage.gaussian_filter(...))``), with :func:`padded_block`
  (reflected borders, ``np.pad(mode="symmetric")``);
* :func:`pair_difference_counts`: counts of the differences of adjacent pixel pairs at or
  below a level (``np.unique`` of the kept differences);
* :func:`sorted_mad`, :func:`counted_mad`: the median absolute deviation of a sorted or a
  counted sample (``np.median(np.abs(x - centre))``);
* :func:`block_percentiles` and :func:`smoothing_matrix`: the block-wise low percentile and
  the Gaussian of the background field (``np.partition`` per block,
  ``ndimage.correlate1d``);
* :func:`row_squares`: a sum of squares (``np.sum(a * a)``).

Large temporaries live in per-thread :func:`scratch` buffers: a memory pool, reused between
calls of one thread, never a cache of results.
"""

from __future__ import annotations

import math
import threading
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "BLAS_MAX_WORK",
    "bin2x2",
    "block_percentiles",
    "counted_mad",
    "counting_sort",
    "float_tile_sums",
    "gaussian_kernel",
    "integer_tile_sums",
    "laplacian_squares",
    "padded_block",
    "pair_difference_counts",
    "reflect",
    "row_squares",
    "scratch",
    "smoothing_kernel",
    "smoothing_matrix",
    "sorted_mad",
    "tile_grid",
]

FloatArray = npt.NDArray[np.floating[Any]]

#: Largest ``m * n * k`` of one matrix product (and length of one dot product, see
#: :func:`row_squares`) handed to BLAS: OpenBLAS runs smaller ones on the calling thread,
#: larger ones on its own thread pool, which competes with the threads that run QC in
#: parallel (two such threads on two cores then take longer than one).
BLAS_MAX_WORK = 1 << 18
_DOT_MAX = 8192
#: Scratch buffers larger than this (bytes) are not kept between calls.
_SCRATCH_MAX = 1 << 25
#: Views of scratch buffers kept per thread (see :func:`scratch`).
_MAX_VIEWS = 512
#: Integer samples whose values span at most this many levels are sorted by counting.
_COUNTING_RANGE = 1 << 18

_scratch = threading.local()


# ---------------------------------------------------------------- memory and sums


def scratch(slot: str, shape: tuple[int, ...], dtype: Any) -> npt.NDArray[Any]:
    """An uninitialized array for a temporary, reused between calls of the same thread.

    Fresh large arrays cost page faults on every call (about as much as a pass over them);
    the kernels therefore keep one buffer per ``slot`` name and thread (at most 32 MiB each;
    larger requests get a fresh array). The result is only valid until the next request
    of the same slot in the same thread: never return it or keep it.
    """
    views: dict[tuple[str, tuple[int, ...], Any], npt.NDArray[Any]] | None = getattr(
        _scratch, "views", None
    )
    if views is None:
        views = _scratch.views = {}
        _scratch.pool = {}
    key = (slot, shape, dtype)
    view = views.get(key)
    if view is not None:
        return view
    dt = np.dtype(dtype)
    nbytes = math.prod(shape) * dt.itemsize
    if nbytes > _SCRATCH_MAX:
        return np.empty(shape, dt)
    pool: dict[str, npt.NDArray[np.uint8]] = _scratch.pool
    buf = pool.get(slot)
    if buf is None or buf.size < nbytes:
        buf = pool[slot] = np.empty(max(nbytes, 64) // 8 + 1, np.float64).view(np.uint8)
        for old in [k for k in views if k[0] == slot]:  # views of the former buffer
            del views[old]
    view = buf[:nbytes].view(dt).reshape(shape)
    if len(views) >= _MAX_VIEWS:  # many shapes: start over
        views.clear()
    views[key] = view
    return view


def row_squares(a: npt.NDArray[Any]) -> float:
    """Sum of squares of a 2-D array: float (BLAS) dot products of rows of at most 8192
    elements (accurate, and short enough to stay on the calling thread), added in float64."""
    total = 0.0
    for c0 in range(0, a.shape[1], _DOT_MAX):
        part = a[:, c0 : c0 + _DOT_MAX]
        total += float(np.vecdot(part, part).sum(dtype=np.float64))
    return total


def counting_sort(
    ints: npt.NDArray[Any], bounds: tuple[int, int] | None = None
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]] | None:
    """Distinct values and their counts of an integer array (ascending), by counting.

    ``bounds``, when known, are a lower and an upper bound of the values (saves two passes).
    Returns None where the values span more than ``2**18`` levels or the dtype is wider
    than 32 bits (use a comparison sort then). ``np.repeat(values, counts)`` is the sorted
    array.
    """
    if ints.dtype.kind not in "ui" or ints.dtype.itemsize > 4 or ints.size == 0:
        return None
    lo, hi = (int(ints.min()), int(ints.max())) if bounds is None else bounds
    if hi - lo > _COUNTING_RANGE:
        return None
    index = scratch("counting_sort", ints.shape, np.intp)
    np.subtract(ints, lo, out=index, dtype=np.intp)
    counts = np.bincount(index.ravel(), minlength=hi - lo + 1)
    present = np.flatnonzero(counts)
    return present.astype(np.int64) + lo, counts[present].astype(np.int64, copy=False)


# ---------------------------------------------------------------- 2 x 2 binning


def bin2x2(
    src: npt.NDArray[Any],
    acc: Any,
    factor: float,
    out: FloatArray,
    *,
    max_value: float | None = None,
) -> FloatArray:
    """``out[i, j] = factor * (sum of the 2 x 2 block (2i.., 2j..) of src)`` (an odd last row
    or column of ``src`` is dropped): the rows of each block pair added in ``acc``, then the
    columns in ``out``'s dtype, then scaled (exact for integers of up to 16 bits summed in
    32-bit integers, ``factor`` a power of two, and a float32 ``out``).

    uint16 planes whose values are below ``2**15`` (``max_value``, when the caller knows the
    maximum) are summed in two 16-bit lanes of 32-bit words instead (the same values: every
    sum is exact either way), which saves the casts.
    """
    ny, nx = out.shape[0] * 2, out.shape[1] * 2
    pairs = None
    if max_value is not None and max_value < 1 << 15 and out.dtype == np.float32:
        pairs = _pixel_pairs(src[:ny, :nx])
    if pairs is not None:
        # Each 32-bit word holds two horizontally adjacent 16-bit pixels: adding the words
        # of two rows adds the four pixels of a block in two 16-bit lanes (no carry below
        # 2**15), and the two lanes are added at the end.
        rows = scratch("binned_rows", (ny // 2, nx // 2), np.uint32)
        np.add(pairs[0::2], pairs[1::2], out=rows)
        high = scratch("binned_high", rows.shape, np.uint32)
        np.right_shift(rows, 16, out=high)
        rows &= 0xFFFF
        rows += high
        # The sums (below 2**17) to float32 without a casting loop: the bits 0x4B000000 | v
        # are the float32 2**23 + v (exactly, for v < 2**23); times the power-of-two factor
        # and minus 2**23 times it, both exact, that is v * factor.
        rows |= _F32_TWO_23_BITS
        np.multiply(rows.view(np.float32), np.float32(factor), out=out)
        out -= np.float32(math.ldexp(factor, 23))
        return out
    rows = scratch("binned_rows", (ny // 2, nx), acc)
    np.add(src[0:ny:2, :nx], src[1:ny:2, :nx], out=rows, dtype=acc)
    np.add(rows[:, 0::2], rows[:, 1::2], out=out, dtype=out.dtype)
    out *= out.dtype.type(factor)
    return out


#: The bits of the float32 2**23 (see :func:`bin2x2`).
_F32_TWO_23_BITS = np.uint32(0x4B000000)


def _pixel_pairs(raw: npt.NDArray[Any]) -> npt.NDArray[np.uint32] | None:
    """``raw`` (native uint16, an even number of columns) viewed as one uint32 word per two
    horizontally adjacent pixels, or None where that view is not possible (other dtypes,
    rows not contiguous or not 4-byte aligned)."""
    if raw.dtype != np.dtype("=u2") or raw.strides[1] != 2 or raw.strides[0] % 4:
        return None
    if raw.__array_interface__["data"][0] % 4:
        return None
    try:
        return raw.view(np.uint32)
    except ValueError:
        return None


# ---------------------------------------------------------------- tile sums


def _tile_starts(length: int, window: int) -> npt.NDArray[np.intp]:
    """Start of each of ``ceil(length / window)`` near-equal tiles (CellProfiler's grid)."""
    m = -(-length // window)
    k = np.arange(m, dtype=np.int64)
    return ((k * length + m - 1) // m).astype(np.intp)


@lru_cache(maxsize=16)
def tile_grid(shape: tuple[int, int], window: int) -> tuple[list[tuple[int, int]], Any, Any]:
    """Row ranges of the tile rows, column starts and tile pixel counts (float64) of
    CellProfiler's grid of near-equal tiles of about ``window`` px (read-only: cached per
    shape)."""
    ny, nx = shape
    rows = _tile_starts(ny, window)
    cols = _tile_starts(nx, window)
    ends = np.append(rows[1:], ny)
    count = np.outer(ends - rows, np.diff(np.append(cols, nx))).astype(np.float64)
    cols.setflags(write=False)
    count.setflags(write=False)
    return list(zip(rows.tolist(), ends.tolist(), strict=True)), cols, count


_TILE_BAND = 1 << 17  # elements of the buffer of a band of tile rows (in the CPU cache)


@lru_cache(maxsize=16)
def _tile_bands(ny: int, nx: int, window: int) -> tuple[tuple[Any, ...], ...]:
    """The tile rows in bands of whole tile rows: ``(t0, t1, r0, r1, tall, dest, pad)`` per
    band, tile rows ``t0 .. t1 - 1`` (plane rows ``r0 .. r1 - 1``) as a ``(t1 - t0, tall,
    X)`` buffer where plane row ``r0 + i`` goes to buffer row ``dest[i]`` (in order when
    ``dest`` is None) and the rows ``pad`` stay zero (read-only: cached per shape)."""
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
        bands.append((t0, t1, int(starts[t0]), int(ends[t1 - 1]), tall, dest, pad))
    return tuple(bands)


def integer_tile_sums(
    raw: npt.NDArray[Any], window: int, peak: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Exact per-tile sums of the pixels and of their squares (int64) of integers of up to
    16 bits whose absolute values are at most ``peak``, on the grid of :func:`tile_grid`.

    The column sums of each tile row are sums of integers in 32-bit integers where the
    largest possible sum of squares fits (float64 otherwise, exact too: every partial sum is
    an integer below 2**53), over a buffer that holds a band of whole tile rows as a
    ``(tile rows, height, X)`` array (tile rows shorter than the tallest padded with zero
    rows) so that one reduction serves all its tile rows; the column sums are then added in
    int64 per tile.
    """
    ny, nx = raw.shape
    _, cols, _ = tile_grid((ny, nx), window)
    bands = _tile_bands(ny, nx, window)
    n_rows = bands[-1][1]
    tall = bands[0][4]
    acc: Any = np.float64
    if raw.dtype.kind == "u" and tall * peak * peak < 1 << 32:
        acc = np.uint32
    elif tall * peak * peak < 1 << 31:
        acc = np.int32
    col_sums = scratch("tile_sums", (n_rows, nx), acc)
    col_squares = scratch("tile_squares", (n_rows, nx), acc)
    per_band = bands[0][1] - bands[0][0]
    buf = scratch("tiles", (per_band * tall, nx), acc)
    for t0, t1, r0, r1, _, dest, pad in bands:
        rows = raw[r0:r1]
        block = buf[: (t1 - t0) * tall]
        if dest is None:
            np.copyto(block, rows, casting="unsafe")  # exact: integers of up to 16 bits
        else:
            block[dest] = rows
            block[pad] = 0
        stacked = block.reshape(t1 - t0, tall, nx)
        np.add.reduce(stacked, axis=1, out=col_sums[t0:t1])
        np.multiply(block, block, out=block)
        np.add.reduce(stacked, axis=1, out=col_squares[t0:t1])
    # int64 from here: a tile's sums of squares can pass 2**53
    sums = np.add.reduceat(col_sums.astype(np.int64), cols, axis=1)
    squares = np.add.reduceat(col_squares.astype(np.int64), cols, axis=1)
    return sums, squares


def float_tile_sums(
    w: FloatArray, window: int, shift: float
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Per-tile float64 sums of ``w - shift`` and of its squares on the grid of
    :func:`tile_grid`, one tile row at a time through a buffer that stays in the CPU cache."""
    ny, nx = w.shape
    pairs, cols, _ = tile_grid((ny, nx), window)
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
    return np.add.reduceat(col_sums, cols, axis=1), np.add.reduceat(col_squares, cols, axis=1)


# ---------------------------------------------------------------- smoothed Laplacian

_LAP_ROWS = 16  # output rows per matrix product of the Laplacian's vertical pass
_LAP_COLS = 16  # output columns per matrix product of its horizontal pass
_LAP_BAND = 1 << 20  # elements per band of rows (the band's arrays stay in the CPU cache)
_LAP_STRIPE = 1024  # columns per stripe of wide images (long bands of short rows)


@lru_cache(maxsize=8)
def gaussian_kernel(sigma: float) -> npt.NDArray[np.float32]:
    """The 1-D kernel of ``scipy.ndimage.gaussian_filter`` (truncated at 4 sigma), float32."""
    radius = int(4.0 * sigma + 0.5)
    k = np.arange(-radius, radius + 1, dtype=np.float64)
    weights = np.exp(-0.5 * (k / sigma) ** 2)
    return (weights / weights.sum()).astype(np.float32)


def reflect(index: npt.NDArray[np.intp], n: int) -> npt.NDArray[np.intp]:
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
    kernel = gaussian_kernel(sigma).astype(np.float64) if sigma > 0 else np.ones(1)
    m = np.zeros((outputs + kernel.size - 1, outputs))
    for j in range(outputs):
        m[j : j + kernel.size, j] = kernel
    out = np.ascontiguousarray(m.T if transposed else m, dtype=dtype)
    out.setflags(write=False)  # shared by every caller (cached)
    return out


def padded_block(w: npt.NDArray[Any], row0: int, col0: int, out: FloatArray) -> None:
    """``out[i, j] = w[row0 + i, col0 + j]``, indices beyond the borders of ``w`` reflected
    (``ndimage`` mode "reflect"): plain copies inside, (reversed) slices for the border
    pixels (gathers where the reflection turns back, in images narrower than the padding).
    The block must overlap ``w`` (at least one of its pixels inside)."""
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
        row_index = reflect(np.arange(row0, row0 + nrows), ny)
        col_index = reflect(np.arange(col0, col0 + ncols), nx)
        for r, c in pieces:
            if r.start < r.stop and c.start < c.stop:
                out[r, c] = w[np.ix_(row_index[r], col_index[c])]


def _reflected_run(start: int, stop: int, n: int) -> slice | None:
    """The indices ``start .. stop - 1`` reflected into ``[0, n)`` (half-sample, as
    :func:`reflect`) as a slice when they form a run of consecutive indices (rising or
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


def laplacian_squares(w: npt.NDArray[Any], sigma: float, dtype: np.dtype[Any]) -> float:
    """Sum of squares of the 5-point Laplacian of ``w`` smoothed by a Gaussian of ``sigma``
    px (``ndimage``'s kernel, borders reflected), computed in ``dtype`` (float32 or float64)
    one stripe of at most 1024 columns at a time."""
    nx = w.shape[1]
    return sum(
        _laplacian_stripe(w, sigma, dtype, c0, min(nx, c0 + _LAP_STRIPE))
        for c0 in range(0, nx, _LAP_STRIPE)
    )


def _laplacian_stripe(
    w: npt.NDArray[Any], sigma: float, dtype: np.dtype[Any], c0: int, c1: int
) -> float:
    """:func:`laplacian_squares` over the columns ``c0 .. c1 - 1`` of ``w``.

    The separable Gaussian runs as matrix products (BLAS) of windows of reflect-padded rows
    with one block of its band matrix, on bands of rows that stay in the CPU cache, every
    product small enough to stay on the calling thread (:data:`BLAS_MAX_WORK`).
    """
    ny = w.shape[0]
    radius = gaussian_kernel(sigma).size // 2 if sigma > 0 else 0
    bh, bv = _LAP_COLS, _LAP_ROWS
    # Smoothed columns c0 - 1 .. c1 (one more on each side for the Laplacian), in blocks of
    # bh; every block is the same matrix product on a window of the padded rows.
    stripe = c1 - c0
    blocks_h = -(-(stripe + 2) // bh)
    width = blocks_h * bh
    padded_width = width + 2 * radius
    matrix_h = _correlation_matrix(sigma, bh, dtype.str)
    matrix_v = _correlation_matrix(sigma, bv + 2, dtype.str, transposed=True)
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
        padded_block(w, band_top - 1 - radius, c0 - 1 - radius, padded)
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


# ---------------------------------------------------------------- pixel pairs and the MAD


def pair_difference_counts(
    left: npt.NDArray[Any], right: npt.NDArray[Any], lo: int, top: int, hi: int
) -> npt.NDArray[np.int64]:
    """Counts of the differences ``right - left`` of integer pixel pairs whose two pixels are
    both at most ``top``: ``counts[k]`` pairs differ by ``k - (top - lo)``, for ``k = 0 ..
    2 (top - lo)``. ``lo`` and ``hi`` bound the values of both arrays (``lo <= top <= hi``)."""
    span = top - lo  # the differences of the pairs kept lie in [-span, span]
    index = scratch("diffs", left.shape, np.intp)
    np.subtract(right, left, out=index, dtype=np.intp)
    index += span
    if top < hi:  # pairs with a pixel above the limit are counted in an extra bin
        brighter = scratch("diffs_max", left.shape, left.dtype)
        np.maximum(left, right, out=brighter)
        index[brighter > left.dtype.type(top)] = 2 * span + 1
    return np.bincount(index.ravel(), minlength=2 * span + 2)[: 2 * span + 1]


def _kth_of_two(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64], k: int) -> float:
    """The ``k``-th smallest (0-based) value of the union of two ascending arrays."""
    lo, hi = max(0, k + 1 - b.size), min(k + 1, a.size)
    while lo < hi:  # smallest count i taken from a with a[i] >= b[k - i]
        i = (lo + hi) // 2
        if a[i] < b[k - i]:
            lo = i + 1
        else:
            hi = i
    i, j = lo, k + 1 - lo
    if i == 0:
        return float(b[j - 1])
    if j == 0:
        return float(a[i - 1])
    return float(max(a[i - 1], b[j - 1]))


def sorted_mad(x: npt.NDArray[np.float64], centre: float) -> float:
    """``np.median(np.abs(x - centre))`` of an ascending array, in O(log n), same value.

    The distances below and above ``centre`` form two ascending runs whose union's median
    is found by bisection instead of a partition of all the distances.
    """
    n = x.size
    if n == 0:
        return math.nan
    split = int(x.searchsorted(centre, side="left"))
    below = centre - x[:split][::-1]  # ascending distances of the values below the centre
    above = x[split:] - centre
    if n % 2:
        return _kth_of_two(below, above, n // 2)
    return (_kth_of_two(below, above, n // 2 - 1) + _kth_of_two(below, above, n // 2)) / 2.0


#: Largest doubled distance (in units) whose counts :func:`counted_mad` tallies in one array.
_COUNTED_MAD_RANGE = 1 << 21


def counted_mad(
    values: npt.NDArray[np.float64],
    counts: npt.NDArray[np.int64],
    centre: float,
    unit: float,
) -> float | None:
    """``np.median(np.abs(np.repeat(values, counts) - centre))`` for ascending ``values``
    that are whole multiples of ``unit`` (a power of two) about a ``centre`` that is one of
    them or the mean of two: the distances, doubled and in units, are integers, so their
    counts are one ``bincount`` whose middle ranks are found in its cumulative sum. None
    where that does not hold (another centre, or too wide a range): use a general method."""
    count = int(counts.sum())
    if count == 0:
        return math.nan
    scale = 2.0 / unit  # exact: a power of two
    reach = max(centre - float(values[0]), float(values[-1]) - centre) * scale
    if not (reach <= _COUNTED_MAD_RANGE and (centre * scale).is_integer()):
        return None
    doubled = np.abs(values * scale - centre * scale)  # exact integers
    cum = np.bincount(doubled.astype(np.intp), weights=counts.astype(np.float64)).cumsum()
    lo, hi = cum.searchsorted(((count - 1) // 2, count // 2), side="right")
    return (float(lo) + float(hi)) / 2.0 / scale


# ---------------------------------------------------------------- background field


def block_percentiles(crop: npt.NDArray[Any], grid: int, thin: int, k: int) -> npt.NDArray[Any]:
    """The ``k``-th smallest value (0-based) of each of the ``grid x grid`` blocks of
    ``crop`` (whose sides are whole multiples of ``grid``), taken from every ``thin``-th row
    and column of the block: a ``(grid, grid)`` array of ``crop``'s dtype."""
    by, bx = crop.shape[0] // grid, crop.shape[1] // grid
    blocks = crop.reshape(grid, by, grid, bx)[:, ::thin, :, ::thin]
    n = blocks.shape[1] * blocks.shape[3]
    values = scratch("field_blocks", (grid, grid, n), crop.dtype)
    values.reshape(grid, grid, blocks.shape[1], blocks.shape[3])[...] = blocks.transpose(0, 2, 1, 3)
    values.partition(k, axis=-1)
    return values[..., k].copy()


@lru_cache(maxsize=1)
def smoothing_kernel() -> npt.NDArray[np.float64]:
    """The (reversed) kernel ``ndimage.gaussian_filter(x, 1.0)`` correlates with."""
    x = np.arange(-4, 5)
    phi = np.exp(-0.5 / 1.0 * x**2)
    return np.asarray((phi / phi.sum())[::-1], dtype=np.float64)


@lru_cache(maxsize=8)
def smoothing_matrix(n: int) -> npt.NDArray[np.float64]:
    """``m`` with ``m @ v == ndimage.correlate1d(v, kernel, mode="nearest")`` for a length-``n``
    vector ``v``: the filter applied to the unit vectors (a linear operator as a matrix).

    Built with numpy the way ndimage's symmetric-kernel loop sums (the centre weight, then the
    pairs of taps at distance ``j`` from ``r`` down to 1, indices clipped to the ends), so it
    equals ``correlate1d(np.eye(n), ...)`` bit for bit (tested) without importing
    ``scipy.ndimage`` (0.2 s of a cold ingest's QC, and of the measuring process's start)."""
    w = smoothing_kernel()
    r = len(w) // 2
    i = np.arange(n)
    m = np.zeros((n, n))
    m[i, i] = w[r]
    pair = np.zeros((n, n))
    for j in range(r, 0, -1):
        pair[:] = 0.0
        np.add.at(pair, (i, np.clip(i + j, 0, n - 1)), 1.0)
        np.add.at(pair, (i, np.clip(i - j, 0, n - 1)), 1.0)
        m += pair * w[r + j]
    m.setflags(write=False)  # shared by every caller (cached)
    return m
