"""Illumination: per-image uniformity, per-plate profiles and flat-field correction."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import ndimage

from quantscope.errors import InvalidInput
from quantscope.quality import (
    QCThresholds,
    apply_flatfield,
    channel_metrics,
    check_limits,
    estimate_illumination_profile,
    illumination_uniformity,
)

pytestmark = pytest.mark.filterwarnings("error")


def _flag_metrics(metrics: dict[str, float]) -> set[str]:
    return {f.metric for f in check_limits(metrics, QCThresholds())}


def _radial(shape: tuple[int, int], strength: float) -> np.ndarray:
    """``1 - strength * (r / r_corner)**2``, the synthetic generator's vignetting."""
    y = (np.arange(shape[0]) - (shape[0] - 1) / 2) ** 2
    x = (np.arange(shape[1]) - (shape[1] - 1) / 2) ** 2
    return 1.0 - strength * (y[:, None] + x[None, :]) / (y.max() + x.max())


def test_uniformity_of_an_even_and_a_vignetted_field() -> None:
    rng = np.random.default_rng(0)
    even = 1000 + 10 * rng.standard_normal((300, 400))
    ratio, flatness = illumination_uniformity(even)
    assert ratio == pytest.approx(1.0, abs=0.02)
    assert flatness > 0.95
    vignetted = even * _radial(even.shape, 0.5)
    ratio, flatness = illumination_uniformity(vignetted)
    assert 0.55 < ratio < 0.75
    assert flatness < ratio
    # An offset (e.g. the camera bias) dilutes the falloff unless it is given.
    ratio_offset, _ = illumination_uniformity(vignetted + 1000)
    assert ratio_offset > 0.75
    assert illumination_uniformity(vignetted + 1000, offset=1000)[0] == pytest.approx(
        ratio, abs=1e-9
    )
    with pytest.raises(InvalidInput, match="offset"):
        illumination_uniformity(even, offset=math.nan)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_vignetting_knob(synth_field, seed: int) -> None:
    for channel in (0, 1):
        ratios = [
            channel_metrics(synth_field(seed=seed, vignetting=v)[channel])[
                "illum_corner_center_ratio"
            ]
            for v in (0.0, 0.3, 0.5, 0.7)
        ]
        assert all(a > b for a, b in itertools.pairwise(ratios)), ratios
        assert ratios[0] > 0.9
        strong = channel_metrics(synth_field(seed=seed, vignetting=0.7)[channel])
        assert "illum_corner_center_ratio" in _flag_metrics(strong)


@pytest.mark.slow
def test_clean_synthetic_plates_have_no_illumination_flag(tmp_path) -> None:
    # The default synthetic plate (2x3, 2 fields, 256 px, DAPI + GFP) for seeds 0-4: the
    # cytoplasmic GFP stain covers large parts of the field; the background field must not
    # follow it (it did: corner/centre ratios down to 0.45). The vignetting knob still fires
    # (test_vignetting_knob).
    import tifffile

    from quantscope.synth import SynthOptions, synth_plate

    illumination = {"illum_corner_center_ratio", "illum_flatness"}
    ratios = []
    for seed in range(5):
        plate = synth_plate(tmp_path / str(seed), SynthOptions(seed=seed))
        for field in plate.fields:
            for path in field.images:
                m = channel_metrics(tifffile.imread(path))
                assert not illumination & _flag_metrics(m), (seed, path.name, m)
                ratios.append(m["illum_corner_center_ratio"])
    assert len(ratios) == 5 * 12 * 2 and min(ratios) > 0.9


def test_cellprofiler_example_uneven_illumination_is_detected(illumination_example) -> None:
    metrics = [channel_metrics(image) for image in illumination_example]
    assert len(metrics) == 72
    flagged = [m for m in metrics if {"illum_corner_center_ratio"} & _flag_metrics(m)]
    assert len(flagged) == len(metrics)
    assert np.median([m["illum_corner_center_ratio"] for m in metrics]) < 0.75


def _centre_and_corners(field: np.ndarray) -> tuple[float, float]:
    ny, nx = field.shape
    cy, cx = ny // 2, nx // 2
    centre = float(field[cy - ny // 8 : cy + ny // 8, cx - nx // 8 : cx + nx // 8].mean())
    k = ny // 8
    corners = float(np.mean([field[:k, :k], field[:k, -k:], field[-k:, :k], field[-k:, -k:]]))
    return centre, corners


def _roughness(field: np.ndarray) -> float:
    """Largest second difference, relative to the mean (0 for a plane)."""
    d2y = np.abs(np.diff(field, 2, axis=0)).max()
    d2x = np.abs(np.diff(field, 2, axis=1)).max()
    return float(max(d2y, d2x) / field.mean())


def test_cellprofiler_example_profile_is_smooth_and_brighter_in_the_centre(
    illumination_example,
) -> None:
    profile = estimate_illumination_profile(illumination_example)
    flat = profile.flat
    assert flat.shape == illumination_example[0].shape and flat.dtype == np.float32
    assert profile.n_images == 72
    assert float(flat.mean()) == pytest.approx(1.0, abs=1e-4)
    centre, corners = _centre_and_corners(flat)
    assert centre > 1.1 > 0.8 > corners
    assert profile.corner_center_ratio < 0.75
    assert _roughness(flat) < 1e-4  # smooth at the pixel scale
    assert np.all(np.isfinite(flat)) and flat.min() > 0
    # The Gaussian variant agrees on the shape.
    gaussian = estimate_illumination_profile(illumination_example, smoothing="gaussian")
    assert np.corrcoef(gaussian.flat.ravel(), flat.ravel())[0, 1] > 0.95
    # Correcting with the profile evens out the illumination of a single image.
    corrected = apply_flatfield(illumination_example[0], flat)
    before = illumination_uniformity(illumination_example[0])[0]
    after = illumination_uniformity(corrected)[0]
    assert abs(after - 1.0) < abs(before - 1.0)


def test_profile_recovers_synthetic_vignetting(synth_field) -> None:
    images = [synth_field(seed=s, vignetting=0.5)[0] for s in range(24)]
    truth = _radial(images[0].shape, 0.5)
    truth = truth / truth.mean()
    # The camera offset (100 ADU) is not illuminated: subtracting it gives the true falloff.
    profile = estimate_illumination_profile(images, dark=100.0)
    assert np.abs(profile.flat - truth).max() < 0.06
    assert profile.corner_center_ratio == pytest.approx(0.5, abs=0.03)
    # Without it the offset dilutes the estimated falloff.
    without_dark = estimate_illumination_profile(images)
    assert without_dark.corner_center_ratio > profile.corner_center_ratio + 0.1


def test_profile_estimates_a_dark_field() -> None:
    # Cells (blobs of ~1000 ADU) cover half of each field, at random places, on an unlit
    # background: every pixel is dark in some images and lit in others.
    rng = np.random.default_rng(7)
    shape = (96, 128)
    dark = 100.0 + 20.0 * np.linspace(0.0, 1.0, shape[1])[None, :] * np.ones((shape[0], 1))
    flat = _radial(shape, 0.4)
    flat = flat / flat.mean()
    images = []
    for _ in range(40):
        blobs = ndimage.gaussian_filter(rng.standard_normal(shape), 4.0) > 0
        content = 1000.0 * blobs
        images.append(dark + flat * content + rng.normal(0.0, 2.0, shape))
    profile = estimate_illumination_profile(images, dark="estimate", percentile=75)
    assert profile.dark is not None
    assert np.abs(profile.dark - dark).max() < 6.0
    assert np.corrcoef(profile.flat.ravel(), flat.ravel())[0, 1] > 0.95


def test_apply_flatfield() -> None:
    flat = np.full((4, 5), 2.0, np.float32)
    image = np.arange(20, dtype=np.uint16).reshape(4, 5)
    out = apply_flatfield(image, flat, dark=1.0)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, (image - 1.0) / 2.0)
    stack = np.stack([image, image])
    assert apply_flatfield(stack, flat).shape == (2, 4, 5)
    with pytest.raises(InvalidInput, match="shape"):
        apply_flatfield(image, np.ones((5, 4)))
    with pytest.raises(InvalidInput, match="positive"):
        apply_flatfield(image, np.zeros((4, 5)))
    with pytest.raises(InvalidInput, match="dark"):
        apply_flatfield(image, flat, dark=np.ones((2, 2)))


def test_profile_bad_input() -> None:
    with pytest.raises(InvalidInput, match="no image"):
        estimate_illumination_profile([])
    with pytest.raises(InvalidInput, match="differs"):
        estimate_illumination_profile([np.ones((8, 8)), np.ones((9, 8))])
    with pytest.raises(InvalidInput, match="percentile"):
        estimate_illumination_profile([np.ones((8, 8))], percentile=120)
    with pytest.raises(InvalidInput, match="smoothing"):
        estimate_illumination_profile([np.ones((8, 8))], smoothing="spline")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="positive mean"):
        estimate_illumination_profile([np.zeros((8, 8))])
    with pytest.raises(InvalidInput, match="dark"):
        estimate_illumination_profile([np.ones((8, 8))], dark="auto")  # type: ignore[arg-type]
    # A single tiny constant image is fine: a flat profile.
    profile = estimate_illumination_profile(np.ones((1, 8, 8)))
    np.testing.assert_allclose(profile.flat, 1.0, atol=1e-5)
