"""The binned focus estimators that channel_metrics uses for planes of >= 128 px per side rank
focus like the unbinned definitions, on synthetic focus series and on the real image sets."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.stats import spearmanr

from quantscope.quality import channel_metrics, focus_laplacian_var, focus_plls, stack_metrics

pytestmark = pytest.mark.filterwarnings("error")

BLURS = (0.0, 1.0, 2.0, 4.0, 8.0)
BINNED = {"focus_plls": focus_plls, "focus_laplacian_var": focus_laplacian_var}


def test_channel_metrics_bins_planes_of_128_px_and_more(synth_field) -> None:
    big = synth_field(seed=3)[0]  # 256 x 256
    small = big[:120, :200]
    m_big, m_small = channel_metrics(big), channel_metrics(small)
    for name, fn in BINNED.items():
        assert m_big[name] == fn(big, binned=True), name
        assert m_big[name] != fn(big), name
        assert m_small[name] == fn(small), name  # 120 px: not binned
    # z-stacks: per-plane values are those channel_metrics stores for each plane
    stack = np.stack([synth_field(seed=3, blur=b)[0] for b in (2.0, 0.0)])
    best, per_plane = stack_metrics(stack, metric="focus_plls")
    assert best == 1 and per_plane[1] == m_big["focus_plls"]


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_binned_focus_is_monotonic_like_the_unbinned(synth_field, seed: int) -> None:
    for channel in (0, 1):
        series = [synth_field(seed=seed, blur=b)[channel] for b in BLURS]
        for name, fn in BINNED.items():
            for binned in (False, True):
                values = [fn(image, binned=binned) for image in series]
                assert all(a > b for a, b in itertools.pairwise(values)), (name, binned, values)


@pytest.fixture(scope="module")
def real_planes(real_focus_sets) -> dict[str, list[np.ndarray]]:
    """The real fields with content (BBBC039's empty field left out: no focus value)."""
    return {
        group: [a for a in images.values() if not channel_metrics(a)["is_empty"]]
        for group, images in real_focus_sets.items()
    }


def test_binned_focus_ranks_real_images_like_the_unbinned(real_planes) -> None:
    planes = [a for group in real_planes.values() for a in group]
    assert len(planes) == 60
    for name, fn in BINNED.items():
        plain = np.array([fn(a) for a in planes])
        binned = np.array([fn(a, binned=True) for a in planes])
        assert np.isfinite(plain).all() and np.isfinite(binned).all(), name
        rho = spearmanr(plain, binned).statistic
        assert rho > (0.99 if name == "focus_plls" else 0.95), (name, rho)
        if name == "focus_plls":  # same frequency band: nearly the same slope
            assert np.max(np.abs(plain - binned)) < 0.3
        # and both separate every out-of-focus field from every in-focus one
        for values in (plain, binned):
            scores = dict(zip(map(id, planes), values, strict=True))
            worst_blurred = max(scores[id(a)] for a in real_planes["out_of_focus"])
            sharp = [scores[id(a)] for g in ("in_focus_z10", "bbbc039") for a in real_planes[g]]
            assert worst_blurred < min(sharp), name


def test_binned_on_degenerate_planes_is_nan_or_zero() -> None:
    row = np.arange(50, dtype=np.uint16)[None, :]
    assert math.isnan(focus_plls(row, binned=True))
    assert math.isnan(focus_laplacian_var(row, binned=True))
    flat = np.full((130, 130), 7, np.uint16)
    assert math.isnan(focus_plls(flat, binned=True))
    assert focus_laplacian_var(flat, binned=True) == 0.0
    odd = np.random.default_rng(0).normal(100, 5, (131, 129)).astype(np.float32)
    odd[3, 3] = np.nan  # replaced by the median before binning
    assert math.isfinite(focus_laplacian_var(odd, binned=True))
