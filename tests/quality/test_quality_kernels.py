"""Each fast kernel of ``quantscope.quality._kernels`` equals a plain reference.

The references are written the obvious way (numpy, ``scipy.ndimage``, Python loops), and
hypothesis draws the inputs: odd and tiny shapes, constant arrays, integers of several widths
and floats, with NaN and infinities where the kernel accepts floats directly.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import ndimage

from quantscope.quality import _kernels as k

pytestmark = pytest.mark.filterwarnings("error")

SETTINGS = settings(max_examples=40)
shapes = st.tuples(st.integers(1, 45), st.integers(1, 45))


def _ints(dtype: str, shape_strategy: st.SearchStrategy = shapes) -> st.SearchStrategy:
    info = np.iinfo(dtype)
    lo = max(int(info.min), -3000)
    hi = min(int(info.max), 100_000)  # int32 too: ranges a counting sort takes
    return hnp.arrays(
        dtype,
        shape_strategy,
        elements=st.integers(lo, hi),
        fill=st.integers(lo, lo + 5),  # long runs of one value, as in a background
    )


def _floats(dtype: str, *, nonfinite: bool, shape_strategy: st.SearchStrategy = shapes):
    elements = st.floats(
        -1e3,
        1e3,
        width=32 if dtype == "float32" else 64,
        allow_nan=False,
        allow_infinity=False,
    )
    if nonfinite:
        elements = elements | st.sampled_from([math.nan, math.inf, -math.inf])
    return hnp.arrays(dtype, shape_strategy, elements=elements, fill=st.just(1.5))


def _same(got: np.ndarray, want: np.ndarray, rtol: float = 0.0) -> None:
    np.testing.assert_allclose(got, want, rtol=rtol, atol=0.0, equal_nan=True)


# ---------------------------------------------------------------- counting sort


@SETTINGS
@given(st.sampled_from(["uint8", "uint16", "int16", "int32"]).flatmap(_ints))
def test_counting_sort_is_np_unique(ints: np.ndarray) -> None:
    counted = k.counting_sort(ints)
    assert counted is not None  # the values span at most 2**18 levels here
    values, counts = np.unique(ints, return_counts=True)
    assert counted[0].tolist() == values.tolist()
    assert counted[1].tolist() == counts.tolist()
    bounded = k.counting_sort(ints, (int(ints.min()) - 3, int(ints.max()) + 2))
    assert bounded is not None
    assert bounded[0].tolist() == values.tolist() and bounded[1].tolist() == counts.tolist()


def test_counting_sort_declines_floats_wide_integers_and_wide_ranges() -> None:
    assert k.counting_sort(np.ones((3, 3), np.float32)) is None
    assert k.counting_sort(np.ones((3, 3), np.int64)) is None
    assert k.counting_sort(np.array([0, 1 << 20], np.int32)) is None
    assert k.counting_sort(np.zeros((0,), np.uint16)) is None


# ---------------------------------------------------------------- 2 x 2 binning


def _reference_bin(a: np.ndarray) -> np.ndarray:
    ny, nx = a.shape[0] // 2 * 2, a.shape[1] // 2 * 2
    x = a[:ny, :nx].astype(np.float64)
    with np.errstate(invalid="ignore"):
        return x.reshape(ny // 2, 2, nx // 2, 2).sum(axis=(1, 3))


two_by_two = st.tuples(st.integers(2, 40), st.integers(2, 40))


@SETTINGS
@given(st.sampled_from(["uint8", "uint16", "int16"]).flatmap(lambda d: _ints(d, two_by_two)))
def test_bin2x2_of_small_integers_is_the_exact_block_sum(ints: np.ndarray) -> None:
    acc = np.int32 if ints.dtype.kind == "i" else np.uint32
    for max_value in (None, int(ints.max())):  # uint16 below 2**15: summed in 16-bit lanes
        for view in (ints, ints[:, 1:], ints[1:, :]):  # odd start columns: no word view
            if min(view.shape) < 2:
                continue
            out = np.empty((view.shape[0] // 2, view.shape[1] // 2), np.float32)
            k.bin2x2(view, acc, 2.0**-18, out, max_value=max_value)  # a power of two: exact
            _same(out.astype(np.float64), _reference_bin(view) * 2.0**-18)


@SETTINGS
@given(
    hnp.arrays(np.uint16, two_by_two, elements=st.integers(0, (1 << 15) - 1)),
    st.sampled_from([1.0, 0.25, 2.0**-17]),
)
def test_bin2x2_in_16_bit_lanes_is_the_exact_block_sum(ints: np.ndarray, factor: float) -> None:
    out = np.empty((ints.shape[0] // 2, ints.shape[1] // 2), np.float32)
    k.bin2x2(ints, np.uint32, factor, out, max_value=int(ints.max()))
    _same(out.astype(np.float64), _reference_bin(ints) * factor)


@SETTINGS
@given(
    st.sampled_from(["float32", "float64"]).flatmap(
        lambda d: _floats(d, nonfinite=True, shape_strategy=two_by_two)
    )
)
def test_bin2x2_of_floats_is_the_block_mean(x: np.ndarray) -> None:
    out = np.empty((x.shape[0] // 2, x.shape[1] // 2), x.dtype)
    with np.errstate(invalid="ignore", over="ignore"):
        k.bin2x2(x, x.dtype.type, 0.25, out)
    rtol = 1e-6 if x.dtype == np.float32 else 1e-14
    ref = _reference_bin(x) * 0.25
    finite = np.isfinite(ref)
    _same(out[finite].astype(np.float64), ref[finite], rtol)
    assert np.array_equal(np.isnan(out[~finite]), np.isnan(ref[~finite]))


def test_bin2x2_of_a_constant_plane_is_the_constant() -> None:
    out = np.empty((3, 5), np.float32)
    k.bin2x2(np.full((7, 11), 1234, np.uint16), np.uint32, 0.25, out)
    assert (out == 1234).all()


# ---------------------------------------------------------------- tile sums


def _reference_tiles(x: np.ndarray, window: int, shift: float = 0.0):
    """Per-tile sums of ``x - shift`` and of its squares (Python loops over the tiles)."""
    pairs, cols, count = k.tile_grid(x.shape, window)
    ends = [*cols[1:].tolist(), x.shape[1]]
    exact = x.dtype.kind in "ui"
    sums = np.empty(count.shape, np.int64 if exact else np.float64)
    squares = np.empty_like(sums)
    for i, (r0, r1) in enumerate(pairs):
        for j, (c0, c1) in enumerate(zip(cols.tolist(), ends, strict=True)):
            tile = x[r0:r1, c0:c1]
            if exact:
                values = [int(v) for v in tile.ravel()]
                sums[i, j] = sum(values)
                squares[i, j] = sum(v * v for v in values)
            else:
                with np.errstate(invalid="ignore", over="ignore"):
                    d = tile.astype(np.float64) - shift
                    sums[i, j] = d.sum()
                    squares[i, j] = (d * d).sum()
    return sums, squares


@given(shapes, st.integers(2, 25))
def test_tile_grid_is_cellprofilers_grid_of_near_equal_tiles(shape, window: int) -> None:
    pairs, cols, count = k.tile_grid(shape, window)
    heights = [b - a for a, b in pairs]
    widths = np.diff([*cols.tolist(), shape[1]]).tolist()
    assert len(heights) == -(-shape[0] // window) and len(widths) == -(-shape[1] // window)
    assert sum(heights) == shape[0] and sum(widths) == shape[1]
    assert max(heights) - min(heights) <= 1 and max(widths) - min(widths) <= 1
    assert count.tolist() == np.outer(heights, widths).tolist()


@SETTINGS
@given(st.sampled_from(["uint8", "uint16", "int16"]).flatmap(_ints), st.integers(2, 25))
def test_integer_tile_sums_are_exact(ints: np.ndarray, window: int) -> None:
    peak = int(np.abs(ints.astype(np.int64)).max())
    sums, squares = k.integer_tile_sums(ints, window, peak)
    ref_sums, ref_squares = _reference_tiles(ints, window)
    assert sums.tolist() == ref_sums.tolist()
    assert squares.tolist() == ref_squares.tolist()


def test_integer_tile_sums_of_tall_tiles_and_full_range_switch_to_float64_exactly() -> None:
    rng = np.random.default_rng(3)
    ints = rng.integers(60000, 65536, (301, 97)).astype(np.uint16)
    for window in (20, 300):  # 32-bit sums of squares fit for short tiles, not for tall ones
        sums, squares = k.integer_tile_sums(ints, window, 65535)
        ref_sums, ref_squares = _reference_tiles(ints, window)
        assert sums.tolist() == ref_sums.tolist() and squares.tolist() == ref_squares.tolist()


@SETTINGS
@given(
    st.sampled_from(["float32", "float64"]).flatmap(lambda d: _floats(d, nonfinite=True)),
    st.integers(2, 25),
    st.floats(-10, 10),
)
def test_float_tile_sums_are_the_tile_sums(x: np.ndarray, window: int, shift: float) -> None:
    with np.errstate(invalid="ignore", over="ignore"):
        sums, squares = k.float_tile_sums(x, window, shift)
    ref_sums, ref_squares = _reference_tiles(x, window, shift)
    scale = float(np.nanmax(np.abs(np.where(np.isfinite(x), x, 0)))) + abs(shift) + 1.0
    for got, want, power in ((sums, ref_sums, 1), (squares, ref_squares, 2)):
        finite = np.isfinite(want)
        assert np.array_equal(np.isnan(got), np.isnan(want))
        assert np.array_equal(got[~finite & ~np.isnan(want)], want[~finite & ~np.isnan(want)])
        np.testing.assert_allclose(got[finite], want[finite], rtol=1e-12, atol=1e-12 * scale**power)


# ---------------------------------------------------------------- smoothed Laplacian


def _reference_laplacian_squares(x: np.ndarray, sigma: float) -> float:
    w = x.astype(np.float64)
    smooth = ndimage.gaussian_filter(w, sigma, mode="reflect") if sigma else w
    lap = ndimage.laplace(smooth, mode="reflect")
    return float(np.sum(lap * lap))


laplacian_shapes = st.tuples(st.integers(1, 70), st.integers(1, 70))


@SETTINGS
@given(
    st.sampled_from(["uint8", "uint16", "int16"]).flatmap(lambda d: _ints(d, laplacian_shapes)),
    st.sampled_from([0.0, 0.7, 1.0, 2.0]),
)
def test_laplacian_squares_of_integers_match_ndimage(ints: np.ndarray, sigma: float) -> None:
    got = k.laplacian_squares(ints, sigma, np.dtype(np.float32))
    want = _reference_laplacian_squares(ints, sigma)
    # float32 products: relative to the energy of the image
    scale = float(np.sum(ints.astype(np.float64) ** 2)) * 64 + 1.0
    assert got == pytest.approx(want, rel=1e-4, abs=1e-6 * scale)


@SETTINGS
@given(
    st.sampled_from(["float32", "float64"]).flatmap(
        lambda d: _floats(d, nonfinite=False, shape_strategy=laplacian_shapes)
    ),
    st.sampled_from([0.0, 1.0, 1.5]),
)
def test_laplacian_squares_of_floats_match_ndimage(x: np.ndarray, sigma: float) -> None:
    dtype = np.dtype(np.float32) if x.dtype == np.float32 else np.dtype(np.float64)
    got = k.laplacian_squares(x, sigma, dtype)
    want = _reference_laplacian_squares(x, sigma)
    scale = float(np.sum(x.astype(np.float64) ** 2)) * 64 + 1.0
    # the Gaussian's weights are ndimage's to float32 precision, whatever the dtype
    rel = 1e-4 if dtype == np.float32 else 1e-5
    assert got == pytest.approx(want, rel=rel, abs=1e-6 * scale)


def test_laplacian_squares_propagate_nan_and_infinity_like_ndimage() -> None:
    for bad in (math.nan, math.inf):
        x = np.ones((20, 30))
        x[5, 7] = bad
        with np.errstate(invalid="ignore"):
            assert math.isnan(k.laplacian_squares(x, 1.0, np.dtype(np.float64)))
            assert math.isnan(_reference_laplacian_squares(x, 1.0))


def test_laplacian_squares_spans_several_stripes_and_bands() -> None:
    x = np.random.default_rng(5).normal(100, 10, (300, 2600)).astype(np.float32)
    got = k.laplacian_squares(x, 1.0, np.dtype(np.float32))
    assert got == pytest.approx(_reference_laplacian_squares(x, 1.0), rel=1e-5)


def test_laplacian_squares_of_a_constant_plane_is_nearly_zero() -> None:
    x = np.full((33, 47), 1000, np.uint16)
    assert abs(k.laplacian_squares(x, 1.0, np.dtype(np.float32))) <= 1e-6 * 1000**2 * x.size


def _reflect_one(i: int, n: int) -> int:
    while not 0 <= i < n:
        i = -i - 1 if i < 0 else 2 * n - 1 - i
    return i


@given(
    st.tuples(st.integers(1, 12), st.integers(1, 12)),
    st.integers(-15, 15),
    st.integers(-15, 15),
    st.integers(1, 30),
    st.integers(1, 30),
)
def test_padded_block_reflects_every_index(shape, row0: int, col0: int, rows: int, cols: int):
    # windows that overlap the plane (as the Laplacian's bands always do)
    row0, col0 = min(row0, shape[0] - 1), min(col0, shape[1] - 1)
    rows, cols = max(rows, 1 - row0), max(cols, 1 - col0)
    w = np.arange(shape[0] * shape[1], dtype=np.float32).reshape(shape)
    out = np.full((rows, cols), np.nan, np.float32)
    k.padded_block(w, row0, col0, out)
    want = [
        [w[_reflect_one(row0 + i, shape[0]), _reflect_one(col0 + j, shape[1])] for j in range(cols)]
        for i in range(rows)
    ]
    assert out.tolist() == want


# ---------------------------------------------------------------- pixel pairs and the MAD


@SETTINGS
@given(st.sampled_from(["uint8", "uint16", "int16"]).flatmap(_ints), st.data())
def test_pair_difference_counts_count_the_kept_differences(ints: np.ndarray, data) -> None:
    if ints.shape[1] < 2:
        ints = ints.T
    if ints.shape[1] < 2:
        return
    left, right = ints[:, :-1], ints[:, 1:]
    lo, hi = int(ints.min()), int(ints.max())
    top = data.draw(st.integers(lo, hi))
    counts = k.pair_difference_counts(left, right, lo, top, hi)
    a, b = left.astype(np.int64), right.astype(np.int64)
    keep = (a <= top) & (b <= top)
    want = np.bincount((b - a)[keep] + (top - lo), minlength=2 * (top - lo) + 1)
    assert counts.tolist() == want.tolist()


@SETTINGS
@given(
    hnp.arrays(np.float64, st.integers(1, 60), elements=st.integers(-50, 50).map(float)),
    st.integers(-60, 60),
)
def test_sorted_mad_is_the_median_of_the_distances(x: np.ndarray, centre: int) -> None:
    x = np.sort(x)
    assert k.sorted_mad(x, float(centre)) == float(np.median(np.abs(x - centre)))


def test_sorted_mad_of_nothing_is_nan() -> None:
    assert math.isnan(k.sorted_mad(np.empty(0), 0.0))


@SETTINGS
@given(
    st.lists(st.integers(-40, 40), min_size=1, max_size=30, unique=True),
    st.data(),
    st.sampled_from([1.0, 0.5, 2.0**-12]),
)
def test_counted_mad_is_the_median_of_the_distances(levels, data, unit: float) -> None:
    values = np.sort(np.array(levels, np.float64)) * unit
    counts = np.array(
        data.draw(st.lists(st.integers(1, 9), min_size=values.size, max_size=values.size)),
        np.int64,
    )
    i, j = data.draw(st.integers(0, values.size - 1)), data.draw(st.integers(0, values.size - 1))
    centre = (values[i] + values[j]) / 2.0  # a value, or the mean of two (as a median is)
    got = k.counted_mad(values, counts, centre, unit)
    assert got == float(np.median(np.abs(np.repeat(values, counts) - centre)))


def test_counted_mad_declines_a_centre_off_the_half_units() -> None:
    values = np.array([0.0, 1.0, 2.0])
    assert k.counted_mad(values, np.array([1, 2, 3]), 0.3, 1.0) is None


# ---------------------------------------------------------------- background field


@SETTINGS
@given(
    st.sampled_from(["uint16", "float32", "float64"]),
    st.integers(1, 8),
    st.integers(1, 6),
    st.integers(1, 6),
    st.integers(1, 2),
    st.data(),
)
def test_block_percentiles_are_each_blocks_kth_value(dtype, grid, by, bx, thin, data) -> None:
    shape = (grid * by, grid * bx)
    if dtype == "uint16":
        crop = data.draw(_ints(dtype, st.just(shape)))
    else:
        crop = data.draw(_floats(dtype, nonfinite=False, shape_strategy=st.just(shape)))
    n = -(-by // thin) * -(-bx // thin)
    kth = data.draw(st.integers(0, n - 1))
    got = k.block_percentiles(crop, grid, thin, kth)
    for i in range(grid):
        for j in range(grid):
            block = crop[i * by : (i + 1) * by : thin, j * bx : (j + 1) * bx : thin]
            assert got[i, j] == np.sort(block, axis=None)[kth]


@pytest.mark.parametrize("n", [1, 2, 5, 8, 9, 17, 64])
def test_smoothing_matrix_is_the_gaussian_of_ndimage(n: int) -> None:
    v = np.random.default_rng(n).normal(size=(n, 3))
    want = ndimage.correlate1d(v, k.smoothing_kernel(), axis=0, mode="nearest")
    np.testing.assert_allclose(k.smoothing_matrix(n) @ v, want, rtol=1e-12, atol=1e-12)
    want_sigma = ndimage.gaussian_filter1d(v, 1.0, axis=0, mode="nearest")
    np.testing.assert_allclose(k.smoothing_matrix(n) @ v, want_sigma, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- sums of squares, scratch


@SETTINGS
@given(
    st.sampled_from(["float32", "float64"]).flatmap(
        lambda d: _floats(
            d, nonfinite=True, shape_strategy=st.tuples(st.integers(1, 5), st.integers(1, 9000))
        )
    )
)
def test_row_squares_is_the_sum_of_squares(x: np.ndarray) -> None:
    with np.errstate(invalid="ignore", over="ignore"):
        got = k.row_squares(x)
        want = float(np.sum(x.astype(np.float64) ** 2))
    if math.isnan(want):
        assert math.isnan(got)
    else:
        assert got == pytest.approx(want, rel=1e-5 if x.dtype == np.float32 else 1e-12)


def test_scratch_buffers_are_per_thread_and_per_slot() -> None:
    from concurrent.futures import ThreadPoolExecutor

    a = k.scratch("kernels_test", (4, 5), np.float64)
    b = k.scratch("kernels_test_other", (4, 5), np.float64)
    assert not np.shares_memory(a, b)
    with ThreadPoolExecutor(1) as pool:
        c = pool.submit(k.scratch, "kernels_test", (4, 5), np.float64).result()
    assert not np.shares_memory(a, c)
