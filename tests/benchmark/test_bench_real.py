"""Scoring on real data: BBBC039 reference labels against themselves and against eroded and
shifted copies (expected drops computed independently), and its colour-coded masks."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import tifffile
from _bench_helpers import erode_labels

from quantscope.benchmark import read_labels, score_folders, score_instances
from quantscope.benchmark._sets import _prepare


def test_reference_against_itself_is_perfect(bbbc039: Path) -> None:
    res = score_folders(bbbc039 / "labels", bbbc039 / "labels")
    assert len(res.items) == 40
    assert res.pooled.n_truth == res.pooled.n_pred == 4484
    for m in ("mean_ap", "ap50", "ap75", "f1", "pq", "seg", "dice"):
        est = res.aggregate[m]
        assert (est.value, est.low, est.high) == (1.0, 1.0, 1.0), m
    assert res.pooled.splits == res.pooled.merges == 0
    assert res.aggregate["count_error"].value == 0.0


def test_eroded_copy_gives_the_expected_drop(
    bbbc039: Path, bbbc_variants: Callable[[str], Path]
) -> None:
    res = score_folders(bbbc039 / "labels", bbbc_variants("eroded1"))
    # Expected values computed object by object on one image, independently of the scorer:
    # every eroded object E lies inside its truth object T, so IoU = |E| / |T| and Dice of the
    # foreground = 2 |E| / (|T| + |E|).
    name = sorted((bbbc039 / "labels").glob("*.tif"))[0]
    truth = tifffile.imread(name)
    eroded = erode_labels(truth, 1)
    item = next(it for it in res.items if it.item == name.stem)
    ious = []
    for v in np.unique(truth[truth > 0]):
        t = np.count_nonzero(truth == v)
        e = np.count_nonzero(eroded == v)
        ious.append(e / t)
    ious_a = np.array(ious)
    s = item.scores
    for k, thr in enumerate(s.thresholds):
        assert s.tp[k] == np.count_nonzero(ious_a >= thr)
        assert s.fp[k] == np.count_nonzero(np.unique(eroded[eroded > 0])) - s.tp[k]
    assert s.seg == pytest.approx(ious_a[ious_a > 0.5].sum() / ious_a.size)
    t_fg, e_fg = np.count_nonzero(truth), np.count_nonzero(eroded)
    assert s.dice == pytest.approx(2 * e_fg / (t_fg + e_fg))
    # and over the set: objects are still found at IoU 0.5, the strict thresholds drop
    assert res.aggregate["ap50"].value > 0.9
    assert res.aggregate["mean_ap"].value < 0.8
    assert res.aggregate["ap75"].high < res.aggregate["ap50"].low


def test_shifted_copies_drop_monotonically(
    bbbc039: Path, bbbc_variants: Callable[[str], Path]
) -> None:
    means = []
    for kind in ("shift1", "shift3", "shift6"):
        res = score_folders(bbbc039 / "labels", bbbc_variants(kind))
        means.append(res.aggregate["mean_ap"].value)
    assert 1.0 > means[0] > means[1] > means[2]
    assert means[2] < 0.3


def test_colour_coded_masks_by_value_equal_the_labels(bbbc039: Path) -> None:
    # SOURCE.md: labels/ was made from masks/ by labelling each red value with 8-connectivity
    for name in sorted((bbbc039 / "masks").glob("*.png"))[:4]:
        lab = _prepare(read_labels(name, colour="code"), name, "by-value", 2)
        ref = tifffile.imread(bbbc039 / "labels" / f"{name.stem}.tif")
        s = score_instances(ref, lab, thresholds=[0.99])
        assert s.tp[0] == s.n_truth == s.n_pred
    # labelled as plain binary masks, touching nuclei merge
    name = sorted((bbbc039 / "masks").glob("*.png"))[0]
    binary = _prepare(read_labels(name, colour="code") > 0, name, "binary", 2)
    ref = tifffile.imread(bbbc039 / "labels" / f"{name.stem}.tif")
    assert int(binary.max()) <= int(np.unique(ref[ref > 0]).size)
