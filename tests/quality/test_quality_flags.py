"""Thresholds, absolute limits, robust outliers within groups, and the pass/warn/fail verdict."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from quantscope.errors import InvalidInput
from quantscope.quality import (
    DEFAULT_LIMITS,
    DEFAULT_OUTLIER_METRICS,
    METRICS,
    Limit,
    QCThresholds,
    channel_metrics,
    check_limits,
    evaluate,
    robust_zscores,
)

pytestmark = pytest.mark.filterwarnings("error")


# ---------------------------------------------------------------- thresholds


def test_defaults_are_documented_and_valid() -> None:
    t = QCThresholds()
    assert dict(t.limits) == dict(DEFAULT_LIMITS)
    assert t.outlier_metrics == DEFAULT_OUTLIER_METRICS
    assert all(METRICS[m].cross_field for m in t.outlier_metrics)
    assert "focus_normvar" not in t.outlier_metrics
    doc = QCThresholds.__doc__ or ""
    for name in t.limits:
        assert f"``{name}``" in doc, name


def test_from_dict_overrides_and_round_trips() -> None:
    t = QCThresholds.from_dict(
        {
            "outlier_warn_z": 4,
            "outlier_fail_z": float("inf"),
            "outlier_metrics": ["focus_plls"],
            "limits": {"snr": {"warn_below": 10}, "illum_flatness": {}},
        }
    )
    assert t.outlier_warn_z == 4.0 and t.outlier_fail_z == math.inf
    assert t.limits["snr"] == Limit(warn_below=10.0)  # replaces the default, fail too
    assert "illum_flatness" not in t.limits  # an empty table removes the limit
    assert t.limits["pct_at_min"] == DEFAULT_LIMITS["pct_at_min"]  # others keep defaults
    assert QCThresholds.from_dict(t.to_dict()) == t


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"outlier_z_warn": 3}, "unknown setting 'outlier_z_warn'; did you mean 'outlier_warn_z'"),
        ({"limits": {"snr_ratio": {}}}, "unknown metric 'snr_ratio'; did you mean 'snr'"),
        ({"limits": {"snr": {"warn_bellow": 3}}}, "did you mean 'warn_below'"),
        ({"limits": {"snr": {"warn_below": "low"}}}, "expected a number"),
        ({"limits": {"snr": {"warn_below": 3, "fail_below": 5}}}, "fail_below"),
        ({"limits": {"snr": 3}}, "expected a table"),
        ({"outlier_metrics": ["focus_pls"]}, "did you mean 'focus_plls'"),
        ({"outlier_metrics": "focus_plls"}, "list of metric names"),
        ({"outlier_min_group": 2}, "outlier_min_group"),
        ({"outlier_min_group": 8.5}, "integer"),
        ({"outlier_warn_z": True}, "outlier_warn_z"),
        ({"outlier_warn_z": 5, "outlier_fail_z": 4}, "outlier_fail_z"),
        ({"outlier_min_rel_spread": -1}, "outlier_min_rel_spread"),
        ([1, 2], "expected a table"),
    ],
)
def test_from_dict_rejects_bad_settings(data: object, match: str) -> None:
    with pytest.raises(InvalidInput, match=match) as info:
        QCThresholds.from_dict(data, where="quantscope.toml [quality]")  # type: ignore[arg-type]
    assert str(info.value).startswith("quantscope.toml [quality]")


def test_limit_flags_pick_the_most_severe_bound() -> None:
    t = QCThresholds()
    flags = check_limits({"snr": 3.0, "saturation_pct_at_max": 0.5, "pct_at_min": 0.0}, t)
    by_metric = {f.metric: f for f in flags}
    assert by_metric["snr"].level == "fail" and by_metric["snr"].bound == 5.0
    assert by_metric["saturation_pct_at_max"].level == "warn"
    assert "pct_at_min" not in by_metric
    assert "low signal-to-noise" in by_metric["snr"].message
    assert check_limits({"snr": math.nan}, t) == []  # undefined values are never flagged


# ---------------------------------------------------------------- robust z-scores


def test_robust_zscores() -> None:
    values = [10.0, 10.5, 9.5, 10.2, 9.8, 10.1, 9.9, 10.0, 2.0, math.nan]
    z = robust_zscores(values)
    assert math.isnan(z[-1])
    assert z[8] < -10 and np.all(np.abs(z[:8]) < 2)
    assert np.isnan(robust_zscores(values[:5])).all()  # fewer than min_count values
    logz = robust_zscores(
        [1e-3, 1.2e-3, 0.9e-3, 1.1e-3, 1e-3, 1.05e-3, 0.95e-3, 1e-5], log_scale=True
    )
    assert logz[-1] < -10
    assert np.all(robust_zscores([5.0] * 10) == 0.0)


@given(
    st.lists(st.integers(-(10**6), 10**6), min_size=8, max_size=40),
    st.floats(0.1, 100),
    st.floats(-100, 100),
)
def test_robust_zscores_are_affine_invariant(values: list[int], scale: float, shift: float) -> None:
    a = np.asarray(values, dtype=np.float64)
    z = robust_zscores(a, min_rel_spread=0.0)
    z2 = robust_zscores(a * scale + shift, min_rel_spread=0.0)
    finite = np.isfinite(z) & np.isfinite(z2)
    np.testing.assert_allclose(z[finite], z2[finite], rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------- evaluate


def test_outliers_catch_blurred_images_in_a_sharp_plate(synth_field) -> None:
    blurred = {3: 2.0, 7: 4.0, 11: 8.0}
    metrics, groups = {}, {}
    for i in range(16):
        image = synth_field(seed=100 + i, blur=blurred.get(i, 0.0))
        for channel in (0, 1):
            metrics[(i, channel)] = channel_metrics(image[channel])
            groups[(i, channel)] = ("plate1", channel)
    results = evaluate(metrics, groups=groups)
    assert list(results) == list(metrics)
    for (i, channel), result in results.items():
        focus_outliers = [
            f for f in result.flags if f.kind == "outlier" and METRICS[f.metric].category == "focus"
        ]
        if i in blurred:
            assert focus_outliers, (i, channel)
            assert all("blurrier than its peers" in f.message for f in focus_outliers)
            assert result.status in (("warn", "fail") if blurred[i] == 2.0 else ("fail",))
        else:
            assert result.status == "pass", (i, channel, result.reasons)
            assert not result.reasons and set(result.zscores) == set(DEFAULT_OUTLIER_METRICS)


def test_absolute_limits_miss_what_outliers_catch(synth_field) -> None:
    # The mildly blurred field passes every absolute limit; only its peers show it is blurry.
    metrics = {
        i: channel_metrics(synth_field(seed=100 + i, blur=2.0 if i == 3 else 0.0)[0])
        for i in range(12)
    }
    assert check_limits(metrics[3]) == []
    assert evaluate(metrics)[3].status in ("warn", "fail")
    assert {i for i, r in evaluate(metrics).items() if r.status != "pass"} == {3}
    alone = evaluate({3: metrics[3]})[3]  # a group of one: no outliers computed
    assert alone.status == "pass" and math.isnan(alone.zscores["focus_plls"])


def test_groups_are_separate_and_must_cover_every_image() -> None:
    rng = np.random.default_rng(0)
    metrics = {}
    groups = {}
    for i in range(20):
        plate = "A" if i < 10 else "B"
        # plate B is blurrier (within the absolute limits): not an outlier within B
        level = 1.0 if plate == "A" else 3.0
        metrics[i] = {"focus_plls": -level + 0.01 * rng.standard_normal()}
        groups[i] = plate
    together = evaluate(metrics)
    apart = evaluate(metrics, groups=groups)
    assert all(r.status == "pass" for r in apart.values())
    assert {r.status for r in together.values()} == {"pass"}  # 10 vs 10: the median is between
    with pytest.raises(InvalidInput, match="no group"):
        evaluate(metrics, groups={0: "A"})


def test_direction_decides_which_side_is_flagged() -> None:
    base = [{"focus_plls": -2.0 + 0.01 * k, "saturation_pct_at_max": 0.01} for k in range(10)]
    sharper = dict(base[0], focus_plls=-0.5)  # better focus than the peers: fine
    saturated = dict(base[1], saturation_pct_at_max=0.09)  # below the limit, but an outlier
    metrics = dict(enumerate([*base, sharper, saturated]))
    t = QCThresholds(outlier_metrics=("focus_plls", "saturation_pct_at_max"))
    results = evaluate(metrics, t)
    assert results[10].status == "pass"
    assert results[11].status == "fail"
    assert results[11].flags[0].kind == "outlier" and results[11].flags[0].zscore > 7


def test_reasons_list_fails_first() -> None:
    metrics = {"img": {"snr": 2.0, "saturation_pct_at_max": 0.5, "foreground_pct": 10.0}}
    result = evaluate(metrics)["img"]
    assert result.status == "fail"
    assert [f.level for f in result.flags] == ["fail", "warn"]
    assert result.reasons[0].startswith("snr = 2")
    data = result.to_dict()
    assert data["status"] == "fail" and data["reasons"] == list(result.reasons)
    assert data["flags"][0]["metric"] == "snr"  # type: ignore[index]


def test_non_numeric_metric_values_are_rejected() -> None:
    with pytest.raises(InvalidInput, match="snr must be a number"):
        evaluate({"img": {"snr": "high"}})
