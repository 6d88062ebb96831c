"""Classification metrics for image-level or object-level classes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import InvalidInput

__all__ = ["ClassificationScores", "confusion_matrix", "score_classification"]


def confusion_matrix(
    truth: Sequence[Any] | npt.ArrayLike,
    pred: Sequence[Any] | npt.ArrayLike,
    labels: Sequence[Any] | None = None,
) -> tuple[npt.NDArray[np.int64], list[Any]]:
    """Confusion matrix ``C[i, j]`` = items of true class ``labels[i]`` predicted as ``labels[j]``.

    Parameters
    ----------
    truth, pred : sequence
        True and predicted class of each item (any hashable values), same length.
    labels : sequence, optional
        Class order; default the sorted union of the classes seen.

    Returns
    -------
    (ndarray of int64, list)
        The matrix and its class labels.
    """
    t = np.asarray(truth)
    p = np.asarray(pred)
    if t.ndim != 1 or p.ndim != 1 or t.shape != p.shape:
        raise InvalidInput(
            f"classification: truth and prediction must be 1-D of the same length "
            f"(got shapes {t.shape} and {p.shape})"
        )
    if labels is None:
        classes = sorted(set(t.tolist()) | set(p.tolist()), key=lambda v: (str(type(v)), v))
    else:
        classes = list(labels)
        unknown = (set(t.tolist()) | set(p.tolist())) - set(classes)
        if unknown:
            raise InvalidInput(
                f"classification: classes {sorted(map(str, unknown))} are not in labels"
            )
    index = {c: i for i, c in enumerate(classes)}
    ti = np.fromiter((index[v] for v in t.tolist()), dtype=np.intp, count=t.size)
    pi = np.fromiter((index[v] for v in p.tolist()), dtype=np.intp, count=p.size)
    k = len(classes)
    cm = np.bincount(ti * k + pi, minlength=k * k).reshape(k, k).astype(np.int64)
    return cm, classes


@dataclass(frozen=True)
class ClassificationScores:
    """Confusion matrix and the metrics built on it.

    Attributes
    ----------
    matrix : ndarray of int64
        ``matrix[i, j]``: items of true class ``labels[i]`` predicted as ``labels[j]``.
    labels : list
        Class of each row / column.
    """

    matrix: npt.NDArray[np.int64]
    labels: list[Any]

    @property
    def n(self) -> int:
        """Number of items."""
        return int(self.matrix.sum())

    @property
    def accuracy(self) -> float:
        """Fraction of items classified correctly (NaN without items)."""
        return float(np.trace(self.matrix) / self.n) if self.n else float("nan")

    @property
    def per_class_recall(self) -> npt.NDArray[np.float64]:
        """Recall (sensitivity) of each class; NaN for a class absent from the truth."""
        support = self.matrix.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(support > 0, np.diag(self.matrix) / np.maximum(support, 1), np.nan)

    @property
    def balanced_accuracy(self) -> float:
        """Mean recall over the classes present in the truth (Brodersen et al., ICPR 2010,
        doi:10.1109/ICPR.2010.764); equals accuracy for balanced classes."""
        rec = self.per_class_recall
        return float(np.nanmean(rec)) if np.isfinite(rec).any() else float("nan")

    @property
    def per_class_f1(self) -> npt.NDArray[np.float64]:
        """F1 = 2 TP / (2 TP + FP + FN) of each class (one-vs-rest)."""
        tp = np.diag(self.matrix).astype(np.float64)
        fp = self.matrix.sum(axis=0) - tp
        fn = self.matrix.sum(axis=1) - tp
        den = 2 * tp + fp + fn
        return np.where(den > 0, 2 * tp / np.maximum(den, 1), np.nan)

    @property
    def macro_f1(self) -> float:
        """Unweighted mean of the per-class F1 over the classes seen in truth or prediction
        (Sokolova & Lapalme 2009, doi:10.1016/j.ipm.2009.03.002)."""
        f1 = self.per_class_f1
        return float(np.nanmean(f1)) if np.isfinite(f1).any() else float("nan")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready scores (NaN as None)."""

        def clean(v: float) -> float | None:
            return v if np.isfinite(v) else None

        return {
            "labels": [str(c) for c in self.labels],
            "matrix": self.matrix.tolist(),
            "n": self.n,
            "accuracy": clean(self.accuracy),
            "balanced_accuracy": clean(self.balanced_accuracy),
            "macro_f1": clean(self.macro_f1),
        }


def score_classification(
    truth: Sequence[Any] | npt.ArrayLike,
    pred: Sequence[Any] | npt.ArrayLike,
    labels: Sequence[Any] | None = None,
) -> ClassificationScores:
    """Accuracy, balanced accuracy, macro-F1 and the confusion matrix of class predictions.

    Parameters
    ----------
    truth, pred : sequence
        True and predicted class of each image or object.
    labels : sequence, optional
        Class order of the confusion matrix.

    Examples
    --------
    >>> s = score_classification(["a", "a", "b", "b"], ["a", "b", "b", "b"])
    >>> s.accuracy, s.balanced_accuracy
    (0.75, 0.75)
    """
    cm, classes = confusion_matrix(truth, pred, labels)
    return ClassificationScores(matrix=cm, labels=classes)
