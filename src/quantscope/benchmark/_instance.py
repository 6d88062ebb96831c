"""Instance segmentation metrics: one-to-one matching by IoU and the scores built on it.

Definitions (``T`` truth objects, ``P`` predicted objects, IoU = |T ∩ P| / |T ∪ P|):

* **Matching at threshold t**: a one-to-one assignment of truth to predicted objects that
  maximizes first the number of pairs with IoU >= t, then the sum of their IoU (optimal
  assignment, :func:`scipy.optimize.linear_sum_assignment`, on each connected group of
  ambiguous candidates). For t > 0.5 every object has at most one candidate, so the matching is
  unique and no assignment problem is solved. Matched pairs are true positives (TP), unmatched
  predictions false positives (FP), unmatched truth objects false negatives (FN).
* **precision** TP / (TP + FP), **recall** TP / (TP + FN), **F1** 2 TP / (2 TP + FP + FN).
* **AP** as defined for the 2018 Data Science Bowl: TP / (TP + FP + FN) at each threshold, and
  **mean AP** its mean over the thresholds 0.5, 0.55, ..., 0.95 (Caicedo et al., Nat Methods
  2019, doi:10.1038/s41592-019-0612-7).
* **Panoptic quality** PQ = Σ IoU(matched) / (TP + FP/2 + FN/2) = SQ x RQ, with segmentation
  quality SQ = mean IoU of the matches and recognition quality RQ = F1 (Kirillov et al., CVPR
  2019, doi:10.1109/CVPR.2019.00963; the standard threshold is 0.5).
* **SEG** of the Cell Tracking Challenge: for each truth object R, the predicted object S with
  |R ∩ S| > 0.5 |R| (at most one exists) gives J = IoU(R, S), otherwise J = 0; SEG is the mean
  of J over the truth objects (Maška et al., Bioinformatics 2014,
  doi:10.1093/bioinformatics/btu080; Ulman et al., Nat Methods 2017,
  doi:10.1038/nmeth.4473). It ignores false positives by design.
* **Splits and merges**, following Coelho et al. (ISBI 2009, doi:10.1109/ISBI.2009.5193098):
  a predicted object belongs to the truth object that holds more than half of its pixels; a
  truth object covered by two or more predicted objects that belong to it is *split*.
  Symmetrically a truth object belongs to the predicted object holding more than half of its
  pixels, and a predicted object to which two or more truth objects belong is a *merge*.
* **Foreground Dice** 2|A ∩ B| / (|A| + |B|) and **foreground IoU** |A ∩ B| / |A ∪ B| of the
  binary foregrounds (Dice, Ecology 1945, doi:10.2307/1932409); **count error** P - T.

Empty images have defined scores: when an image has neither truth nor predicted objects every
ratio is 1 (nothing to find, nothing found); otherwise a ratio whose denominator is 0 is 0 (for
instance precision with no predictions). SEG has no value without truth objects (NaN), as in
the Cell Tracking Challenge, where it averages over reference objects only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import InvalidInput
from ._overlap import Overlap, overlap_table

__all__ = [
    "DSB_THRESHOLDS",
    "InstanceScores",
    "Matching",
    "match_instances",
    "pool_instance_scores",
    "score_instances",
]

#: IoU thresholds of the 2018 Data Science Bowl: 0.5, 0.55, ..., 0.95.
DSB_THRESHOLDS: tuple[float, ...] = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


def _check_thresholds(thresholds: Iterable[float]) -> tuple[float, ...]:
    out = tuple(float(t) for t in thresholds)
    if not out:
        raise InvalidInput("thresholds: at least one IoU threshold is needed")
    for t in out:
        if not 0.0 < t <= 1.0:
            raise InvalidInput(f"thresholds: IoU threshold {t} is outside (0, 1]")
    return out


def _match_pairs(
    ov: Overlap, iou: F64, threshold: float
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], F64]:
    """Optimal one-to-one matching among pairs with IoU >= threshold.

    Returns indices into ``ov.truth_ids`` / ``ov.pred_ids`` and the IoU of each matched pair.
    """
    cand = iou >= threshold
    ti, pi, vi = ov.pair_truth[cand], ov.pair_pred[cand], iou[cand]
    if ti.size == 0:
        return ti, pi, vi
    deg_t = np.bincount(ti, minlength=ov.n_truth)
    deg_p = np.bincount(pi, minlength=ov.n_pred)
    simple = (deg_t[ti] == 1) & (deg_p[pi] == 1)
    if simple.all():  # always the case for threshold > 0.5
        return ti, pi, vi
    out_t, out_p, out_v = [ti[simple]], [pi[simple]], [vi[simple]]
    rt, rp, rv = ti[~simple], pi[~simple], vi[~simple]
    from scipy.optimize import linear_sum_assignment
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    rows, rinv = np.unique(rt, return_inverse=True)
    cols, cinv = np.unique(rp, return_inverse=True)
    nr, nc = rows.size, cols.size
    graph = coo_matrix((np.ones(rt.size), (rinv, nr + cinv)), shape=(nr + nc, nr + nc))
    _, comp = connected_components(graph, directed=False)
    pair_comp = comp[rinv]
    for c in np.unique(pair_comp):
        sel = pair_comp == c
        r_local, r_idx = np.unique(rinv[sel], return_inverse=True)
        c_local, c_idx = np.unique(cinv[sel], return_inverse=True)
        # lexicographic objective: number of matches first, then the sum of IoU
        bonus = float(min(r_local.size, c_local.size) + 1)
        weight = np.zeros((r_local.size, c_local.size))
        weight[r_idx, c_idx] = bonus + rv[sel]
        exact = np.zeros_like(weight)  # the IoU itself, not (bonus + IoU) - bonus
        exact[r_idx, c_idx] = rv[sel]
        a, b = linear_sum_assignment(weight, maximize=True)
        keep = weight[a, b] > 0
        a, b = a[keep], b[keep]
        out_t.append(rows[r_local[a]])
        out_p.append(cols[c_local[b]])
        out_v.append(exact[a, b])
    return np.concatenate(out_t), np.concatenate(out_p), np.concatenate(out_v)


@dataclass(frozen=True)
class Matching:
    """One-to-one matching of truth and predicted objects at one IoU threshold.

    Attributes
    ----------
    threshold : float
        Minimum IoU of a match.
    truth, pred : ndarray of int
        Label values of the matched truth and predicted objects (pairwise).
    iou : ndarray of float
        IoU of each matched pair.
    missed : ndarray of int
        Label values of truth objects without a match (false negatives).
    false_positives : ndarray of int
        Label values of predicted objects without a match.
    split_truth : ndarray of int
        Label values of truth objects that are split (see module notes).
    merged_pred : ndarray of int
        Label values of predicted objects that merge two or more truth objects.
    """

    threshold: float
    truth: npt.NDArray[np.intp]
    pred: npt.NDArray[np.intp]
    iou: F64
    missed: npt.NDArray[np.intp]
    false_positives: npt.NDArray[np.intp]
    split_truth: npt.NDArray[np.intp]
    merged_pred: npt.NDArray[np.intp]


def _splits_merges(ov: Overlap) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """(indices of split truth objects, indices of merging predicted objects)."""
    inter2 = 2 * ov.pair_inter
    pred_in_truth = inter2 > ov.pred_areas[ov.pair_pred]  # pred belongs to this truth object
    per_truth = np.bincount(ov.pair_truth[pred_in_truth], minlength=ov.n_truth)
    truth_in_pred = inter2 > ov.truth_areas[ov.pair_truth]
    per_pred = np.bincount(ov.pair_pred[truth_in_pred], minlength=ov.n_pred)
    return np.flatnonzero(per_truth >= 2), np.flatnonzero(per_pred >= 2)


def match_instances(
    truth: npt.ArrayLike,
    pred: npt.ArrayLike,
    threshold: float = 0.5,
    *,
    names: tuple[str, str] = ("truth", "prediction"),
) -> Matching:
    """Match truth and predicted objects one to one by IoU.

    Parameters
    ----------
    truth, pred : array_like of int
        Instance label images of the same shape (0 = background, any positive ids).
    threshold : float
        Minimum IoU of a match, in (0, 1]. Above 0.5 the matching is unique; at or below 0.5 the
        optimal assignment (most matches, then highest total IoU) is taken.
    names : (str, str)
        Names of the two images for error messages.

    Returns
    -------
    Matching
        Matched label pairs and their IoU, misses, false positives, splits and merges.

    Examples
    --------
    >>> import numpy as np
    >>> truth = np.array([[1, 1, 0, 2, 2]])
    >>> pred = np.array([[3, 3, 0, 0, 4]])
    >>> m = match_instances(truth, pred, 0.5)
    >>> m.truth.tolist(), m.pred.tolist(), m.iou.tolist()
    ([1, 2], [3, 4], [1.0, 0.5])
    """
    (thr,) = _check_thresholds([threshold])
    ov = overlap_table(truth, pred, names)
    mt, mp, mv = _match_pairs(ov, ov.pair_iou, thr)
    order = np.argsort(mt, kind="stable")
    mt, mp, mv = mt[order], mp[order], mv[order]
    miss = np.ones(ov.n_truth, dtype=bool)
    miss[mt] = False
    fp = np.ones(ov.n_pred, dtype=bool)
    fp[mp] = False
    splits, merges = _splits_merges(ov)
    return Matching(
        threshold=thr,
        truth=ov.truth_ids[mt],
        pred=ov.pred_ids[mp],
        iou=mv.astype(np.float64),
        missed=ov.truth_ids[miss],
        false_positives=ov.pred_ids[fp],
        split_truth=ov.truth_ids[splits],
        merged_pred=ov.pred_ids[merges],
    )


def _ratio(num: Any, den: Any, both_empty: bool) -> Any:
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    safe = np.where(den > 0, den, 1.0)
    return np.where(den > 0, num / safe, 1.0 if both_empty else 0.0)


@dataclass(frozen=True)
class InstanceScores:
    """Counts from which every instance metric follows; add them up to pool images.

    Ratios are properties computed from the counts, so pooled scores
    (:func:`pool_instance_scores`) are micro-averages over objects. The per-image mean that the
    Data Science Bowl reports is the mean of ``mean_ap`` over images (see ``quantscope.benchmark``
    aggregation).

    Attributes
    ----------
    thresholds : tuple of float
        IoU thresholds of the arrays below.
    tp, fp, fn : ndarray of int
        True positives, false positives, false negatives at each threshold.
    iou_sum : ndarray of float
        Sum of the IoU of the matched pairs at each threshold.
    n_truth, n_pred : int
        Truth and predicted objects.
    seg_sum : float
        Sum over truth objects of the CTC SEG Jaccard index ``J``.
    splits, merges : int
        Split truth objects, merging predicted objects.
    pixels_tp, pixels_fp, pixels_fn : int
        Foreground pixels in both images, in the prediction only, in the truth only.
    n_images : int
        Images pooled into these counts.
    """

    thresholds: tuple[float, ...]
    tp: I64
    fp: I64
    fn: I64
    iou_sum: F64
    n_truth: int
    n_pred: int
    seg_sum: float
    splits: int
    merges: int
    pixels_tp: int
    pixels_fp: int
    pixels_fn: int
    n_images: int = 1

    @property
    def _both_empty(self) -> bool:
        return self.n_truth == 0 and self.n_pred == 0

    @property
    def precision(self) -> F64:
        """TP / (TP + FP) at each threshold."""
        return _ratio(self.tp, self.tp + self.fp, self._both_empty)  # type: ignore[no-any-return]

    @property
    def recall(self) -> F64:
        """TP / (TP + FN) at each threshold."""
        return _ratio(self.tp, self.tp + self.fn, self._both_empty)  # type: ignore[no-any-return]

    @property
    def f1(self) -> F64:
        """2 TP / (2 TP + FP + FN) at each threshold (= recognition quality RQ)."""
        return _ratio(  # type: ignore[no-any-return]
            2 * self.tp, 2 * self.tp + self.fp + self.fn, self._both_empty
        )

    @property
    def ap(self) -> F64:
        """Data Science Bowl 2018 average precision TP / (TP + FP + FN) at each threshold."""
        return _ratio(  # type: ignore[no-any-return]
            self.tp, self.tp + self.fp + self.fn, self._both_empty
        )

    @property
    def mean_ap(self) -> float:
        """Mean of :attr:`ap` over the thresholds (the DSB 2018 score of one image)."""
        return float(np.mean(self.ap))

    @property
    def sq(self) -> F64:
        """Segmentation quality: mean IoU of the matched pairs at each threshold."""
        return _ratio(self.iou_sum, self.tp, self._both_empty)  # type: ignore[no-any-return]

    @property
    def pq(self) -> F64:
        """Panoptic quality Σ IoU(matched) / (TP + FP/2 + FN/2) at each threshold."""
        return _ratio(  # type: ignore[no-any-return]
            self.iou_sum, self.tp + 0.5 * self.fp + 0.5 * self.fn, self._both_empty
        )

    @property
    def seg(self) -> float:
        """Cell Tracking Challenge SEG (NaN without truth objects)."""
        return self.seg_sum / self.n_truth if self.n_truth else float("nan")

    @property
    def dice(self) -> float:
        """Dice coefficient of the binary foregrounds."""
        den = 2 * self.pixels_tp + self.pixels_fp + self.pixels_fn
        return 2 * self.pixels_tp / den if den else 1.0

    @property
    def foreground_iou(self) -> float:
        """Intersection over union of the binary foregrounds."""
        den = self.pixels_tp + self.pixels_fp + self.pixels_fn
        return self.pixels_tp / den if den else 1.0

    @property
    def count_error(self) -> int:
        """Predicted minus truth object count."""
        return self.n_pred - self.n_truth

    def _index(self, threshold: float) -> int:
        for i, t in enumerate(self.thresholds):
            if abs(t - threshold) < 1e-9:
                return i
        raise InvalidInput(
            f"threshold {threshold} was not scored; scored thresholds: "
            + ", ".join(f"{t:g}" for t in self.thresholds)
        )

    def at(self, threshold: float) -> dict[str, float]:
        """Counts and ratios at one of the scored thresholds."""
        i = self._index(threshold)
        return {
            "tp": int(self.tp[i]),
            "fp": int(self.fp[i]),
            "fn": int(self.fn[i]),
            "precision": float(self.precision[i]),
            "recall": float(self.recall[i]),
            "f1": float(self.f1[i]),
            "ap": float(self.ap[i]),
            "sq": float(self.sq[i]),
            "pq": float(self.pq[i]),
        }

    def summary(self) -> dict[str, float]:
        """Headline scalars: mean AP, AP/F1/precision/recall/PQ at 0.5 (or the lowest scored
        threshold), AP at 0.75 where scored, SEG, Dice, counts, splits, merges."""
        base = 0.5 if any(abs(t - 0.5) < 1e-9 for t in self.thresholds) else self.thresholds[0]
        at = self.at(base)
        out: dict[str, float] = {
            "mean_ap": self.mean_ap,
            "ap50": at["ap"],
            "f1": at["f1"],
            "precision": at["precision"],
            "recall": at["recall"],
            "pq": at["pq"],
            "sq": at["sq"],
        }
        if any(abs(t - 0.75) < 1e-9 for t in self.thresholds):
            out["ap75"] = float(self.ap[self._index(0.75)])
        out.update(
            seg=self.seg,
            dice=self.dice,
            foreground_iou=self.foreground_iou,
            n_truth=self.n_truth,
            n_pred=self.n_pred,
            count_error=self.count_error,
            tp=at["tp"],
            fp=at["fp"],
            fn=at["fn"],
            splits=self.splits,
            merges=self.merges,
        )
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InstanceScores:
        """Rebuild from :meth:`to_dict` output (derived values are recomputed)."""
        try:
            return cls(
                thresholds=tuple(float(t) for t in data["thresholds"]),
                tp=np.asarray(data["tp"], dtype=np.int64),
                fp=np.asarray(data["fp"], dtype=np.int64),
                fn=np.asarray(data["fn"], dtype=np.int64),
                iou_sum=np.asarray(data["iou_sum"], dtype=np.float64),
                n_truth=int(data["n_truth"]),
                n_pred=int(data["n_pred"]),
                seg_sum=float(data["seg_sum"]),
                splits=int(data["splits"]),
                merges=int(data["merges"]),
                pixels_tp=int(data["pixels_tp"]),
                pixels_fp=int(data["pixels_fp"]),
                pixels_fn=int(data["pixels_fn"]),
                n_images=int(data.get("n_images", 1)),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise InvalidInput(f"instance scores: malformed counts ({e})") from e

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready counts, per-threshold ratios and the summary (NaN as None)."""

        def clean(v: Any) -> Any:
            if isinstance(v, float) and not np.isfinite(v):
                return None
            return v

        return {
            "thresholds": list(self.thresholds),
            "tp": self.tp.tolist(),
            "fp": self.fp.tolist(),
            "fn": self.fn.tolist(),
            "iou_sum": self.iou_sum.tolist(),
            "precision": self.precision.tolist(),
            "recall": self.recall.tolist(),
            "f1": self.f1.tolist(),
            "ap": self.ap.tolist(),
            "pq": self.pq.tolist(),
            "n_truth": self.n_truth,
            "n_pred": self.n_pred,
            "seg_sum": self.seg_sum,
            "splits": self.splits,
            "merges": self.merges,
            "pixels_tp": self.pixels_tp,
            "pixels_fp": self.pixels_fp,
            "pixels_fn": self.pixels_fn,
            "n_images": self.n_images,
            "summary": {k: clean(v) for k, v in self.summary().items()},
        }


def score_overlap(ov: Overlap, thresholds: Sequence[float] = DSB_THRESHOLDS) -> InstanceScores:
    """:class:`InstanceScores` from an :class:`~quantscope.benchmark._overlap.Overlap`."""
    thr = _check_thresholds(thresholds)
    iou = ov.pair_iou
    tp = np.zeros(len(thr), dtype=np.int64)
    iou_sum = np.zeros(len(thr), dtype=np.float64)
    for k, t in enumerate(thr):
        _, _, mv = _match_pairs(ov, iou, t)
        tp[k] = mv.size
        iou_sum[k] = float(mv.sum())
    seg_hit = 2 * ov.pair_inter > ov.truth_areas[ov.pair_truth]
    splits, merges = _splits_merges(ov)
    inter = ov.foreground_intersection
    return InstanceScores(
        thresholds=thr,
        tp=tp,
        fp=ov.n_pred - tp,
        fn=ov.n_truth - tp,
        iou_sum=iou_sum,
        n_truth=ov.n_truth,
        n_pred=ov.n_pred,
        seg_sum=float(iou[seg_hit].sum()),
        splits=int(splits.size),
        merges=int(merges.size),
        pixels_tp=inter,
        pixels_fp=int(ov.pred_areas.sum()) - inter,
        pixels_fn=int(ov.truth_areas.sum()) - inter,
    )


def score_instances(
    truth: npt.ArrayLike,
    pred: npt.ArrayLike,
    thresholds: Sequence[float] = DSB_THRESHOLDS,
    *,
    names: tuple[str, str] = ("truth", "prediction"),
) -> InstanceScores:
    """Score a predicted instance label image against the ground truth.

    Overlaps come from one pass over the pixels (label co-occurrence counted with
    :func:`numpy.bincount`), then matching per threshold works on the overlapping pairs only.
    See the module notes for every definition and reference.

    Parameters
    ----------
    truth, pred : array_like of int
        Instance label images of the same shape, 2-D or 3-D (0 = background). Label values need
        not be consecutive.
    thresholds : sequence of float
        IoU thresholds in (0, 1]; default 0.5, 0.55, ..., 0.95 (DSB 2018).
    names : (str, str)
        Names of the two images for error messages (file names).

    Returns
    -------
    InstanceScores
        Counts and metrics; pool several with :func:`pool_instance_scores`.

    Raises
    ------
    InvalidInput
        Shapes differ, an image is not an integer label image, or a threshold is out of range.

    Examples
    --------
    >>> import numpy as np
    >>> truth = np.zeros((8, 8), int); truth[:4, :4] = 1; truth[5:, 5:] = 2
    >>> s = score_instances(truth, truth)
    >>> s.mean_ap, s.seg, float(s.f1[0])
    (1.0, 1.0, 1.0)
    """
    return score_overlap(overlap_table(truth, pred, names), thresholds)


def pool_instance_scores(scores: Iterable[InstanceScores]) -> InstanceScores:
    """Sum the counts of several images (micro-average over objects).

    Raises
    ------
    InvalidInput
        No scores, or scores computed at different thresholds.
    """
    items = list(scores)
    if not items:
        raise InvalidInput("pool_instance_scores: no scores to pool")
    thr = items[0].thresholds
    for s in items[1:]:
        if s.thresholds != thr:
            raise InvalidInput(
                f"pool_instance_scores: thresholds differ ({s.thresholds} vs {thr}); "
                "score every image at the same thresholds"
            )
    return InstanceScores(
        thresholds=thr,
        tp=np.sum([s.tp for s in items], axis=0).astype(np.int64),
        fp=np.sum([s.fp for s in items], axis=0).astype(np.int64),
        fn=np.sum([s.fn for s in items], axis=0).astype(np.int64),
        iou_sum=np.sum([s.iou_sum for s in items], axis=0).astype(np.float64),
        n_truth=sum(s.n_truth for s in items),
        n_pred=sum(s.n_pred for s in items),
        seg_sum=float(sum(s.seg_sum for s in items)),
        splits=sum(s.splits for s in items),
        merges=sum(s.merges for s in items),
        pixels_tp=sum(s.pixels_tp for s in items),
        pixels_fp=sum(s.pixels_fp for s in items),
        pixels_fn=sum(s.pixels_fn for s in items),
        n_images=sum(s.n_images for s in items),
    )
