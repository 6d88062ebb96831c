"""Bad and unusual input: every metric returns a number or a documented NaN, never a warning."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from quantscope.errors import InvalidInput
from quantscope.quality import (
    METRICS,
    background,
    channel_metrics,
    dynamic_range_used,
    focus_laplacian_var,
    focus_local,
    focus_normvar,
    focus_plls,
    foreground_pct,
    illumination_uniformity,
    intensity_range,
    is_empty,
    percent_at_dtype_max,
    percent_at_max,
    percent_at_min,
    signal_to_noise,
    stack_metrics,
)

pytestmark = pytest.mark.filterwarnings("error")

SINGLE = [
    focus_plls,
    focus_normvar,
    focus_local,
    focus_laplacian_var,
    percent_at_max,
    percent_at_min,
    percent_at_dtype_max,
    dynamic_range_used,
    signal_to_noise,
    foreground_pct,
]


def _all_metrics(image: np.ndarray) -> dict[str, float]:
    """channel_metrics and every single-metric function, with warnings as errors."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = channel_metrics(image)
        assert list(out) == list(METRICS)
        assert all(isinstance(v, float) for v in out.values())
        for fn in SINGLE:
            value = fn(image)
            assert isinstance(value, float), fn.__name__
        assert all(isinstance(v, float) for v in illumination_uniformity(image))
        assert all(isinstance(v, float) for v in intensity_range(image))
        assert isinstance(is_empty(image), bool)
        background(image)
        stack_metrics(image[None])
    return out


def _rng_image(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    image = rng.poisson(100, shape).astype(np.float64)
    image[shape[0] // 3 : shape[0] // 2, shape[1] // 3 : shape[1] // 2] += 5000
    return image


CASES = {
    "zeros_uint16": np.zeros((64, 64), np.uint16),
    "zeros_float": np.zeros((64, 64)),
    "constant_uint8": np.full((64, 64), 17, np.uint8),
    "constant_negative_float": np.full((64, 64), -3.0),
    "all_saturated": np.full((40, 40), 65535, np.uint16),
    "one_pixel": np.array([[5]], np.uint16),
    "one_row": _rng_image((1, 700)).astype(np.uint16),
    "one_column": _rng_image((700, 1)).astype(np.uint16),
    "two_by_two": np.array([[0, 1], [2, 3]], np.uint16),
    "bool": _rng_image((50, 60)) > 200,
    "int8_negative": (_rng_image((60, 60)) % 200 - 100).astype(np.int8),
    "int64_huge": (_rng_image((60, 60)).astype(np.int64) * 2**50),
    "uint64_max": np.full((30, 30), np.iinfo(np.uint64).max, np.uint64),
    "uint32_range": (_rng_image((80, 80)) * 800_000).astype(np.uint32),
    "float16": _rng_image((64, 64)).astype(np.float16),
    "float32_huge": (_rng_image((64, 64)) * 1e34).astype(np.float32),
    "float64_huge": _rng_image((64, 64)) * 1e300,
    "float64_tiny": _rng_image((64, 64)) * 1e-300,
    "float64_dynamic_range": np.where(_rng_image((64, 64)) > 1000, 1e250, 1e-250),
    "negative_floats": _rng_image((64, 64)) - 1e4,
    "all_nan": np.full((32, 32), np.nan),
    "all_inf": np.full((32, 32), np.inf),
    "some_nan_inf": np.where(
        np.random.default_rng(1).random((64, 64)) < 0.1,
        np.nan,
        np.where(np.random.default_rng(2).random((64, 64)) < 0.05, -np.inf, _rng_image((64, 64))),
    ),
    "fortran_order": np.asfortranarray(_rng_image((50, 70)).astype(np.uint16)),
    "strided_view": _rng_image((128, 128)).astype(np.uint16)[::3, ::2],
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_unusual_planes_give_numbers_or_nan(name: str) -> None:
    m = _all_metrics(CASES[name])
    assert 0.0 <= m["pct_nonfinite"] <= 100.0
    assert m["is_empty"] in (0.0, 1.0)
    for key in ("saturation_pct_at_max", "saturation_pct_at_dtype_max", "pct_at_min"):
        assert math.isnan(m[key]) or 0.0 <= m[key] <= 100.0, key


def test_documented_nan_cases() -> None:
    blank = channel_metrics(np.zeros((64, 64), np.uint16))
    assert blank["is_empty"] == 1.0
    assert math.isnan(blank["focus_plls"])  # empty: focus undefined
    assert math.isnan(blank["saturation_pct_at_max"])  # constant: no maximum
    nan = channel_metrics(np.full((16, 16), np.nan))
    assert nan["pct_nonfinite"] == 100.0 and nan["is_empty"] == 1.0
    assert all(math.isnan(v) for k, v in nan.items() if k not in ("pct_nonfinite", "is_empty"))
    partly = channel_metrics(CASES["some_nan_inf"])
    assert 10.0 < partly["pct_nonfinite"] < 20.0
    assert math.isfinite(partly["background_median"])
    assert math.isfinite(partly["intensity_max"])
    # Too small for a power spectrum or an illumination field.
    tiny = channel_metrics(_rng_image((12, 30)).astype(np.uint16))
    assert math.isnan(tiny["focus_plls"])
    assert math.isnan(tiny["illum_corner_center_ratio"])
    assert math.isnan(focus_plls(CASES["one_row"]))
    # Float images have no saturation level unless the bit depth is given.
    assert math.isnan(channel_metrics(_rng_image((64, 64)))["saturation_pct_at_dtype_max"])
    # A non-positive mean leaves the normalized variance undefined.
    assert math.isnan(focus_normvar(CASES["negative_floats"]))


def test_huge_values_keep_their_scale() -> None:
    image = _rng_image((64, 64))
    base = channel_metrics(image)
    scaled = channel_metrics(image * 2.0**600)
    for key in ("focus_plls", "snr", "illum_corner_center_ratio", "foreground_pct"):
        assert scaled[key] == pytest.approx(base[key], rel=1e-6), key
    assert scaled["background_median"] == pytest.approx(base["background_median"] * 2.0**600)
    assert scaled["focus_normvar"] == pytest.approx(base["focus_normvar"] * 2.0**600)
    # A squared quantity beyond the float range is infinite, not an error.
    assert channel_metrics(image * 1e300)["focus_laplacian_var"] == math.inf


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (np.zeros((3, 4, 5)), "2-D"),
        (np.zeros(7), "2-D"),
        (np.zeros((0, 5)), "empty"),
        (np.zeros((4, 4), np.complex64), "pixel type"),
        (np.array([["a", "b"]]), "pixel type"),
        (np.zeros((4, 4), object), "pixel type"),
    ],
)
def test_malformed_input_raises_invalid_input(value: np.ndarray, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        channel_metrics(value)


@pytest.mark.parametrize("bits", [0, 17, -1, 2.5, True, "12"])
def test_bad_significant_bits(bits: object) -> None:
    with pytest.raises(InvalidInput, match="significant_bits"):
        channel_metrics(np.zeros((8, 8), np.uint16), significant_bits=bits)  # type: ignore[arg-type]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    hnp.arrays(
        dtype=st.sampled_from([np.uint8, np.uint16, np.int16, np.float32, np.float64]),
        shape=hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=48),
        elements={"allow_nan": True, "allow_infinity": True},
    )
)
def test_channel_metrics_never_warns_or_raises(image: np.ndarray) -> None:
    m = _all_metrics(image)
    assert m.keys() == METRICS.keys()
    for key, value in m.items():
        assert not math.isnan(value) or key not in ("pct_nonfinite", "is_empty"), key
