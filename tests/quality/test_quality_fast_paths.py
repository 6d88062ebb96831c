"""The fast paths of the metrics equal reference computations (numpy/scipy, exact arithmetic).

``channel_metrics`` computes on the raw integers where that is exact, shares one pass between
metrics, reads order statistics off counted samples and runs the separable filters as matrix
products: each of these is checked here against a plain computation of the definition.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction

import numpy as np
import pytest
from scipy import ndimage

from quantscope.quality import (
    background,
    channel_metrics,
    focus_laplacian_var,
    focus_local,
    focus_normvar,
    focus_plls,
    foreground_pct,
    percent_at_dtype_max,
    percent_at_max,
    percent_at_min,
)
from quantscope.quality._common import prepare
from quantscope.quality._kernels import counting_sort
from quantscope.quality._ranked import _Ranked
from quantscope.quality._spectrum import _spectrum_layout

pytestmark = pytest.mark.filterwarnings("error")


def _blobs(shape: tuple[int, int], seed: int, dtype: str = "uint16") -> np.ndarray:
    """A smooth random field with noise: structure at every scale, like a real image."""
    rng = np.random.default_rng(seed)
    field = ndimage.gaussian_filter(rng.random(shape), 3.0) * 40_000
    image = 200 + field - field.min() + rng.normal(0, 30, shape)
    if np.dtype(dtype).kind in "ui":
        info = np.iinfo(dtype)
        scale = min(1.0, info.max / 45_000)
        offset = -0.01 * info.max if info.min < 0 else 0.0  # a few negative pixels
        return np.clip(image * scale + offset, info.min, info.max).astype(dtype)
    return image.astype(dtype)


def _full_scale(image: np.ndarray) -> np.ndarray:
    x = image.astype(np.float64)
    return x / np.iinfo(image.dtype).max if image.dtype.kind in "ui" else x


# ---------------------------------------------------------------- variance of the Laplacian

LAPLACIAN_SHAPES = [(1, 1), (1, 37), (37, 1), (3, 50), (17, 23), (64, 80), (130, 97), (600, 2100)]


@pytest.mark.parametrize("shape", LAPLACIAN_SHAPES)
@pytest.mark.parametrize("dtype", ["uint8", "uint16", "int16", "float32", "float64"])
def test_laplacian_var_matches_ndimage(shape: tuple[int, int], dtype: str) -> None:
    # Matrix products in bands of rows (600 x 2100 spans two bands) with reflected borders,
    # on raw integers or on the float working copy: the definition, to float32 precision.
    image = _blobs(shape, seed=sum(shape), dtype=dtype)
    x = _full_scale(image)
    for sigma in (0.0, 0.7, 1.0, 2.0):
        smooth = ndimage.gaussian_filter(x, sigma) if sigma else x
        expected = float(np.var(ndimage.laplace(smooth)))
        got = focus_laplacian_var(image, sigma=sigma)
        assert got == pytest.approx(expected, rel=2e-5, abs=1e-12 * x.var() + 1e-300), sigma


def test_laplacian_var_of_constant_images_is_zero() -> None:
    for image in (np.full((40, 50), 7, np.uint16), np.full((9, 3), 2.5), np.zeros((1, 1))):
        assert focus_laplacian_var(image) == 0.0


# ---------------------------------------------------------------- tile sums (local, normvar)


def _exact_normvar(image: np.ndarray, full_scale: int) -> float:
    values = [int(v) for v in image.ravel()]
    n = len(values)
    total, total_sq = sum(values), sum(v * v for v in values)
    mean = Fraction(total, n)
    var = Fraction(n * total_sq - total * total, n * n)
    return float(var / mean / full_scale)


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "int16"])
def test_normvar_of_integer_images_is_exact(dtype: str) -> None:
    image = _blobs((123, 77), seed=3, dtype=dtype)
    full_scale = np.iinfo(dtype).max
    assert focus_normvar(image) == pytest.approx(_exact_normvar(image, full_scale), rel=1e-15)


@pytest.mark.parametrize(
    ("dtype", "peak", "shape"),
    [
        ("uint16", 4095, (520, 696)),  # 12-bit camera: 32-bit sums of squares
        ("int16", 2000, (130, 97)),  # signed, small: int32
        ("uint16", 65535, (97, 131)),  # full 16-bit range: float64 sums (exact integers)
        ("uint16", 4095, (101, 7000)),  # several bands of tile rows, unequal tile heights
    ],
)
def test_tile_sums_are_exact_in_every_accumulator(dtype: str, peak: int, shape) -> None:
    # 32-bit integers where the sums of squares fit, float64 otherwise; zero rows pad the
    # shorter tile rows: the exact normalized variance and CellProfiler's local score.
    rng = np.random.default_rng(peak)
    lo = -peak // 4 if dtype == "int16" else 0
    image = rng.integers(lo, peak + 1, shape).astype(dtype)
    image[: shape[0] // 3] //= 3  # structure: tiles of different means
    full_scale = np.iinfo(dtype).max
    x = image.astype(np.int64)
    n, total, total_sq = x.size, int(x.sum()), int((x * x).sum())  # exact in int64
    exact = float(Fraction(n * total_sq - total * total, n * n) / Fraction(total, n) / full_scale)
    assert focus_normvar(image) == pytest.approx(exact, rel=1e-15)
    for window in (7, 20):
        expected = _cellprofiler_local(image, window, float(full_scale))
        assert focus_local(image, window=window) == pytest.approx(expected, rel=1e-9)


def test_normvar_of_float_images_has_no_cancellation() -> None:
    # A large offset under small variations: the naive E[x^2] - E[x]^2 would lose them.
    rng = np.random.default_rng(4)
    image = 1e6 + rng.normal(0, 1e-3, (200, 150))
    expected = float(np.var(image) / np.mean(image))
    assert focus_normvar(image) == pytest.approx(expected, rel=1e-8)


def _cellprofiler_local(image: np.ndarray, window: int, full_scale: float) -> float:
    pixels = image.astype(np.float64) / full_scale
    ny, nx = pixels.shape
    i, j = np.mgrid[0:ny, 0:nx]
    m, n = -(-ny // window), -(-nx // window)
    grid = (i * m // ny) * n + (j * n // nx) + 1
    labels = np.arange(1, m * n + 1)
    means = np.asarray(ndimage.mean(pixels, grid, labels))
    squared = (pixels - np.concatenate([[0.0], means])[grid]) ** 2
    sums = np.asarray(ndimage.sum(squared, grid, labels))
    counts = np.asarray(ndimage.sum(np.ones_like(pixels), grid, labels))
    positive = means > 0
    local = sums[positive] / (counts[positive] * means[positive])
    return float(np.var(local) / np.median(local))


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float32", "float64"])
@pytest.mark.parametrize("window", [2, 7, 20, 64])
def test_local_focus_matches_cellprofiler(dtype: str, window: int) -> None:
    image = _blobs((97, 131), seed=window, dtype=dtype)
    full_scale = float(np.iinfo(dtype).max) if image.dtype.kind in "ui" else 1.0
    expected = _cellprofiler_local(image, window, full_scale)
    assert focus_local(image, window=window) == pytest.approx(expected, rel=1e-9)


# ---------------------------------------------------------------- order statistics


def test_counting_sort_is_a_sort() -> None:
    rng = np.random.default_rng(5)
    for dtype, lo, hi in (("uint16", 0, 65536), ("int16", -300, 300), ("uint8", 3, 9)):
        ints = rng.integers(lo, hi, 5000).astype(dtype)
        counted = counting_sort(ints)
        assert counted is not None
        values, counts = counted
        np.testing.assert_array_equal(np.repeat(values, counts), np.sort(ints))
    assert counting_sort(np.zeros(3, np.float32)) is None
    assert counting_sort(np.array([0, 1 << 30], np.int64)) is None


@pytest.mark.parametrize("kind", ["counted", "unit"])
def test_ranked_sample_gives_numpys_order_statistics(kind: str) -> None:
    rng = np.random.default_rng(6)
    for trial in range(200):
        n = int(rng.integers(1, 400))
        if kind == "counted":
            s = np.sort(rng.integers(0, int(rng.integers(1, 60)), n)) * 0.25
            values, counts = np.unique(s, return_counts=True)
        else:
            s = np.sort(rng.normal(0, 1, n))
            values, counts = s, np.ones(n, np.int64)
        r = _Ranked(values, counts.astype(np.int64))
        assert r.n == n
        count = int(rng.integers(1, n + 1))
        first = s[:count]
        assert r.median(0, count) == np.median(first)
        for centre in (float(np.median(first)), float(first[0]), 0.3):
            assert r.mad(count, centre) == np.median(np.abs(first - centre)), (trial, centre)
        if kind == "counted":  # whole multiples of 0.25: the tallied doubled distances
            tallied = _Ranked(values, counts.astype(np.int64), unit=0.25)
            for centre in (float(np.median(first)), float(first[0]), float(first[-1]), 0.3):
                expected = np.median(np.abs(first - centre))
                assert tallied.mad(count, centre) == expected, (trial, centre)
        for q in (0.1, 1.0, 50.0, 99.0, 100.0):
            assert r.percentile(q) == np.percentile(s, q)
        x = float(rng.choice(s))
        assert r.count_le(x) == np.searchsorted(s, x, side="right")


# ---------------------------------------------------------------- background, reference


def _reference_background(image: np.ndarray) -> tuple[float, float, float, float, float]:
    """The sort-based background estimate (mode, median, MAD, noise, signal) in ADU."""
    p = prepare(image)
    s = p.sample()
    n = s.size
    unit = math.ldexp(1.0, -p.exponent) if p.raw.dtype.kind in "ui" else 0.0
    lo, hi = float(s[int(0.001 * (n - 1))]), float(s[math.ceil(0.999 * (n - 1))])
    if hi > lo:
        width = (hi - lo) / 512
        if unit > 0:
            width = max(1.0, math.ceil(width / unit)) * unit
        inside = s[(s >= lo) & (s <= hi)]
        index = ((inside - lo) / width).astype(np.intp)
        counts = np.convolve(np.bincount(index).astype(np.float64), np.ones(3), mode="same")
        peak = int(np.argmax(counts))
        mode = float(np.median(inside[(index >= peak - 1) & (index <= peak + 1)]))
    else:
        mode = lo
    below = s[: int(np.searchsorted(s, mode, side="right"))]
    sigma_left = 1.482602218505602 * float(np.median(mode - below)) if below.size else 0.0
    top = mode + 3.0 * sigma_left
    bg = s[: max(int(np.searchsorted(s, top, side="right")), 1)]
    median = float(np.median(bg))
    mad = float(np.median(np.abs(bg - median)))
    step = max(1, math.ceil(math.sqrt(p.size / 65536)))
    w = p.work if p.work.shape[1] >= 2 else p.work.T
    left = w[::step, 0 : w.shape[1] - 1 : step]
    right = w[::step, 1::step][:, : left.shape[1]]
    keep = (left <= top) & (right <= top)
    diff = (right[keep].astype(np.float64) - left[keep]).ravel()
    centre = float(np.median(diff))
    dev = np.abs(diff - centre)
    sigma_d = 1.482602218505602 * float(np.median(dev))
    clip = max(5.0 * sigma_d, math.ldexp(3.0, -p.exponent)) if unit else 5.0 * sigma_d
    sigma_d = max(sigma_d, float(np.std(diff[dev <= clip])))
    noise = max(sigma_d / math.sqrt(2.0), unit / math.sqrt(12.0))
    signal = float(np.percentile(s, 99.0))
    return tuple(p.to_units(v) for v in (mode, median, mad, noise, signal))  # type: ignore[return-value]


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "int16", "float32"])
def test_background_equals_the_sort_based_estimate(dtype: str) -> None:
    # Counted samples, bisection in sorted runs and counted pixel differences: the same
    # order statistics as sorting and np.median / np.percentile (the noise up to rounding).
    for seed, shape in ((0, (300, 400)), (1, (97, 131)), (2, (700, 500))):
        image = _blobs(shape, seed=seed, dtype=dtype)
        bg = background(image)
        mode, median, mad, noise, signal = _reference_background(image)
        assert (bg.mode, bg.median, bg.mad, bg.signal) == (mode, median, mad, signal)
        assert bg.noise == pytest.approx(noise, rel=1e-13)


def test_foreground_from_raw_integers_equals_the_float_comparison() -> None:
    # Comparing the raw integers with the threshold scaled by 2**exponent is exact.
    image = _blobs((400, 500), seed=8)
    as_float = image.astype(np.float64)  # the same values through the float path
    assert foreground_pct(image) == foreground_pct(as_float)


# ---------------------------------------------------------------- power spectrum


def _reference_plls(image: np.ndarray, max_size: int = 1024) -> float:
    """PLLS in float64 with the full ``rfft2`` and one bincount (the definition)."""
    x = image.astype(np.float64)
    ny, nx = x.shape
    cy, cx = min(ny, max_size), min(nx, max_size)
    y0, x0 = (ny - cy) // 2, (nx - cx) // 2
    crop = x[y0 : y0 + cy, x0 : x0 + cx]
    labels, counts, kmax = _spectrum_layout(cy, cx)
    centred = (crop - crop.mean()) * np.outer(np.hanning(cy), np.hanning(cx))
    spectrum = np.fft.rfft2(centred)
    power = spectrum.real**2 + spectrum.imag**2
    power[:, 1 : (cx + 1) // 2] *= 2.0
    sums = np.bincount(labels, weights=power.ravel(), minlength=kmax + 2)
    signal = sums[2:kmax] - sums[kmax + 1] / counts[kmax + 1] * counts[2:kmax]
    keep = signal > 0
    k = np.log(np.arange(2, kmax, dtype=np.float64)[keep])
    k -= k.mean()
    y = np.log(signal[keep])
    return float(np.dot(k, y - y.mean()) / np.dot(k, k))


@pytest.mark.parametrize("shape", [(64, 64), (97, 131), (520, 696), (300, 301), (1100, 1031)])
@pytest.mark.parametrize("dtype", ["uint16", "float32", "float64"])
def test_plls_matches_a_float64_reference(shape: tuple[int, int], dtype: str) -> None:
    # Two-stage float32 FFT (the second stage only below 0.35 cycle/px, Parseval for the
    # rest), cached 2-D window and bins: the float64 definition to float32 precision.
    image = _blobs(shape, seed=shape[1], dtype=dtype)
    assert focus_plls(image) == pytest.approx(_reference_plls(image), rel=1e-4)


# ---------------------------------------------------------------- whole plane, threads


def test_channel_metrics_are_repeatable_and_thread_safe() -> None:
    # Per-thread scratch buffers and the transient working copy: concurrent calls in
    # threads give exactly the serial values.
    images = [_blobs((260 + 7 * i, 348 - 5 * i), seed=i) for i in range(8)]
    images += [_blobs((200, 230), seed=9, dtype="float32"), _blobs((64, 70), 10, "int16")]
    serial = [channel_metrics(im) for im in images]
    assert [channel_metrics(im) for im in images] == serial
    with ThreadPoolExecutor(4) as pool:
        for _ in range(3):
            threaded = list(pool.map(channel_metrics, images))
            for a, b in zip(threaded, serial, strict=True):
                assert a.keys() == b.keys()
                for name in a:
                    assert a[name] == b[name] or (math.isnan(a[name]) and math.isnan(b[name]))


def test_large_planes_count_their_extremes_once_for_all_saturation_metrics() -> None:
    # channel_metrics counts the pixels at the extremes once and passes the counts to the
    # saturation metrics: the same percentages as the functions that count them alone.
    image = _blobs((2048, 2100), seed=12)
    image[:40, :50] = image.max()
    image[100:130, 7] = image.min()
    m = channel_metrics(image)
    assert m["saturation_pct_at_max"] == percent_at_max(image) > 0.04
    assert m["pct_at_min"] == percent_at_min(image) > 0.0
    assert m["saturation_pct_at_dtype_max"] == percent_at_dtype_max(image)
    assert m["intensity_mean"] == float(Fraction(int(image.sum(dtype=np.int64)), image.size))


def test_integer_planes_build_the_working_copy_only_on_demand() -> None:
    image = _blobs((50, 60), seed=11)
    p = prepare(image)
    assert p._work is None
    np.testing.assert_array_equal(p.work, np.ldexp(image.astype(np.float32), -p.exponent))
    assert p._work is not None


@pytest.mark.parametrize("peak", [4095, 32767, 65535])
def test_binned_plane_is_the_exact_block_mean(peak: int) -> None:
    # Exact integer sums of the blocks, scaled by a power of two: odd sizes, views with an odd
    # start column and the full range alike.
    from quantscope.quality._common import binned

    rng = np.random.default_rng(peak)
    image = rng.integers(0, peak + 1, (131, 203)).astype(np.uint16)
    for view in (image, image[:, :202], image[1:, 1:], np.ascontiguousarray(image[:130, :200])):
        p = prepare(view)
        ny, nx = view.shape[0] // 2 * 2, view.shape[1] // 2 * 2
        x = view[:ny, :nx].astype(np.float64)
        expected = (x[0::2, 0::2] + x[1::2, 0::2] + x[0::2, 1::2] + x[1::2, 1::2]) / 4
        got = binned(p).work.astype(np.float64)
        np.testing.assert_array_equal(np.ldexp(got, p.exponent), expected)


def test_padded_blocks_reflect_like_ndimage() -> None:
    # Slices where the reflection runs straight, gathers where it turns back (narrow images);
    # windows overlapping the image (as the Laplacian's bands do) across any of its borders.
    from quantscope.quality._kernels import padded_block as _padded_block
    from quantscope.quality._kernels import reflect as _reflect

    rng = np.random.default_rng(13)
    for ny, nx in ((1, 1), (2, 3), (7, 5), (40, 31), (260, 348)):
        w = rng.random((ny, nx)).astype(np.float32)
        for row0, col0, rows, cols in ((-5, -5, ny + 10, nx + 10), (-3, 2, 9, 30), (4, -6, 50, 8)):
            if not (row0 < ny and col0 < nx and row0 + rows > 0 and col0 + cols > 0):
                continue
            out = np.full((rows, cols), np.nan, np.float32)
            _padded_block(w, row0, col0, out)
            r = _reflect(np.arange(row0, row0 + rows), ny)
            c = _reflect(np.arange(col0, col0 + cols), nx)
            np.testing.assert_array_equal(out, w[np.ix_(r, c)])


def test_noise_pairs_never_read_a_counting_buffer_another_plane_overwrote() -> None:
    # The noise pairs of plane A read A's own pixels: a counting sort of plane B (same
    # shape, the same scratch buffer) in between changes nothing.
    from quantscope.quality._background import _integer_diffs
    from quantscope.quality._common import SAMPLE_TARGET

    a = _blobs((600, 700), seed=1)
    b = _blobs((600, 700), seed=2)
    step = max(1, math.ceil(math.sqrt(a.size / SAMPLE_TARGET)))  # the noise estimate's step
    assert step > 1
    fresh = prepare(a)
    fresh.counted_sample()
    expected = _integer_diffs(fresh, math.inf, step)
    pa, pb = prepare(a), prepare(b)
    pa.counted_sample()
    pb.counted_sample()  # the same buffer, now holding B's offsets
    got = _integer_diffs(pa, math.inf, step)
    assert expected is not None and got is not None
    np.testing.assert_array_equal(got.values, expected.values)
    np.testing.assert_array_equal(got.counts, expected.counts)


def test_the_smoothing_matrix_is_ndimages_correlation_bit_for_bit() -> None:
    """The background field's Gaussian (built with numpy, without importing scipy.ndimage)
    equals ``ndimage.correlate1d`` of the unit vectors exactly, ends included."""
    from scipy import ndimage

    from quantscope.quality._kernels import smoothing_kernel as _smoothing_kernel
    from quantscope.quality._kernels import smoothing_matrix as _smoothing_matrix

    for n in [*range(1, 24), 31, 64, 129, 257, 512]:
        ref = np.zeros((n, n))
        ndimage.correlate1d(np.eye(n), _smoothing_kernel(), 0, ref, "nearest", 0.0, 0)
        assert np.array_equal(_smoothing_matrix(n), ref), n


# ---------------------------------------------------------------- pixel pairs, scratch


def _plain_pair_differences(image: np.ndarray, top: int, step: int) -> tuple[list, list]:
    """Distinct differences (right - left) of the adjacent pixel pairs both at most ``top``,
    and their counts, in raw units: np.unique of the plain differences."""
    left = image[::step, 0 : image.shape[1] - 1 : step].astype(np.int64)
    right = image[::step, 1::step][:, : left.shape[1]].astype(np.int64)
    keep = (left <= top) & (right <= top)
    values, counts = np.unique(right[keep] - left[keep], return_counts=True)
    return values.tolist(), counts.tolist()


@pytest.mark.parametrize("dtype", ["uint16", "uint8", "int16"])
def test_pair_differences_counted_jointly_equal_the_plain_count(dtype: str) -> None:
    # The counts of the differences, pairs above the limit set aside: the same counts as
    # np.unique of the kept pairs' differences, at every limit.
    from quantscope.quality._background import _integer_diffs
    from quantscope.quality._common import SAMPLE_TARGET

    rng = np.random.default_rng(21)
    info = np.iinfo(dtype)
    for shape, base, noise in (((300, 400), 100, 3), ((97, 131), 40, 1), ((600, 700), 900, 40)):
        image = rng.normal(base, noise, shape)
        image[: shape[0] // 4, : shape[1] // 3] += 8 * noise + 20  # bright "cells"
        image = np.clip(image + (info.min if info.min < 0 else 0) // 2, info.min, info.max)
        image = image.astype(dtype)
        p = prepare(image)
        step = max(1, math.ceil(math.sqrt(p.size / SAMPLE_TARGET)))
        lo = int(image.min())
        for top in (lo - 1, lo, lo + 2, lo + noise, lo + 3 * noise, int(image.max()) - 1, None):
            p = prepare(image)
            p.counted_sample()  # the left pixels, as _background leaves them
            limit = math.inf if top is None else math.ldexp(top, -p.exponent)
            ranked = _integer_diffs(p, limit, step)
            assert ranked is not None
            got_values = [int(v) for v in np.ldexp(ranked.values, p.exponent)]
            expected = _plain_pair_differences(image, info.max if top is None else top, step)
            assert (got_values, ranked.counts.tolist()) == expected, (shape, top)


def test_scratch_reuses_its_buffers() -> None:
    from quantscope.quality._kernels import scratch

    a = scratch("test_slot", (3, 4), np.float32)
    assert scratch("test_slot", (3, 4), np.float32) is a
    big = scratch("test_slot", (100, 100), np.float64)  # a larger buffer for the slot
    assert big.shape == (100, 100) and big.dtype == np.float64
    again = scratch("test_slot", (3, 4), np.float32)
    assert again is not a and np.shares_memory(again, big)  # no view of the former buffer
    huge = scratch("test_slot", (1 << 23,), np.float64)  # beyond the pool: a fresh array
    assert not np.shares_memory(huge, big)


def test_uniformity_of_field_sums_like_np_mean() -> None:
    from quantscope.quality._illumination import uniformity_of_field

    rng = np.random.default_rng(24)
    for trial in range(300):
        shape = tuple(int(n) for n in rng.integers(1, 10, 2))
        field = rng.normal(1.0, 0.3, shape) * 10.0 ** int(rng.integers(-6, 6))
        clipped = np.maximum(field, 0.0)
        ny, nx = shape
        centre = float(np.mean(clipped[(ny - 1) // 2 : ny // 2 + 1, (nx - 1) // 2 : nx // 2 + 1]))
        corners = float(np.mean([clipped[0, 0], clipped[0, -1], clipped[-1, 0], clipped[-1, -1]]))
        top = float(clipped.max())
        ratio, flatness = uniformity_of_field(field)
        expected_ratio = corners / centre if centre > 0 else math.nan
        expected_flat = float(clipped.min()) / top if top > 0 else math.nan
        for got, want in ((ratio, expected_ratio), (flatness, expected_flat)):
            assert got == want or (math.isnan(got) and math.isnan(want)), trial


def _reference_field_grid(image: np.ndarray) -> np.ndarray:
    """The background field's fit loop as first written (np.median of each set, the weighted
    smoothing as a function of its own): the grid the inline loop must give bit for bit."""
    from quantscope.quality._field import _design, _fit
    from quantscope.quality._kernels import smoothing_matrix as _smoothing_matrix

    p = prepare(image)
    sub = p.raw[::2, ::2] if max(image.shape) > 512 else p.raw
    grid = 8
    by, bx = sub.shape[0] // grid, sub.shape[1] // grid
    y0, x0 = (sub.shape[0] - by * grid) // 2, (sub.shape[1] - bx * grid) // 2
    crop = sub[y0 : y0 + by * grid, x0 : x0 + bx * grid]
    thin = 2 if by >= 16 and bx >= 16 else 1
    blocks = crop.reshape(grid, by, grid, bx)[:, ::thin, :, ::thin].transpose(0, 2, 1, 3)
    values = blocks.reshape(grid, grid, -1)
    k = int(5.0 / 100.0 * (values.shape[-1] - 1))
    low = np.ldexp(np.partition(values, k, axis=-1)[..., k].astype(np.float64), -p.exponent)
    design = _design(grid)
    s = _smoothing_matrix(grid)

    def smooth(v: np.ndarray, w: np.ndarray) -> np.ndarray:
        both = np.stack([v * w, w])
        num, den = s @ both @ s.T
        return num / np.maximum(den, 1e-6)

    level = float(np.median(low))
    keep = low <= level
    field = low
    for _ in range(6):
        trend = (design @ _fit(design, low.ravel() - level, keep.ravel())).reshape(8, 8) + level
        field = trend + smooth(low - trend, keep.astype(np.float64))
        resid = low - field
        spread = 1.482602218505602 * float(np.median(np.abs(resid[keep])))
        spread = max(spread, 0.01 * abs(float(np.median(low[keep]))))
        new_keep = resid <= 3.0 * spread
        if np.count_nonzero(new_keep) < 12 or np.array_equal(new_keep, keep):
            break
        keep = new_keep
    return field


def test_background_field_loop_equals_its_plain_form(synth_field) -> None:
    from quantscope.quality._field import plane_field

    rng = np.random.default_rng(25)
    images = [synth_field(size=256, seed=s, vignetting=v)[0] for s, v in ((0, 0.0), (1, 0.6))]
    images += [_blobs((520, 696), seed=26), rng.poisson(100, (300, 200)).astype(np.uint16)]
    for image in images:
        field = plane_field(prepare(image))
        assert field is not None
        np.testing.assert_array_equal(field.grid, _reference_field_grid(image))
