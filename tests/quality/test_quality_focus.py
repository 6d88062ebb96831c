"""Focus metrics: definitions, synthetic focus series, z-stacks, and the real BBBC images."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import ndimage

from quantscope.errors import InvalidInput
from quantscope.quality import (
    METRICS,
    channel_metrics,
    focus_laplacian_var,
    focus_local,
    focus_normvar,
    focus_plls,
    stack_metrics,
)

pytestmark = pytest.mark.filterwarnings("error")

FOCUS = [name for name, info in METRICS.items() if info.category == "focus"]
CROSS_FIELD_FOCUS = [name for name in FOCUS if METRICS[name].cross_field]
BLURS = (0.0, 1.0, 2.0, 4.0, 8.0)


# ---------------------------------------------------------------- definitions


def test_normvar_is_cellprofilers_focus_score() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 4096, (40, 50)).astype(np.uint16)
    scaled = image / 65535.0
    expected = np.sum((scaled - scaled.mean()) ** 2) / (scaled.size * scaled.mean())
    assert focus_normvar(image) == pytest.approx(expected, rel=1e-9)
    # With the detector's bit depth the full scale is 4095 instead of 65535.
    assert focus_normvar(image, significant_bits=12) == pytest.approx(
        expected * 65535 / 4095, rel=1e-9
    )


def _cellprofiler_local_focus(image: np.ndarray, window: int) -> float:
    """LocalFocusScore as CellProfiler's MeasureImageQuality computes it (label-based)."""
    pixels = image.astype(np.float64) / 65535.0
    shape = pixels.shape
    i, j = np.mgrid[0 : shape[0], 0 : shape[1]].astype(float)
    m, n = (np.array(shape) + window - 1) // window
    i = (i * float(m) / float(shape[0])).astype(int)
    j = (j * float(n) / float(shape[1])).astype(int)
    grid = i * n + j + 1
    labels = np.arange(1, m * n + 1)
    means = np.asarray(ndimage.mean(pixels, grid, labels))
    squared = (pixels - np.concatenate([[0.0], means])[grid]) ** 2
    sums = np.asarray(ndimage.sum(squared, grid, labels))
    counts = np.asarray(ndimage.sum(np.ones(shape), grid, labels))
    local = sums / (counts * means)
    return float(np.var(local) / np.median(local))


@pytest.mark.parametrize("shape", [(100, 100), (97, 131), (20, 20), (45, 7)])
def test_local_focus_matches_cellprofiler(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(1)
    image = (1000 + 200 * rng.standard_normal(shape)).clip(1, None).astype(np.uint16)
    expected = _cellprofiler_local_focus(image, 20)
    assert focus_local(image) == pytest.approx(expected, rel=1e-6)


def test_laplacian_var_matches_ndimage() -> None:
    rng = np.random.default_rng(2)
    image = rng.random((64, 80))
    for sigma in (0.0, 1.0, 2.0):
        smooth = ndimage.gaussian_filter(image, sigma) if sigma else image
        expected = float(np.var(ndimage.laplace(smooth)))
        assert focus_laplacian_var(image, sigma=sigma) == pytest.approx(expected, rel=1e-5)


def test_plls_of_a_power_law_image_recovers_its_slope() -> None:
    # Noise-free 1/f**a image: the annulus sums fall as k**(1 - 2a) (sum over ~2 pi k
    # coefficients of power k**-2a); the Hann window blurs the spectrum only slightly.
    n = 256
    rng = np.random.default_rng(3)
    fy = np.fft.fftfreq(n)[:, None]
    fx = np.fft.fftfreq(n)[None, :]
    f = np.hypot(fy, fx)
    f[0, 0] = 1.0
    spectrum = rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n))
    image = np.real(np.fft.ifft2(spectrum * f**-1.5))
    assert focus_plls(image) == pytest.approx(1 - 2 * 1.5, abs=0.25)


def test_plls_crops_large_images_and_validates_max_size() -> None:
    rng = np.random.default_rng(4)
    image = ndimage.gaussian_filter(rng.random((300, 300)), 2.0)
    cropped = focus_plls(image, max_size=128)
    assert cropped == pytest.approx(focus_plls(image[86:214, 86:214]), rel=1e-6)
    with pytest.raises(InvalidInput, match="max_size"):
        focus_plls(image, max_size=8)
    with pytest.raises(InvalidInput, match="window"):
        focus_local(image, window=1)
    with pytest.raises(InvalidInput, match="sigma"):
        focus_laplacian_var(image, sigma=-1.0)


# ---------------------------------------------------------------- synthetic focus series


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_focus_metric_falls_monotonically_with_blur(synth_field, seed: int) -> None:
    for channel in (0, 1):
        series = [channel_metrics(synth_field(seed=seed, blur=b)[channel]) for b in BLURS]
        for name in FOCUS:
            values = [m[name] for m in series]
            assert all(np.isfinite(values)), (name, values)
            assert all(a > b for a, b in itertools.pairwise(values)), (
                name,
                channel,
                values,
            )


def test_stack_metrics_finds_the_focal_plane(synth_field) -> None:
    blurs = (6.0, 3.0, 1.0, 0.0, 1.5, 4.0)
    stack = np.stack([synth_field(seed=5, blur=b)[0] for b in blurs])
    for metric in FOCUS:
        best, per_plane = stack_metrics(stack, metric=metric)
        assert best == 3, (metric, per_plane)
        assert per_plane.shape == (6,) and per_plane.dtype == np.float64


def test_stack_metrics_edge_cases() -> None:
    flat = np.zeros((3, 16, 16), np.uint16)
    best, per_plane = stack_metrics(flat)
    assert best == -1 and np.isnan(per_plane).all()
    best, per_plane = stack_metrics(np.arange(64, dtype=np.uint16).reshape(8, 8))
    assert best == 0 and per_plane.shape == (1,)
    with pytest.raises(InvalidInput, match="metric"):
        stack_metrics(flat, metric="sharpness")
    with pytest.raises(InvalidInput, match="z-stack"):
        stack_metrics(np.zeros((2, 2, 4, 4)))


# ---------------------------------------------------------------- real images


def _scores(images: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    return {name: channel_metrics(image) for name, image in images.items()}


@pytest.fixture(scope="module")
def real_scores(real_focus_sets) -> dict[str, dict[str, dict[str, float]]]:
    return {group: _scores(images) for group, images in real_focus_sets.items()}


def test_real_out_of_focus_fields_score_below_every_in_focus_field(real_scores) -> None:
    out = real_scores["out_of_focus"]
    assert len(out) == 12
    for name in CROSS_FIELD_FOCUS:
        worst_blurred = max(m[name] for m in out.values())
        assert math.isfinite(worst_blurred), name
        for group in ("in_focus_z10", "bbbc039"):
            values = [m[name] for m in real_scores[group].values() if math.isfinite(m[name])]
            assert values, (name, group)
            # Strict separation: the sharpest blurred field is below the blurriest sharp one.
            assert worst_blurred < min(values), (name, group, worst_blurred, min(values))


def test_real_empty_field_has_no_focus_value(real_scores) -> None:
    # BBBC039 F13 s7 has no nucleus (its label image is all background): it is flagged as
    # empty and focus is undefined rather than "sharp" or "blurry".
    empties = {k: m for k, m in real_scores["bbbc039"].items() if m["is_empty"]}
    assert [k[:14] for k in empties] == ["IXMtest_F13_s7"]
    for metric in FOCUS:
        assert math.isnan(next(iter(empties.values()))[metric])


def test_normalized_variance_is_documented_as_within_field_only(real_scores) -> None:
    # CellProfiler's FocusScore follows the amount of content: across different fields it
    # does not separate the real blurred fields from every sharp one, so it is not a
    # cross-field focus metric (only for z-stacks), though it still ranks the groups.
    info = METRICS["focus_normvar"]
    assert not info.cross_field
    assert "Within one field only" in info.description
    blurred = [m["focus_normvar"] for m in real_scores["out_of_focus"].values()]
    sharp = [
        m["focus_normvar"]
        for group in ("in_focus_z10", "bbbc039")
        for m in real_scores[group].values()
        if math.isfinite(m["focus_normvar"])
    ]
    assert max(blurred) > min(sharp)  # no strict separation on real data ...
    assert np.median(blurred) < np.median(sharp)  # ... but the groups are ordered
