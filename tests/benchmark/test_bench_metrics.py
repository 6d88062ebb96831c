"""Instance, semantic and classification metrics on hand-computed cases and properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from quantscope.benchmark import (
    DSB_THRESHOLDS,
    bootstrap_ci,
    label_mask,
    match_instances,
    overlap_table,
    pool_instance_scores,
    score_classification,
    score_instances,
    score_semantic,
)
from quantscope.errors import InvalidInput

# truth: objects 1 (4 px), 2 (2 px), 3 (2 px); pred: 5 (3 px), 7 (3 px)
TRUTH = np.array([[1, 1, 1, 1, 0, 2, 2, 0, 3, 3]])
PRED = np.array([[5, 5, 5, 0, 0, 7, 7, 7, 0, 0]])


def test_hand_computed_counts_and_ratios() -> None:
    s = score_instances(TRUTH, PRED)
    assert s.thresholds == DSB_THRESHOLDS
    # IoU(1,5) = 3/4, IoU(2,7) = 2/3; object 3 is missed
    assert s.tp.tolist() == [2, 2, 2, 2, 1, 1, 0, 0, 0, 0]
    assert s.fp.tolist() == [0, 0, 0, 0, 1, 1, 2, 2, 2, 2]
    assert s.fn.tolist() == [1, 1, 1, 1, 2, 2, 3, 3, 3, 3]
    at = s.at(0.5)
    assert at["precision"] == 1.0
    assert at["recall"] == pytest.approx(2 / 3)
    assert at["f1"] == pytest.approx(0.8)
    assert at["ap"] == pytest.approx(2 / 3)
    assert s.at(0.7)["ap"] == pytest.approx(1 / 4)
    assert s.mean_ap == pytest.approx((4 * 2 / 3 + 2 * 0.25) / 10)
    assert at["pq"] == pytest.approx((0.75 + 2 / 3) / 2.5)
    assert at["sq"] == pytest.approx((0.75 + 2 / 3) / 2)
    assert s.seg == pytest.approx((0.75 + 2 / 3) / 3)
    assert s.dice == pytest.approx(10 / 14)
    assert s.foreground_iou == pytest.approx(5 / 9)
    assert s.count_error == -1
    assert (s.splits, s.merges) == (0, 0)


def test_match_instances_reports_original_labels() -> None:
    m = match_instances(TRUTH, PRED, 0.5)
    assert m.truth.tolist() == [1, 2]
    assert m.pred.tolist() == [5, 7]
    assert m.iou.tolist() == pytest.approx([0.75, 2 / 3])
    assert m.missed.tolist() == [3]
    assert m.false_positives.tolist() == []
    m7 = match_instances(TRUTH, PRED, 0.7)
    assert m7.false_positives.tolist() == [7]
    assert m7.missed.tolist() == [2, 3]


def test_split_and_merge() -> None:
    whole = np.array([[1, 1, 1, 1, 1, 1, 0]])
    halves = np.array([[2, 2, 2, 3, 3, 3, 0]])
    s = score_instances(whole, halves, thresholds=[0.5])
    assert (s.splits, s.merges) == (1, 0)
    # both halves have IoU exactly 0.5: only one can match
    assert (int(s.tp[0]), int(s.fp[0]), int(s.fn[0])) == (1, 1, 0)
    assert s.seg == 0.0  # no half holds more than half of the truth object
    r = score_instances(halves, whole, thresholds=[0.5])
    assert (r.splits, r.merges) == (0, 1)
    m = match_instances(halves, whole)
    assert m.merged_pred.tolist() == [1]


def test_optimal_assignment_beats_greedy() -> None:
    # A = [0,10), B = [10,14); X = [4,14), Y = [0,4)
    truth = np.zeros((1, 14), int)
    truth[0, :10] = 1
    truth[0, 10:14] = 2
    pred = np.zeros((1, 14), int)
    pred[0, 4:14] = 8
    pred[0, 0:4] = 9
    # IoU(A,X) = 6/14, IoU(B,X) = 4/10, IoU(A,Y) = 4/10: greedy A-X leaves one match
    m = match_instances(truth, pred, 0.4)
    assert sorted(zip(m.truth.tolist(), m.pred.tolist(), strict=True)) == [(1, 9), (2, 8)]
    s = score_instances(truth, pred, thresholds=[0.4, 0.42, 0.5])
    assert s.tp.tolist() == [2, 1, 0]


def test_empty_images_have_defined_scores() -> None:
    empty = np.zeros((5, 5), np.uint16)
    one = empty.copy()
    one[1:3, 1:3] = 4
    both = score_instances(empty, empty)
    assert both.mean_ap == 1.0 and both.f1.tolist() == [1.0] * 10 and both.dice == 1.0
    assert np.isnan(both.seg)
    no_pred = score_instances(one, empty)
    assert no_pred.mean_ap == 0.0 and no_pred.precision[0] == 0.0 and no_pred.recall[0] == 0.0
    assert no_pred.seg == 0.0 and no_pred.fn[0] == 1
    no_truth = score_instances(empty, one)
    assert no_truth.mean_ap == 0.0 and no_truth.fp[0] == 1 and np.isnan(no_truth.seg)
    assert no_truth.to_dict()["summary"]["seg"] is None


def test_bad_input_errors_name_the_image() -> None:
    with pytest.raises(InvalidInput, match=r"b\.tif: shape \(4, 4\) differs"):
        score_instances(np.zeros((5, 5), int), np.zeros((4, 4), int), names=("a.tif", "b.tif"))
    with pytest.raises(InvalidInput, match=r"p\.tif: pixels are float32"):
        score_instances(np.zeros((2, 2), int), np.zeros((2, 2), np.float32), names=("t", "p.tif"))
    with pytest.raises(InvalidInput, match="binary mask"):
        score_instances(np.zeros((2, 2), bool), np.zeros((2, 2), int))
    with pytest.raises(InvalidInput, match="negative"):
        score_instances(np.full((2, 2), -1), np.zeros((2, 2), int))
    with pytest.raises(InvalidInput, match="no pixels"):
        score_instances(np.zeros((0, 3), int), np.zeros((0, 3), int))
    with pytest.raises(InvalidInput, match="outside"):
        score_instances(TRUTH, PRED, thresholds=[0.0])
    with pytest.raises(InvalidInput, match="not scored"):
        score_instances(TRUTH, PRED, thresholds=[0.5]).at(0.75)


def test_large_and_sparse_label_values() -> None:
    truth = np.zeros((4, 4), np.uint64)
    truth[:2, :2] = 2**40
    pred = np.zeros((4, 4), np.int64)
    pred[:2, :2] = 7
    s = score_instances(truth, pred)
    assert s.mean_ap == 1.0
    assert match_instances(truth, pred).truth.tolist() == [2**40]


def test_many_objects_use_sparse_pairs() -> None:
    # 90,000 objects each side: too many pairs for a dense table
    truth = np.arange(1, 300 * 300 + 1).reshape(300, 300)
    pred = truth[:, ::-1].copy()
    ov = overlap_table(truth, pred)
    assert ov.n_truth == ov.n_pred == 90_000 and ov.pair_inter.size == 90_000
    assert score_instances(truth, pred, thresholds=[0.5]).tp[0] == 90_000


def test_pooling_sums_counts() -> None:
    a = score_instances(TRUTH, PRED)
    b = score_instances(TRUTH, TRUTH)
    p = pool_instance_scores([a, b])
    assert p.n_images == 2
    assert p.tp.tolist() == (a.tp + b.tp).tolist()
    assert p.at(0.5)["ap"] == pytest.approx((2 + 3) / (2 + 3 + 0 + 1))
    assert p.seg == pytest.approx((a.seg_sum + 3) / 6)
    with pytest.raises(InvalidInput, match="no scores"):
        pool_instance_scores([])
    with pytest.raises(InvalidInput, match="thresholds differ"):
        pool_instance_scores([a, score_instances(TRUTH, PRED, thresholds=[0.5])])


def test_3d_labels() -> None:
    truth = np.zeros((3, 4, 4), np.uint16)
    truth[:, :2, :2] = 1
    pred = truth.copy()
    pred[0] = 0  # a third of the object lost
    s = score_instances(truth, pred)
    assert s.at(0.65)["tp"] == 1 and s.at(0.7)["tp"] == 0


# ---- semantic and classification -------------------------------------------------------------


def test_semantic_scores() -> None:
    s = score_semantic(np.array([[1, 1, 0, 0]]), np.array([[0, 1, 1, 0]]))
    assert (s.tp, s.fp, s.fn, s.tn) == (1, 1, 1, 1)
    assert s.dice == 0.5 and s.iou == pytest.approx(1 / 3) and s.pixel_accuracy == 0.5
    assert score_semantic(np.zeros(3, bool), np.zeros(3, bool)).dice == 1.0
    with pytest.raises(InvalidInput, match="shape"):
        score_semantic(np.zeros(3, bool), np.zeros(4, bool))


def test_label_mask_connectivity() -> None:
    mask = np.array([[1, 0], [0, 1]], bool)
    assert label_mask(mask, 1).max() == 2
    assert label_mask(mask, 2).max() == 1
    with pytest.raises(InvalidInput, match="connectivity 3"):
        label_mask(mask, 3)


def test_classification_hand_computed() -> None:
    truth = ["a", "a", "a", "a", "b", "b", "c"]
    pred = ["a", "a", "a", "b", "b", "a", "b"]
    s = score_classification(truth, pred)
    assert s.labels == ["a", "b", "c"]
    assert s.matrix.tolist() == [[3, 1, 0], [1, 1, 0], [0, 1, 0]]
    assert s.accuracy == pytest.approx(4 / 7)
    assert s.balanced_accuracy == pytest.approx((3 / 4 + 1 / 2 + 0) / 3)
    # F1: a = 6/8, b = 2/5, c = 0
    assert s.macro_f1 == pytest.approx((6 / 8 + 2 / 5 + 0) / 3)
    with pytest.raises(InvalidInput, match="same length"):
        score_classification([1, 2], [1])
    with pytest.raises(InvalidInput, match="not in labels"):
        score_classification([1, 2], [1, 3], labels=[1, 2])


def test_bootstrap_ci() -> None:
    rng = np.random.default_rng(3)
    values = rng.normal(0.7, 0.1, size=200)
    e = bootstrap_ci(values)
    assert e.low < e.value < e.high and e.n == 200
    # the interval of a mean of 200 draws with sd 0.1 is about +- 1.96 * 0.1 / sqrt(200)
    assert e.high - e.low == pytest.approx(2 * 1.96 * 0.1 / np.sqrt(200), rel=0.25)
    assert bootstrap_ci([0.5, np.nan]).to_dict()["value"] == 0.5
    const = bootstrap_ci([1.0, 1.0, 1.0])
    assert (const.low, const.high) == (1.0, 1.0)
    assert bootstrap_ci([]).n == 0
    assert bootstrap_ci(values, seed=1).low == bootstrap_ci(values, seed=1).low


# ---- properties ------------------------------------------------------------------------------

labels_2d = arrays(
    np.uint8, st.tuples(st.integers(1, 12), st.integers(1, 12)), elements=st.integers(0, 6)
)


def _brute_iou(truth: np.ndarray, pred: np.ndarray) -> dict[tuple[int, int], float]:
    out = {}
    for a in np.unique(truth[truth > 0]):
        for b in np.unique(pred[pred > 0]):
            inter = np.count_nonzero((truth == a) & (pred == b))
            if inter:
                out[(int(a), int(b))] = inter / np.count_nonzero((truth == a) | (pred == b))
    return out


@settings(max_examples=60, deadline=None)
@given(labels_2d)
def test_property_self_score_is_perfect(x: np.ndarray) -> None:
    s = score_instances(x, x)
    assert s.mean_ap == 1.0 and s.f1.min() == 1.0 and s.pq.min() == 1.0
    assert s.dice == 1.0 and s.splits == 0 and s.merges == 0
    assert s.seg == 1.0 or (np.isnan(s.seg) and s.n_truth == 0)


@settings(max_examples=60, deadline=None)
@given(labels_2d, labels_2d, st.permutations(list(range(1, 7))))
def test_property_bounds_symmetry_relabelling(
    x: np.ndarray, y: np.ndarray, perm: list[int]
) -> None:
    if x.shape != y.shape:
        y = np.resize(y, x.shape)
    s = score_instances(x, y)
    for arr in (s.precision, s.recall, s.f1, s.ap, s.pq, s.sq):
        assert ((arr >= 0) & (arr <= 1)).all()
    assert np.allclose(s.pq, s.sq * s.f1)  # PQ = SQ x RQ
    assert 0.0 <= s.dice <= 1.0 and s.dice == pytest.approx(
        2 * s.foreground_iou / (1 + s.foreground_iou)
    )
    assert (np.diff(s.tp) <= 0).all()  # fewer matches at stricter thresholds
    assert (s.ap <= s.f1 + 1e-12).all()
    # symmetry: swapping truth and prediction swaps FP and FN, splits and merges
    r = score_instances(y, x)
    assert r.tp.tolist() == s.tp.tolist() and r.fp.tolist() == s.fn.tolist()
    assert np.allclose(r.f1, s.f1) and np.allclose(r.pq, s.pq) and r.dice == s.dice
    assert (r.splits, r.merges) == (s.merges, s.splits)
    # relabelling invariance
    lut = np.array([0, *perm], dtype=np.uint16) * 3
    q = score_instances(x, lut[y])
    assert q.tp.tolist() == s.tp.tolist() and q.seg_sum == pytest.approx(s.seg_sum)
    # overlaps equal a brute-force object-by-object computation
    ov = overlap_table(x, y)
    got = {
        (int(ov.truth_ids[a]), int(ov.pred_ids[b])): v
        for a, b, v in zip(ov.pair_truth, ov.pair_pred, ov.pair_iou, strict=True)
    }
    want = _brute_iou(x, y)
    assert got.keys() == want.keys()
    assert all(got[k] == pytest.approx(want[k]) for k in want)


def _max_matching(iou: dict[tuple[int, int], float], threshold: float) -> int:
    """Maximum number of one-to-one pairs with IoU >= threshold, by exhaustive search."""
    edges = [k for k, v in iou.items() if v >= threshold]
    best = 0

    def search(i: int, used_t: set[int], used_p: set[int], n: int) -> None:
        nonlocal best
        best = max(best, n)
        for j in range(i, len(edges)):
            t, p = edges[j]
            if t not in used_t and p not in used_p:
                search(j + 1, used_t | {t}, used_p | {p}, n + 1)

    search(0, set(), set(), 0)
    return best


@settings(max_examples=80, deadline=None)
@given(
    arrays(np.uint8, (6, 6), elements=st.integers(0, 4)),
    arrays(np.uint8, (6, 6), elements=st.integers(0, 4)),
    st.sampled_from([0.1, 0.25, 0.34, 0.5]),
)
@example(  # IoU exactly 0.1 inside a component solved by assignment: reported as 0.1, not below
    np.array(
        [[0, 2, 0, 4, 0, 0], [4, 0, 1, 0, 0, 0], [4, 4, 0, 0, 0, 0]] + [[0] * 6] * 3, np.uint8
    ),
    np.array(
        [[0, 1, 0, 2, 0, 0], [1, 0, 2, 0, 0, 0], [3, 3, 0, 0, 0, 0], [0, 0, 3, 3, 3, 3]]
        + [[3] * 6] * 2,
        np.uint8,
    ),
    0.1,
)
def test_property_matching_is_optimal_at_low_thresholds(
    x: np.ndarray, y: np.ndarray, threshold: float
) -> None:
    s = score_instances(x, y, thresholds=[threshold])
    assert int(s.tp[0]) == _max_matching(_brute_iou(x, y), threshold)
    m = match_instances(x, y, threshold)
    assert len(set(m.truth.tolist())) == len(m.truth) == len(set(m.pred.tolist()))
    assert (m.iou >= threshold).all()


classes = st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=1, max_size=40)


@settings(max_examples=60, deadline=None)
@given(classes, st.data())
def test_property_classification(truth: list[str], data: st.DataObject) -> None:
    pred = data.draw(
        st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=len(truth), max_size=len(truth))
    )
    s = score_classification(truth, pred)
    assert s.matrix.sum() == len(truth)
    for v in (s.accuracy, s.balanced_accuracy, s.macro_f1):
        assert 0.0 <= v <= 1.0
    perfect = score_classification(truth, truth)
    assert perfect.accuracy == perfect.balanced_accuracy == perfect.macro_f1 == 1.0
    # renaming the classes changes nothing
    rename = {"a": "z", "b": "y", "c": "x", "d": "w"}
    r = score_classification([rename[t] for t in truth], [rename[p] for p in pred])
    assert r.accuracy == s.accuracy
    assert r.balanced_accuracy == pytest.approx(s.balanced_accuracy)
    assert r.macro_f1 == pytest.approx(s.macro_f1)
