"""Saturation, intensity, noise and content metrics, with the synthetic knobs that move them."""

from __future__ import annotations

import math

import numpy as np
import pytest

from quantscope.quality import (
    QCThresholds,
    background,
    channel_metrics,
    check_limits,
    dynamic_range_used,
    foreground_pct,
    intensity_range,
    is_empty,
    percent_at_dtype_max,
    percent_at_max,
    percent_at_min,
    signal_to_noise,
)

pytestmark = pytest.mark.filterwarnings("error")

SEEDS = (0, 1, 2)


def _flagged(metrics: dict[str, float], metric: str) -> str | None:
    """The level ("warn"/"fail") of the default limit flag on ``metric``, or None."""
    for flag in check_limits(metrics, QCThresholds()):
        if flag.metric == metric:
            return flag.level
    return None


def _clean_flags(metrics: dict[str, float]) -> list[str]:
    return [f.message for f in check_limits(metrics, QCThresholds())]


# ---------------------------------------------------------------- definitions


def test_saturation_percentages() -> None:
    image = np.full((10, 10), 100, np.uint16)
    image[0, :5] = 65535
    image[1, :2] = 4095
    image[9, 9] = 7
    assert percent_at_max(image) == pytest.approx(5.0)
    assert percent_at_dtype_max(image) == pytest.approx(5.0)
    assert percent_at_dtype_max(image, significant_bits=12) == pytest.approx(7.0)
    assert percent_at_min(image) == pytest.approx(1.0)
    assert intensity_range(image)[:2] == (7.0, 65535.0)
    assert dynamic_range_used(image) == pytest.approx((65535 - 7) / 65535)


def test_float_images_have_no_dtype_maximum_unless_bits_are_given() -> None:
    image = np.linspace(0.0, 4095.0, 400).reshape(20, 20)
    assert math.isnan(percent_at_dtype_max(image))
    assert math.isnan(dynamic_range_used(image))
    assert percent_at_dtype_max(image, significant_bits=12) == pytest.approx(0.25)
    assert dynamic_range_used(image, significant_bits=12) == pytest.approx(1.0)


def test_background_recovers_level_and_noise_of_sparse_objects() -> None:
    rng = np.random.default_rng(0)
    image = 500.0 + 20.0 * rng.standard_normal((400, 400))
    image[50:90, 50:90] += 3000.0  # a bright object covering 1 % of the field
    image[200:300, 100:300] += 300.0  # a dim one covering 12.5 %
    bg = background(image)
    assert bg.median == pytest.approx(500.0, abs=3.0)
    assert bg.noise == pytest.approx(20.0, rel=0.05)
    assert bg.spread == pytest.approx(20.0, rel=0.1)
    assert signal_to_noise(image) == pytest.approx((bg.signal - bg.median) / bg.noise)


def test_pixel_noise_ignores_smooth_gradients() -> None:
    rng = np.random.default_rng(1)
    ramp = np.linspace(0.0, 400.0, 300)[None, :] * np.ones((300, 1))
    image = 1000.0 + ramp + 10.0 * rng.standard_normal((300, 300))
    bg = background(image)
    assert bg.noise == pytest.approx(10.0, rel=0.05)
    assert bg.spread > 5 * bg.noise  # the spread of the values includes the ramp
    assert foreground_pct(image) == 0.0  # ... and an unevenly lit empty field stays empty


def test_quantized_low_noise_integer_images() -> None:
    rng = np.random.default_rng(2)
    image = np.rint(7 + 0.6 * rng.standard_normal((256, 256))).astype(np.uint8)
    assert 0.45 < background(image).noise < 0.8
    assert is_empty(image)


# ---------------------------------------------------------------- synthetic knobs


@pytest.mark.parametrize("seed", SEEDS)
def test_clean_synthetic_fields_raise_no_flag(synth_field, seed: int) -> None:
    for size in (256, 384):
        image = synth_field(size=size, seed=seed)
        for channel in (0, 1):
            m = channel_metrics(image[channel])
            assert _clean_flags(m) == [], (size, channel)
            assert m["is_empty"] == 0.0


@pytest.mark.parametrize("seed", SEEDS)
def test_saturation_knob(synth_field, seed: int) -> None:
    clean = channel_metrics(synth_field(seed=seed)[0])
    saturated = channel_metrics(synth_field(seed=seed, saturation=0.1)[0])
    assert clean["saturation_pct_at_dtype_max"] == 0.0
    assert saturated["saturation_pct_at_dtype_max"] > 0.5
    assert saturated["saturation_pct_at_max"] == saturated["saturation_pct_at_dtype_max"]
    assert _flagged(saturated, "saturation_pct_at_dtype_max") == "fail"
    assert _flagged(saturated, "saturation_pct_at_max") == "fail"


def test_clipping_below_the_dtype_maximum_is_caught_by_percent_at_max(synth_field) -> None:
    # A 12-bit camera stored as uint16: the clipped pixels are at 4095, not 65535.
    image = np.minimum(synth_field(seed=3, saturation=0.1)[0], 4095)
    m = channel_metrics(image)
    assert m["saturation_pct_at_dtype_max"] == 0.0
    assert _flagged(m, "saturation_pct_at_max") == "fail"
    m12 = channel_metrics(image, significant_bits=12)
    assert _flagged(m12, "saturation_pct_at_dtype_max") == "fail"


@pytest.mark.parametrize("seed", SEEDS)
def test_noise_knob(synth_field, seed: int) -> None:
    # The synthetic camera keeps the mean and scales the noise by 1 / snr. Below snr 0.1 it
    # counts single photons (see background's notes), so the series stops at 0.1.
    for channel in (0, 1):
        series = [
            channel_metrics(synth_field(seed=seed, snr=s)[channel])["snr"] for s in (1.0, 0.3, 0.1)
        ]
        assert series[0] > 2.5 * series[1] > 2.5 * 2.5 * series[2] > 0, series
    cytoplasm = channel_metrics(synth_field(seed=seed, snr=0.1)[1])
    assert _flagged(cytoplasm, "snr") == "warn"
    assert _flagged(channel_metrics(synth_field(seed=seed)[1]), "snr") is None


@pytest.mark.parametrize("seed", SEEDS)
def test_empty_field_knob(synth_field, seed: int) -> None:
    for knobs in ({}, {"vignetting": 0.7}, {"snr": 0.1}, {"dtype": "uint8"}):
        image = synth_field(seed=seed, empty_fraction=1.0, **knobs)
        for channel in (0, 1):
            m = channel_metrics(image[channel])
            assert m["is_empty"] == 1.0, (knobs, channel, m["foreground_pct"])
            assert m["foreground_pct"] < 0.02
            assert _flagged(m, "foreground_pct") == "warn"
            for name in ("focus_plls", "focus_local", "snr", "dynamic_range_used"):
                assert math.isnan(m[name]), name


@pytest.mark.parametrize("seed", SEEDS)
def test_emptiness_follows_the_ground_truth(synth_field, synth_nuclei, seed: int) -> None:
    # Sparse (some fields of density 0.05 hold no cell at all), blurred and confluent fields.
    for knobs in ({"density": 0.05}, {"density": 0.2, "blur": 8.0}, {"density": 3.0}):
        image = synth_field(seed=seed, **knobs)
        has_cells = bool(synth_nuclei(seed=seed, **knobs).any())
        for channel in (0, 1):
            m = channel_metrics(image[channel])
            assert m["is_empty"] == (0.0 if has_cells else 1.0), (knobs, channel)
            if has_cells:
                assert m["foreground_pct"] > 0.3, (knobs, channel)


def test_blank_images_are_empty() -> None:
    for image in (np.zeros((64, 64), np.uint16), np.full((64, 64), 3.5)):
        m = channel_metrics(image)
        assert m["is_empty"] == 1.0
        assert m["foreground_pct"] == 0.0
        assert math.isnan(m["saturation_pct_at_max"])  # constant: no maximum to speak of
        assert math.isnan(m["pct_at_min"])
    assert channel_metrics(np.full((32, 32), 65535, np.uint16))["saturation_pct_at_dtype_max"] == (
        100.0
    )


def test_clipping_at_the_minimum_is_flagged() -> None:
    rng = np.random.default_rng(5)
    image = np.clip(rng.normal(20.0, 15.0, (200, 200)), 0, None).astype(np.uint16)
    image[80:120, 80:120] += 2000
    m = channel_metrics(image)
    assert m["pct_at_min"] > 5.0
    assert _flagged(m, "pct_at_min") == "warn"
